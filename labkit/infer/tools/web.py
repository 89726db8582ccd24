"""``web_search``: off by default; when the user turns it on, a real search backend answers.

Backends:
- ``ddgs`` (default): the ``ddgs`` package (DuckDuckGo and other engines, no API key); an optional
  dependency, ``pip install ddgs``.
- ``searxng``: any SearXNG instance's JSON API (``GET {url}/search?q=...&format=json``) through ``httpx``;
  self-hosted, and what the tests point at a stub server on 127.0.0.1.

Off, or offline, the tool answers at once with a clear error ("web search is off" / "unreachable") that the
model and the user both see; every request has a time-out so a dead network cannot hang the chat.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from labkit.infer.tools.registry import Tool, ToolError

BACKENDS = ("ddgs", "searxng")
OFF_MESSAGE = ("web search is off: turn it on with --web-search (labkit chat / labkit tools) or the "
               "'Web search' box in the chat app's Tools panel")


@dataclass
class WebSearch:
    """Web search settings; ``enabled`` stays False unless the user turns it on."""

    enabled: bool = False
    backend: str = "ddgs"
    url: str | None = None          # searxng only: the instance, e.g. http://127.0.0.1:8888
    timeout_s: float = 6.0          # per request; the tool's own limit is a little longer
    max_results: int = 5

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise ValueError(f"web search backend {self.backend!r}: use one of {', '.join(BACKENDS)}")
        if self.backend == "searxng" and self.enabled and not self.url:
            raise ValueError("web search backend 'searxng' needs url=... (the SearXNG instance)")


def _ddgs(settings: WebSearch, query: str, n: int) -> list[dict[str, str]]:
    try:
        from ddgs import DDGS
    except ImportError:
        raise ToolError("web search needs the 'ddgs' package: pip install ddgs") from None
    hits = (DDGS(timeout=int(max(1, settings.timeout_s))).text(query, max_results=n) or [])[:n]
    return [{"title": h.get("title", ""), "url": h.get("href", ""), "snippet": h.get("body", "")} for h in hits]


def _searxng(settings: WebSearch, query: str, n: int) -> list[dict[str, str]]:
    import httpx

    response = httpx.get(f"{settings.url.rstrip('/')}/search", params={"q": query, "format": "json"},
                         timeout=settings.timeout_s, follow_redirects=False)
    response.raise_for_status()
    hits = response.json().get("results", [])[:n]
    return [{"title": h.get("title", ""), "url": h.get("url", ""), "snippet": h.get("content", "")} for h in hits]


def web_search(settings: WebSearch, query: str, max_results: int | None = None) -> dict[str, Any]:
    """Search the web with ``settings``'s backend; off or unreachable is a ToolError that says which."""
    if not settings.enabled:
        raise ToolError(OFF_MESSAGE)
    n = min(max_results or settings.max_results, 10)
    try:
        hits = (_ddgs if settings.backend == "ddgs" else _searxng)(settings, query, n)
    except ToolError:
        raise
    except Exception as err:  # DNS failure, refused connection, time-out, HTTP error, bad JSON: all "unreachable"
        raise ToolError(f"web search is unreachable ({settings.backend}: {type(err).__name__}: {err}); "
                        "check the network or turn web search off") from None
    return {"query": query, "results": hits}


def web_search_tool(settings: WebSearch) -> Tool:
    def search_web(query: str, max_results: int | None = None) -> dict[str, Any]:
        return web_search(settings, query, max_results)

    return Tool("web_search", "Search the web and return titles, links and snippets",
                {"type": "object",
                 "properties": {"query": {"type": "string", "minLength": 1},
                                "max_results": {"type": "integer", "minimum": 1, "maximum": 10}},
                 "required": ["query"]},
                search_web, timeout_s=settings.timeout_s + 2.0)
