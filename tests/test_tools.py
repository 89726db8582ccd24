"""Tools: the registry (schema validation, errors, time limits), calculate, the offline built-ins, the CLI."""

from __future__ import annotations

import json
import sys
import threading
import time

import pytest

from labkit.infer.tools import Tool, ToolError, ToolRegistry, make_registry
from labkit.infer.tools.calculate import calculate


# ------------------------------------------------------------------ calculate

@pytest.mark.parametrize("expression, value", [("2+3*4", 14), ("17 * 23", 391), ("7/2", 3.5), ("6/2", 3),
                                               ("0.1 + 0.2", 0.3), ("-(2**10) // 3", -342), ("2^3", 8),
                                               ("10 % 4", 2), ("2 ** -1", 0.5)])
def test_calculate_does_arithmetic(expression, value):
    result = calculate(expression)
    assert result == value and type(result) is type(value)


@pytest.mark.parametrize("expression, message", [
    ("__import__('os').system('touch {marker}')", "function calls are not allowed"),
    ("9**9**9", "exponent 387420489 is too large"),
    ("(lambda: 1)()", "not allowed"),
    ("().__class__", "not allowed"),
    ("x + 1", "names are not allowed"),
    ("'a' * 3", "not allowed"),
    ("1 < 2", "comparisons are not allowed"),
    ("1/0", "division by zero"),
    ("10.0**200 * 10.0**200", "too large"),
    ("1" * 201, "at most 200"),
    ("2 +", "not an arithmetic expression"),
])
def test_calculate_refuses_everything_else_and_runs_nothing(expression, message, tmp_path):
    marker = tmp_path / "ran"
    with pytest.raises(ToolError, match=message):
        calculate(expression.format(marker=marker))
    assert not marker.exists()


def test_nested_power_is_refused_fast():
    started = time.perf_counter()
    with pytest.raises(ToolError):
        calculate("9**9**9**9")
    assert time.perf_counter() - started < 0.5


# ------------------------------------------------------------------ the registry

def slow(seconds: float) -> str:
    time.sleep(seconds)
    return "done"


def broken(x: int) -> int:
    raise KeyError("boom")


@pytest.fixture()
def registry() -> ToolRegistry:
    reg = make_registry(["calculate"])
    reg.add(Tool("slow", "Sleeps", {"type": "object", "properties": {"seconds": {"type": "number"}},
                                    "required": ["seconds"]}, slow, timeout_s=0.3))
    reg.add(Tool("broken", "Raises", {"type": "object", "properties": {"x": {"type": "integer"}}}, broken))
    return reg


def test_a_valid_call_runs(registry):
    result = registry.run("calculate", {"expression": "2+3*4"})
    assert (result.ok, result.value, result.error) == (True, 14, None)
    assert json.loads(result.content()) == {"result": 14}


@pytest.mark.parametrize("arguments, problem", [
    ({}, "'expression' is a required property"),
    ({"expression": 5}, "expression: 5 is not of type 'string'"),
])
def test_schema_invalid_arguments_are_refused_before_running(arguments, problem):
    ran = []
    reg = ToolRegistry()
    reg.add(Tool("calculate", "x", {"type": "object", "properties": {"expression": {"type": "string"}},
                                    "required": ["expression"]}, lambda expression: ran.append(expression)))
    result = reg.run("calculate", arguments)
    assert not result.ok and result.error == f"calculate: invalid arguments: {problem}"
    assert ran == []


def test_a_raising_tool_gives_an_error_result(registry):
    result = registry.run("broken", {"x": 1})
    assert not result.ok and result.error == "broken failed: KeyError: 'boom'"
    assert json.loads(result.content()) == {"error": "broken failed: KeyError: 'boom'"}


def test_a_slow_tool_times_out_without_waiting_for_it(registry):
    started = time.perf_counter()
    result = registry.run("slow", {"seconds": 5})
    assert time.perf_counter() - started < 1.5
    assert not result.ok and result.error == "slow: timed out after 0.3 s"
    assert registry.run("slow", {"seconds": 0.01}).value == "done"


def test_an_unknown_tool_names_the_available_ones(registry):
    result = registry.run("rm_rf", {})
    assert not result.ok and "unknown tool 'rm_rf'; available: calculate, slow, broken" == result.error


def test_bad_registrations_fail_at_once():
    with pytest.raises(ValueError, match="parameters must be a JSON schema"):
        Tool("t", "d", {"type": "string"}, lambda: 1)
    with pytest.raises(ValueError, match="use letters"):
        Tool("no spaces", "d", {"type": "object", "properties": {}}, lambda: 1)
    with pytest.raises(ValueError, match="unknown tool"):
        make_registry("calculate,nope")
    with pytest.raises(ValueError, match="registered twice"):
        make_registry(["calculate"]).add(make_registry(["calculate"]).tools["calculate"])


def test_register_decorator_adds_a_function():
    reg = ToolRegistry()

    @reg.register("double", "Double a number", {"type": "object", "properties": {"n": {"type": "number"}},
                                                "required": ["n"]})
    def double(n: float) -> float:
        return 2 * n

    assert reg.run("double", {"n": 21}).value == 42 and double(1) == 2


