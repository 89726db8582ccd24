"""A small renderer for the subset of Go's ``text/template`` that labkit's Ollama ``TEMPLATE`` s use.

Ollama renders a Modelfile's ``TEMPLATE`` with Go's text/template; labkit checks, before it writes one, that the
template renders every probe conversation exactly as the model's Jinja chat template does. No Python package
renders Go templates (and Go is not a dependency), so this hand-written subset does it: text, ``{{- -}}`` trim
markers, ``range $i, $m := .Messages``, ``if / else if / else / end``, ``$x := ...`` and ``$x = ...``, the
functions ``eq ne and or not``, fields (``.Messages``, ``$m.Role``, ``$.X``), string literals and parentheses.
Anything else raises :class:`GoTemplateError`, so a template outside the subset cannot pass the check silently.
"""

from __future__ import annotations

import re
from typing import Any

ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)
TOKEN = re.compile(r'\s*("(?:[^"\\]|\\.)*"|\(|\)|:=|=|,|\$?[A-Za-z_.$][\w.$]*|-?\d+)')
ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}


class GoTemplateError(ValueError):
    """The template uses something outside the subset, or is malformed."""


def _lex(source: str) -> list[tuple[str, str]]:
    """[("text", s) | ("action", body)], with the trim markers applied to the neighbouring text."""
    parts: list[tuple[str, str]] = []
    position, trim_next = 0, False
    for match in ACTION.finditer(source):
        text = source[position:match.start()]
        if trim_next:
            text = text.lstrip()
        if match.group(1):
            text = text.rstrip()
        parts.append(("text", text))
        parts.append(("action", match.group(2).strip()))
        trim_next, position = bool(match.group(3)), match.end()
    tail = source[position:]
    parts.append(("text", tail.lstrip() if trim_next else tail))
    return parts


def _words(body: str) -> list[str]:
    words, position = [], 0
    while position < len(body):
        match = TOKEN.match(body, position)
        if not match:
            if body[position:].strip():
                raise GoTemplateError(f"cannot read {body[position:]!r} in {{{{ {body} }}}}")
            break
        words.append(match.group(1))
        position = match.end()
    return words


def _parse(parts: list, index: int, closers: tuple[str, ...]) -> tuple[list, int, str]:
    """Nodes until one of ``closers`` (an action word); returns (nodes, next index, the closer met)."""
    nodes: list = []
    while index < len(parts):
        kind, body = parts[index]
        index += 1
        if kind == "text":
            if body:
                nodes.append(("text", body))
            continue
        head = body.split(None, 1)[0] if body else ""
        if head in ("end", "else") and head in closers or body.startswith("else if") and "else" in closers:
            return nodes, index - 1, body
        if head == "if":
            node, index = _parse_if(parts, index, body[2:].strip())
        elif head == "range":
            node, index = _parse_range(parts, index, body[5:].strip())
        elif head in ("end", "else", "with", "define", "template", "block"):
            raise GoTemplateError(f"{{{{ {body} }}}} is not supported here")
        else:
            node = ("expr", _words(body))
        nodes.append(node)
    if closers:
        raise GoTemplateError(f"missing {{{{ end }}}} (expected one of {closers})")
    return nodes, index, ""


def _parse_if(parts: list, index: int, condition: str) -> tuple[tuple, int]:
    branches = []
    while True:
        body, index, closer = _parse(parts, index, ("else", "end"))
        branches.append((_words(condition) if condition is not None else None, body))
        index += 1
        if closer == "end":
            return ("if", branches), index
        condition = closer[7:].strip() if closer.startswith("else if") else None


def _parse_range(parts: list, index: int, header: str) -> tuple[tuple, int]:
    words = _words(header)
    names: list[str] = []
    if ":=" in words:
        split = words.index(":=")
        names, words = [w for w in words[:split] if w != ","], words[split + 1:]
    body, index, closer = _parse(parts, index, ("end",))
    return ("range", names, words, body), index + 1


# ------------------------------------------------------------------ evaluation

FUNCTIONS = {
    "eq": lambda a, *b: any(a == x for x in b), "ne": lambda a, b: a != b,
    "not": lambda a: not _truth(a),
}


