"""search_documents (BM25 over one folder, no way out of it) and web_search (off by default; a stub server
on 127.0.0.1 stands in for the backend: these tests never reach the internet)."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from labkit.infer.tools import ToolError, WebSearch, make_registry
from labkit.infer.tools.web import OFF_MESSAGE, web_search

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def docs(tmp_path):
    pytest.importorskip("bm25s")
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "garden.md").write_text("# Garden\n\nTomatoes need sun and water every day.\n\n## Pests\n\n"
                                      "Aphids on the roses: spray soapy water.\n")
    (folder / "sub" / "kitchen.txt").write_text("The kettle descaling uses vinegar.\n")
    (folder / "notes.bin").write_text("tomatoes tomatoes tomatoes")            # not a text/markdown file
    (tmp_path / "secret.md").write_text("The launch password is swordfish.\n")
    (folder / "link.md").symlink_to(tmp_path / "secret.md")                    # a symlink out of the folder
    (folder / "linkdir").symlink_to(tmp_path, target_is_directory=True)
    return folder


def search(folder, **arguments):
    return make_registry(["search_documents"], docs=folder).run("search_documents", arguments)


def test_bm25_finds_the_passage_with_its_title(docs):
    result = search(docs, query="aphids roses", k=2)
    assert result.ok, result.error
    top = result.value["results"][0]
    assert (top["title"], top["file"]) == ("Pests", "garden.md")
    assert top["snippet"] == "Aphids on the roses: spray soapy water."
    kitchen = search(docs, query="kettle vinegar", path="sub").value["results"]
    assert [r["file"] for r in kitchen] == ["sub/kitchen.txt"]
    assert search(docs, query="zebra").value["results"] == []


@pytest.mark.parametrize("path, message", [("../secret.md", "contains '..'"), ("sub/../../secret.md", "contains '..'"),
                                           ("/etc", "is absolute"), ("linkdir/secret.md", "leads outside")])
def test_paths_out_of_the_folder_are_refused(docs, path, message):
    result = search(docs, query="password", path=path)
    assert not result.ok and message in result.error


def test_symlinks_out_of_the_folder_are_never_read(docs):
    assert search(docs, query="launch password swordfish").value["results"] == []


def test_folder_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        make_registry(["search_documents"], docs=tmp_path / "missing")
    result = make_registry(["search_documents"]).run("search_documents", {"query": "x"})
    assert "no documents folder is set" in result.error


def test_answers_from_the_data_datasheet():
    pytest.importorskip("bm25s")
    result = search(REPO / "data", query="licence of the data files", k=1)
    assert result.value["results"][0]["title"] == "Licence and provenance"
    assert "CC BY 4.0" in result.value["results"][0]["snippet"]


# ------------------------------------------------------------------ web search

class StubSearx(BaseHTTPRequestHandler):
    queries: list[str] = []
    delay = 0.0

    def do_GET(self):  # noqa: N802 (http.server's name)
        time.sleep(self.delay)
        StubSearx.queries.append(parse_qs(urlparse(self.path).query)["q"][0])
        body = json.dumps({"results": [{"title": "labkit", "url": "http://127.0.0.1/labkit",
                                        "content": "LoRA fine-tuning notebooks"}] * 3}).encode()
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (the time-out test)
            pass

    def log_message(self, *args):
        pass


@pytest.fixture()
def stub_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), StubSearx)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    StubSearx.queries, StubSearx.delay = [], 0.0
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def test_web_search_is_off_by_default():
    result = make_registry(["web_search"]).run("web_search", {"query": "anything"})
    assert not result.ok and result.error == f"web_search: {OFF_MESSAGE}" and result.seconds < 0.5


def test_web_search_against_a_stub_backend(stub_server):
    settings = WebSearch(enabled=True, backend="searxng", url=stub_server)
    result = make_registry(["web_search"], web=settings).run("web_search", {"query": "labkit lora", "max_results": 2})
    assert result.ok, result.error
    assert result.value["results"] == [{"title": "labkit", "url": "http://127.0.0.1/labkit",
                                        "snippet": "LoRA fine-tuning notebooks"}] * 2
    assert StubSearx.queries == ["labkit lora"]


def test_unreachable_or_slow_backends_answer_fast(stub_server):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"  # nothing listens here
    started = time.perf_counter()
    with pytest.raises(ToolError, match="web search is unreachable"):
        web_search(WebSearch(enabled=True, backend="searxng", url=closed), "q")
    StubSearx.delay = 2.0
    with pytest.raises(ToolError, match="web search is unreachable.*Timeout"):
        web_search(WebSearch(enabled=True, backend="searxng", url=stub_server, timeout_s=0.3), "q")
    assert time.perf_counter() - started < 1.5


def test_ddgs_backend_maps_results_and_failures(monkeypatch):
    """The ddgs package replaced by a stand-in module: its result fields and its errors, no network."""
    class FakeDDGS:
        fail = False

        def __init__(self, timeout):
            self.timeout = timeout

        def text(self, query, max_results):
            if FakeDDGS.fail:
                raise ConnectionError("name resolution failed")
            return [{"title": f"{query} {i}", "href": f"https://example.org/{i}", "body": "b"} for i in range(9)]

    monkeypatch.setitem(sys.modules, "ddgs", types.SimpleNamespace(DDGS=FakeDDGS))
    hits = web_search(WebSearch(enabled=True), "lora", max_results=2)["results"]
    assert hits[0] == {"title": "lora 0", "url": "https://example.org/0", "snippet": "b"}
    FakeDDGS.fail = True
    with pytest.raises(ToolError, match="unreachable.*ConnectionError: name resolution failed"):
        web_search(WebSearch(enabled=True), "lora")


def test_web_settings_are_checked():
    with pytest.raises(ValueError, match="use one of ddgs, searxng"):
        WebSearch(backend="bing")
    with pytest.raises(ValueError, match="needs url"):
        WebSearch(enabled=True, backend="searxng")