def test_system_prompt_has_the_training_rows_format():
    from labkit.datagen import function_calling as fc

    registry = make_registry(["convert_units"])
    prompt = registry.system_prompt(follow_up=False)
    assert prompt == fc.system_prompt([fc.TOOLS_BY_NAME["convert_units"]])  # a tuned model sees what it trained on
    assert registry.tools["convert_units"].schema() == fc.TOOLS_BY_NAME["convert_units"].schema()
    assert make_registry(["calculate"]).system_prompt("Be brief.").startswith("Be brief.\n\n" + fc.SYSTEM_HEAD)


# ------------------------------------------------------------------ offline built-ins

def test_convert_units_with_pint():
    pytest.importorskip("pint")
    from labkit.infer.tools.builtins import convert_units

    assert convert_units(10, "kilometers", "miles")["value"] == pytest.approx(6.213711922)
    assert convert_units(10, "celsius", "fahrenheit")["value"] == 50.0
    assert convert_units(2, "pounds", "kilograms")["value"] == pytest.approx(0.90718474)
    with pytest.raises(ToolError, match="cannot convert kilograms to miles"):
        convert_units(1, "kilograms", "miles")
    with pytest.raises(ToolError, match="unknown unit 'furlongz'"):
        convert_units(1, "furlongz", "miles")


def test_get_current_time_in_a_zone():
    from labkit.infer.tools.builtins import get_current_time

    now = get_current_time("Asia/Tokyo")
    assert now["iso"].endswith("+09:00")
    with pytest.raises(ToolError, match="unknown time zone 'Mars/Base'"):
        get_current_time("Mars/Base")


# ------------------------------------------------------------------ labkit tools

def run_cli(capsys, *argv) -> tuple[int, str]:
    from labkit.cli import main

    try:
        code = main(["tools", *argv])
    except SystemExit as stop:
        code = stop.code
    return code, capsys.readouterr().out


def test_cli_call_prints_the_result(capsys):
    code, out = run_cli(capsys, "--call", '{"name": "calculate", "arguments": {"expression": "2+3*4"}}', "--json")
    assert code == 0 and json.loads(out)["result"] == 14


@pytest.mark.parametrize("expression, message", [("__import__('os').system('id')", "function calls are not allowed"),
                                                 ("9**9**9", "exponent 387420489 is too large")])
def test_cli_call_prints_clear_errors(capsys, expression, message):
    call = json.dumps({"name": "calculate", "arguments": {"expression": expression}})
    code, out = run_cli(capsys, "--call", call, "--json")
    record = json.loads(out)
    assert code == 1 and record["ok"] is False and message in record["error"] and record["result"] is None


def test_cli_lists_tool_schemas(capsys):
    code, out = run_cli(capsys, "--list", "--json")
    names = [t["name"] for t in json.loads(out)["tools"]]
    assert code == 0 and names == ["calculate", "convert_units", "get_current_time", "search_documents", "web_search"]


def test_cli_bad_json_is_one_clear_line(capsys):
    from labkit.cli import main

    assert main(["tools", "--call", "{name: calculate}"]) == 1
    assert "--call is not valid JSON" in capsys.readouterr().err


def test_a_timed_out_worker_cannot_hold_up_the_exit(registry):
    registry.run("slow", {"seconds": 0.8})
    abandoned = [t for t in threading.enumerate() if t.name == "tool-slow"]
    assert abandoned and all(t.daemon for t in abandoned)  # still running, and a daemon: exit does not wait


def test_missing_optional_packages_are_named(monkeypatch, tmp_path):
    from labkit.infer.tools import builtins, documents

    builtins._units.cache_clear()
    documents._index.cache_clear()
    monkeypatch.setitem(sys.modules, "pint", None)   # import pint now raises ImportError
    monkeypatch.setitem(sys.modules, "bm25s", None)
    (tmp_path / "a.md").write_text("hello")
    registry = make_registry(["convert_units", "search_documents"], docs=tmp_path)
    assert registry.run("convert_units", {"value": 1, "from_unit": "m", "to_unit": "ft"}).error == \
        "convert_units: convert_units needs the 'pint' package: pip install pint"
    assert "needs the 'bm25s' package: pip install bm25s" in registry.run("search_documents", {"query": "hi"}).error
    builtins._units.cache_clear()
    documents._index.cache_clear()


def test_chat_with_bad_tools_fails_before_loading_a_model(capsys):
    from labkit.cli import main

    assert main(["chat", "--tools", "calculate,nope"]) == 1
    assert "unknown tool(s) nope; choose from calculate" in capsys.readouterr().err
    assert main(["chat", "--tools", "search_documents", "--docs", "/no/such/folder"]) == 1
    assert "documents folder /no/such/folder does not exist" in capsys.readouterr().err


def test_chat_tools_panel_registry(monkeypatch):
    import types

    from labkit.infer.chat import tool_registry

    fake = types.SimpleNamespace(DDGS=lambda timeout: types.SimpleNamespace(
        text=lambda query, max_results: [{"title": query, "href": "h", "body": "b"}]))
    monkeypatch.setitem(sys.modules, "ddgs", fake)                     # never the internet

    assert tool_registry([], "", False) is None                       # no tool on: the plain chat
    assert tool_registry(["calculate"], "", False).names() == ["calculate"]
    web = tool_registry(["calculate"], "", True)                       # the Web search box adds it, turned on
    assert web.names() == ["calculate", "web_search"]
    assert web.run("web_search", {"query": "x"}).value["results"][0]["title"] == "x"