def _truth(value: Any) -> bool:
    return bool(value) if value is not None else False


class _Scope:
    def __init__(self, data: Any):
        self.data, self.frames = data, [{"$": data}]

    def lookup(self, name: str) -> Any:
        for frame in reversed(self.frames):
            if name in frame:
                return frame[name]
        raise GoTemplateError(f"undefined variable {name}")

    def assign(self, name: str, value: Any) -> None:
        for frame in reversed(self.frames):
            if name in frame:
                frame[name] = value
                return
        raise GoTemplateError(f"assignment to undeclared variable {name}")


def _field(value: Any, path: list[str]) -> Any:
    for name in path:
        if not name:
            continue
        value = value.get(name) if isinstance(value, dict) else getattr(value, name, None)
    return value


def _operand(word: str, scope: _Scope, dot: Any) -> Any:
    if word.startswith('"'):
        return re.sub(r"\\(.)", lambda m: ESCAPES.get(m.group(1), m.group(1)), word[1:-1])
    if re.fullmatch(r"-?\d+", word):
        return int(word)
    if word.startswith("$"):
        name, _, rest = word.partition(".")
        return _field(scope.lookup(name), rest.split(".") if rest else [])
    if word.startswith("."):
        return _field(dot, word[1:].split("."))
    raise GoTemplateError(f"unknown word {word!r}")


def _group(words: list[str]) -> list:
    """Nest parenthesised sub-expressions: ['eq', '(', 'not', 'x', ')'] -> ['eq', ['not', 'x']]."""
    stack: list[list] = [[]]
    for word in words:
        if word == "(":
            stack.append([])
        elif word == ")":
            inner = stack.pop()
            stack[-1].append(inner)
        else:
            stack[-1].append(word)
    if len(stack) != 1:
        raise GoTemplateError(f"unbalanced parentheses in {' '.join(words)}")
    return stack[0]


def _call(items: list, scope: _Scope, dot: Any) -> Any:
    def value(item):
        return _call(item, scope, dot) if isinstance(item, list) else _operand(item, scope, dot)

    head, args = items[0], items[1:]
    if isinstance(head, str) and head in ("and", "or"):  # Go 1.18+: both stop at the first deciding argument
        result = None
        for arg in args:
            result = value(arg)
            if _truth(result) == (head == "or"):
                return result
        return result
    if isinstance(head, str) and head in FUNCTIONS:
        return FUNCTIONS[head](*map(value, args))
    if args:
        raise GoTemplateError(f"unknown function {head!r}")
    return value(head)


def _evaluate(words: list[str], scope: _Scope, dot: Any) -> Any:
    return _call(_group(words), scope, dot)


def _run(nodes: list, scope: _Scope, dot: Any, out: list[str]) -> None:
    for node in nodes:
        if node[0] == "text":
            out.append(node[1])
        elif node[0] == "expr":
            words = node[1]
            if len(words) > 2 and words[1] in (":=", "="):
                result = _evaluate(words[2:], scope, dot)
                if words[1] == ":=":
                    scope.frames[-1][words[0]] = result
                else:
                    scope.assign(words[0], result)
            else:
                result = _evaluate(words, scope, dot)
                out.append("" if result is None else str(result))
        elif node[0] == "if":
            for condition, body in node[1]:
                if condition is None or _truth(_evaluate(condition, scope, dot)):
                    scope.frames.append({})
                    _run(body, scope, dot, out)
                    scope.frames.pop()
                    break
        elif node[0] == "range":
            _, names, words, body = node
            for i, item in enumerate(_evaluate(words, scope, dot) or []):
                frame = dict(zip(names, (i, item))) if len(names) == 2 else ({names[0]: item} if names else {})
                scope.frames.append(frame)
                _run(body, scope, item, out)
                scope.frames.pop()


def render(source: str, data: dict) -> str:
    """Render ``source`` (Go text/template subset) with ``data`` as dot (e.g. ``{"Messages": [...]}``)."""
    nodes, _, _ = _parse(_lex(source), 0, ())
    out: list[str] = []
    _run(nodes, _Scope(data), data, out)
    return "".join(out)
