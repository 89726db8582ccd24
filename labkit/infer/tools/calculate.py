"""``calculate``: arithmetic on numbers, by walking Python's ``ast`` with an allow-list (never ``eval``).

Allowed: int and float literals, ``+ - * / // % **``, unary ``+``/``-`` and parentheses. Anything else
(names, calls, attributes, subscripts, strings, comparisons...) is refused before a single operation runs.
Bounds keep every call fast: the expression's length, the exponent, and the size of every intermediate value.
Hand-written rather than a library: the allow-list is the point, and it fits in a screen.
"""

from __future__ import annotations

import ast
import math
import operator
from typing import Any, Callable

from labkit.infer.tools.registry import Tool, ToolError

MAX_LENGTH = 200
MAX_EXPONENT = 1000
MAX_MAGNITUDE = 10.0 ** 300  # about float's range: larger integers would only be printed, not believed

OPERATORS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
UNARY: dict[type, Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
ALLOWED = "numbers, + - * / // % ** and parentheses"


def _refuse(node: ast.AST) -> ToolError:
    kind = {ast.Call: "function calls", ast.Name: "names", ast.Attribute: "attribute access",
            ast.Subscript: "indexing", ast.Compare: "comparisons", ast.Lambda: "lambdas"}.get(type(node))
    return ToolError(f"{kind or type(node).__name__ + ' expressions'} are not allowed (only {ALLOWED})")


def _check_all(tree: ast.AST) -> None:
    """Refuse the whole expression before evaluating any part of it."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Expression, ast.BinOp, ast.UnaryOp)):
            continue
        if isinstance(node, tuple(OPERATORS) + tuple(UNARY)):
            continue
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            continue
        raise _refuse(node)


def _bounded(value: int | float) -> int | float:
    if isinstance(value, float) and math.isnan(value):
        raise ToolError("the result is not a number")
    if abs(value) > MAX_MAGNITUDE:  # float overflow (inf) included
        raise ToolError("a value is too large (over 1e300)")
    return value


def _power(base: int | float, exponent: int | float) -> int | float:
    if abs(exponent) > MAX_EXPONENT:
        raise ToolError(f"exponent {exponent} is too large (at most {MAX_EXPONENT} in size)")
    if base == 0 and exponent < 0:
        raise ToolError("division by zero (0 to a negative power)")
    if base != 0 and exponent * math.log10(abs(base)) > 300:
        raise ToolError("a power is too large (over 1e300)")
    if base < 0 and not float(exponent).is_integer():
        raise ToolError("a negative number to a fractional power is not a real number")
    return base ** exponent


def _evaluate(node: ast.AST) -> int | float:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant):
        return _bounded(node.value)
    if isinstance(node, ast.UnaryOp):
        return UNARY[type(node.op)](_evaluate(node.operand))
    if isinstance(node, ast.BinOp):
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow):
            return _bounded(_power(left, right))
        if isinstance(node.op, (ast.Div, ast.FloorDiv, ast.Mod)) and right == 0:
            raise ToolError("division by zero")
        return _bounded(OPERATORS[type(node.op)](left, right))
    raise _refuse(node)  # unreachable after _check_all; kept so a gap in the allow-list fails closed


def calculate(expression: str) -> int | float:
    """The value of an arithmetic expression; integral floats come back as ints (``6/2`` -> 3)."""
    text = expression.strip()
    if not text:
        raise ToolError("the expression is empty")
    if len(text) > MAX_LENGTH:
        raise ToolError(f"the expression has {len(text)} characters; at most {MAX_LENGTH}")
    text = text.replace("^", "**").replace("×", "*").replace("÷", "/")  # common ways people write them
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise ToolError(f"not an arithmetic expression: {expression!r} (use {ALLOWED})") from None
    _check_all(tree)
    value = _evaluate(tree)
    if isinstance(value, float):
        value = float(f"{value:.12g}")  # 0.1 + 0.2 -> 0.3: binary rounding noise is not part of the answer
        if value.is_integer() and abs(value) < 2 ** 53:
            return int(value)
    return value


CALCULATE = Tool(
    "calculate", "Evaluate an arithmetic expression",
    {"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]},
    calculate, timeout_s=5.0)
