"""Offline built-in tools (``calculate`` lives in its own module) and the default registry.

``convert_units`` keeps the training rows' schema for that tool (value, from_unit, to_unit), so a model
tuned on ``data/function_calling`` calls it as trained. Units come from ``pint`` (a maintained units
library: every unit and prefix, temperatures with their offsets); it is an optional dependency, and
without it the tool says how to install it.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path
from typing import Any

from labkit.infer.tools.calculate import CALCULATE
from labkit.infer.tools.registry import Tool, ToolError, ToolRegistry

PINT_HINT = "convert_units needs the 'pint' package: pip install pint"


@lru_cache(maxsize=1)
def _units():
    try:
        import pint
    except ImportError:
        raise ToolError(PINT_HINT) from None
    return pint.UnitRegistry()


def _unit(registry, name: str):
    import pint

    try:
        return registry.Unit(name.strip())
    except (pint.errors.UndefinedUnitError, AttributeError, ValueError, TypeError):
        raise ToolError(f"unknown unit {name!r} (try names like 'kilometers', 'pounds', 'celsius')") from None


def convert_units(value: float, from_unit: str, to_unit: str) -> dict[str, Any]:
    """``value`` in ``from_unit`` expressed in ``to_unit`` (temperatures included)."""
    registry = _units()  # first: without pint it raises the ToolError that says how to install it
    import pint

    source, target = _unit(registry, from_unit), _unit(registry, to_unit)
    try:
        converted = registry.Quantity(value, source).to(target).magnitude
    except pint.errors.DimensionalityError:
        raise ToolError(f"cannot convert {from_unit} to {to_unit}: they measure different things") from None
    converted = float(f"{converted:.10g}")  # 49.99999999999994 -> 50.0
    return {"value": converted, "unit": to_unit, "text": f"{value:g} {from_unit} = {converted:g} {to_unit}"}


def get_current_time(timezone: str = "UTC") -> dict[str, str]:
    """The current date and time in an IANA time zone such as ``Europe/Paris``."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        zone = ZoneInfo(timezone.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ToolError(f"unknown time zone {timezone!r}: use an IANA name like 'Europe/Paris' or 'UTC'") from None
    now = dt.datetime.now(zone)
    return {"timezone": timezone, "iso": now.isoformat(timespec="seconds"),
            "text": now.strftime("%A %d %B %Y, %H:%M:%S %Z")}


CONVERT_UNITS = Tool(
    "convert_units", "Convert a measurement between units",
    {"type": "object", "properties": {"value": {"type": "number"}, "from_unit": {"type": "string"},
                                      "to_unit": {"type": "string"}},
     "required": ["value", "from_unit", "to_unit"]},
    convert_units)

GET_CURRENT_TIME = Tool(
    "get_current_time", "Current date and time in a time zone",
    {"type": "object", "properties": {"timezone": {"type": "string"}}, "required": []},
    get_current_time, timeout_s=5.0)

OFFLINE_TOOLS = ("calculate", "convert_units", "get_current_time", "search_documents")
ALL_TOOLS = (*OFFLINE_TOOLS, "web_search")


def default_registry(docs: str | Path | None = None, web=None) -> ToolRegistry:
    """Every built-in: ``search_documents`` over ``docs`` (without a folder it says to pick one) and
    ``web_search`` with the settings ``web`` (a :class:`labkit.infer.tools.web.WebSearch`; off by default)."""
    from labkit.infer.tools.documents import documents_tool
    from labkit.infer.tools.web import WebSearch, web_search_tool

    registry = ToolRegistry()
    for tool in (CALCULATE, CONVERT_UNITS, GET_CURRENT_TIME, documents_tool(docs),
                 web_search_tool(web or WebSearch())):
        registry.add(tool)
    return registry


def make_registry(names: str | list[str] | None = None, docs: str | Path | None = None, web=None) -> ToolRegistry:
    """The built-ins named in ``names`` (a list or "calculate,search_documents"); all of them when None."""
    registry = default_registry(docs, web)
    if names is None:
        return registry
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    return registry.subset(names)
