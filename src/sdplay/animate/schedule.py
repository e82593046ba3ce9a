"""Keyframe schedules: `"0: (1.0), 30: (1.05)"` -> one value per frame, as Deforum reads them.

A schedule is `key: value` pairs separated by commas. A value that is a number (quotes and
parentheses around it are ignored: `0: 1.0`, `0: ("1.0")`) is joined linearly to the next numeric
key; before the first key the first value holds, after the last key the last one. Any other value
is an expression (`1+0.1*sin(t/4)`), evaluated at every frame from its key up to the next key, with
`t` = frame index, `max_f` = max_frames - 1 and `s` = seed. Keys may be expressions of `max_f`
and `s` too (`(max_f/2)`, truncated toward zero like Deforum's `int()`); keys that fall outside the
animation are left out. Expressions go through an AST whitelist of arithmetic and numpy functions,
never `eval`, so a settings file cannot run code. A value that is not a finite number at some frame
is an error naming the key and the frame (Deforum fills such frames from their neighbours).
"""

from __future__ import annotations

import ast
import functools
import math
import re
from collections.abc import Callable
from typing import Any, NoReturn

import numpy as np

from ..errors import SdplayError


def _reduce(function: Callable[[Any, Any], Any]) -> Callable[..., Any]:
    """min/max of one or more values, element-wise (numexpr's one-argument form returns its argument)."""
    return lambda first, *rest: functools.reduce(function, rest, first)


def _bitwise(function: Callable[[Any, Any], Any]) -> Callable[..., Any]:
    """`&`, `|`, `~` as numexpr does them: logical on comparisons, bitwise on whole numbers."""

    def apply(*operands: Any) -> Any:
        if all(np.asarray(x).dtype == bool for x in operands):
            return function(*operands)
        if not all(np.all(np.isfinite(x) & (np.asarray(x) == np.trunc(x))) for x in operands):
            raise ValueError("'&', '|' and '~' need whole numbers or comparisons")
        return function(*(np.asarray(x).astype(np.int64) for x in operands)).astype(float)

    return apply


FUNCTIONS: dict[str, Callable[..., Any]] = {
    name: getattr(np, name)
    for name in [
        *("sin", "cos", "tan", "arcsin", "arccos", "arctan", "arctan2", "sinh", "cosh", "tanh"),
        *("arcsinh", "arccosh", "arctanh", "sqrt", "exp", "expm1", "log", "log10", "log1p", "log2"),
        *("abs", "floor", "ceil", "round", "trunc", "sign", "where", "fmod", "hypot", "copysign"),
        *("maximum", "minimum", "isnan", "isinf", "isfinite", "signbit"),
    ]
}
FUNCTIONS.update(
    asin=np.arcsin,
    acos=np.arccos,
    atan=np.arctan,
    atan2=np.arctan2,
    min=_reduce(np.minimum),
    max=_reduce(np.maximum),
    pow=np.power,
)
CONSTANTS = {"pi": math.pi, "e": math.e}
BINARY = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.true_divide,
    ast.FloorDiv: np.floor_divide,
    ast.Mod: np.mod,
    ast.Pow: np.power,
    ast.BitAnd: _bitwise(np.bitwise_and),
    ast.BitOr: _bitwise(np.bitwise_or),
}
UNARY = {ast.USub: np.negative, ast.UAdd: np.positive, ast.Invert: _bitwise(np.invert)}
COMPARE = {
    ast.Lt: np.less,
    ast.LtE: np.less_equal,
    ast.Gt: np.greater,
    ast.GtE: np.greater_equal,
    ast.Eq: np.equal,
    ast.NotEq: np.not_equal,
}
# Deforum's test for "a number" (tweened rather than evaluated per frame) once quotes and parentheses are gone;
# unlike Deforum's it allows spaces around the number, so `( 0.65 )` is tweened too (Deforum holds it).
NUMBER = re.compile(r"[+-]?(\d+(\.\d+)?|\.\d+)")


def evaluate(expression: str, variables: dict[str, Any], name: str) -> Any:
    """Evaluate an arithmetic expression over numbers and numpy arrays; anything else is refused."""
    text = expression.strip()
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, RecursionError, MemoryError):
        raise SdplayError(f"{name}: cannot read the expression {text[:200]!r}") from None
    with np.errstate(all="ignore"):
        try:
            return _node(tree.body, variables, name, text)
        except RecursionError:
            raise SdplayError(f"{name}: the expression {text[:200]!r} is nested too deeply") from None
        except (TypeError, ValueError) as error:
            raise SdplayError(f"{name}: cannot evaluate {text[:200]!r}: {error}") from None


def _node(node: ast.AST, env: dict[str, Any], name: str, text: str) -> Any:
    def sub(child: ast.AST) -> Any:
        return _node(child, env, name, text)

    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return float(node.value)  # floats only: 9**9**9 overflows to inf instead of hanging
    if isinstance(node, ast.Name):
        if node.id in env:
            return env[node.id]
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        known = ", ".join([*env, *CONSTANTS])
        raise SdplayError(f"{name}: unknown name {node.id!r} in {text!r} (known: {known})")
    if isinstance(node, ast.BinOp) and type(node.op) in BINARY:
        return BINARY[type(node.op)](sub(node.left), sub(node.right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in UNARY:
        return UNARY[type(node.op)](sub(node.operand))
    if isinstance(node, ast.Compare) and all(type(op) in COMPARE for op in node.ops):
        left, result = sub(node.left), True
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = sub(right_node)
            result = np.logical_and(result, COMPARE[type(op)](left, right))
            left = right
        return result
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        function = FUNCTIONS.get(node.func.id)
        if function is None:
            raise SdplayError(f"{name}: unknown function {node.func.id!r} in {text!r}")
        return function(*[sub(arg) for arg in node.args])
    bad = ast.get_source_segment(text, node) or type(node).__name__
    raise SdplayError(f"{name}: {bad!r} is not allowed in {text!r} (only arithmetic, t, max_f, s and math functions)")


def _top_level(text: str, separator: str) -> list[int]:
    """Positions of `separator` outside parentheses (commas inside `max(1, t)` do not split)."""
    opened: list[int] = []
    found = []
    for i, char in enumerate(text):
        if char == "(":
            opened.append(i)
        elif char == ")":
            if not opened:
                raise ValueError(f"unmatched ')' in {text!r}")
            opened.pop()
        elif char == separator and not opened:
            found.append(i)
    if opened:
        raise ValueError(f"unclosed parenthesis in {text[opened[0] :]!r}")
    return found


def split_keyframes(text: str, name: str) -> list[tuple[str, str]]:
    """`"0: (1), 10: sin(t)"` -> [("0", "(1)"), ("10", "sin(t)")]: keys and values as written, quotes removed."""
    text = text.replace('"', "").replace("'", "")
    try:
        commas = _top_level(text, ",")
    except ValueError as error:
        raise SdplayError(f"{name}: {error}") from None
    pairs = []
    for start, end in zip([-1, *commas], [*commas, len(text)], strict=True):
        part = text[start + 1 : end].strip()
        if not part:
            continue  # a trailing or doubled comma
        colons = _top_level(part, ":")
        if not colons:
            raise SdplayError(f"{name}: expected 'frame: (value)' at {part!r}")
        if len(colons) > 1:
            raise SdplayError(f"{name}: a ',' is missing in {part!r}")
        key, value = part[: colons[0]].strip(), part[colons[0] + 1 :].strip()
        if not key or not value or not value.strip("() "):
            raise SdplayError(f"{name}: expected 'frame: (value)' at {part!r}")
        pairs.append((key, value))
    if not pairs:
        raise SdplayError(f"{name}: empty schedule; write e.g. '0: (1.0)'")
    return pairs


def number(value: str) -> float | None:
    """The number a value stands for (`( 0.65 )`, `"1.0"`), or None when it is an expression."""
    bare = value.replace("(", "").replace(")", "").replace('"', "").replace("'", "").strip()
    return float(bare) if NUMBER.fullmatch(bare) else None


def frame_key(key: str | int, max_frames: int, name: str, seed: int = 0) -> int | None:
    """A keyframe index: a whole number or an expression of max_f and s, truncated toward zero.

    A key that falls before frame 0 (`max_f-2` in a 2-frame animation, `-3`) is None: Deforum skips it.
    """
    text = str(key).strip().replace('"', "").replace("'", "")
    value = evaluate(text, {"max_f": float(max_frames - 1), "s": float(seed)}, name)
    if np.ndim(value) or not np.isfinite(value):
        raise SdplayError(f"{name}: keyframe {text!r} must be a frame number >= 0")
    frame = int(value)
    return frame if frame >= 0 else None


def keyed_values(pairs: Any, max_frames: int, name: str, seed: int = 0) -> dict[int, Any]:
    """{frame: value} of the keys that fall on frame 0 or later (later keys win on a tie)."""
    keyed = {}
    for key, value in pairs:
        frame = frame_key(key, max_frames, name, seed)
        if frame is not None:
            keyed[frame] = value
    if not keyed:
        written = ", ".join(repr(str(key)) for key, _ in pairs)
        raise SdplayError(f"{name}: no keyframe falls on frame 0 or later (keys {written})")
    return keyed


def schedule_values(spec: str | float | int, max_frames: int, seed: int, name: str) -> np.ndarray:
    """One float per frame from a schedule string (or a plain number, constant for every frame)."""
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        if not math.isfinite(spec):
            raise SdplayError(f"{name} must be a finite number, got {spec!r}")
        return np.full(max_frames, float(spec))
    if not isinstance(spec, str):
        raise SdplayError(f"{name} must be a schedule like '0: (1.0)' or a number, got {spec!r}")
    keyed = keyed_values(split_keyframes(spec, name), max_frames, name, seed)
    keys = sorted(k for k in keyed if k < max_frames)
    if not keys:  # every key lies past the end: the first one's value holds throughout
        first = min(keyed)
        keyed[max_frames - 1], keys = keyed[first], [max_frames - 1]
    values = np.full(max_frames, np.nan)
    frames = np.arange(max_frames, dtype=float)
    env = {"max_f": float(max_frames - 1), "s": float(seed)}
    for index, key in enumerate(keys):
        value = number(keyed[key])
        if value is None:
            end = keys[index + 1] if index + 1 < len(keys) else max_frames
            span = frames[key:end]
            values[key:end] = _per_frame(evaluate(keyed[key], {"t": span, **env}, name), span, keyed[key], name)
        else:
            end, values[key] = key + 1, value
        bad = np.flatnonzero(~np.isfinite(values[key:end]))
        if len(bad):
            _not_finite(name, keyed[key], key + int(bad[0]), max_frames)
    known = np.flatnonzero(~np.isnan(values))
    return np.interp(frames, known, values[known])


def _per_frame(result: Any, span: np.ndarray, expression: str, name: str) -> np.ndarray:
    """The expression's result as one float per frame of the span (a constant is repeated)."""
    try:
        return np.broadcast_to(np.asarray(result, dtype=float), span.shape)
    except (TypeError, ValueError):
        raise SdplayError(f"{name}: {expression!r} does not give one number per frame") from None


def _not_finite(name: str, expression: str, frame: int, max_frames: int) -> NoReturn:
    hint = " (max_f is 0 when max_frames is 1)" if max_frames == 1 and "max_f" in expression else ""
    raise SdplayError(f"{name}: {expression!r} is not a finite number at frame {frame}{hint}")


BACKTICKS = re.compile(r"`([^`]*)`")


def prompt_maths(text: str, frame: int, max_frames: int, name: str = "prompts") -> str:
    """Deforum's maths in prompts: each `` `expression` `` (of t, max_f) replaced by its value at `frame`,
    written as Python writes the float (`` (cat:`1+t/10`) `` -> `(cat:1.2)` at frame 2)."""
    if "`" not in text:
        return text
    env = {"t": float(frame), "max_f": float(max_frames - 1)}

    def value(match: re.Match[str]) -> str:
        result = evaluate(match.group(1), env, name)
        if np.ndim(result) or not np.isfinite(result):
            raise SdplayError(f"{name}: {match.group(0)!r} is not a finite number at frame {frame}")
        return str(float(result))

    return BACKTICKS.sub(value, text)


def string_keyframes(items: dict[Any, str], max_frames: int, name: str) -> list[str]:
    """Per-frame strings from `{frame: text}` (prompts): each holds until the next key."""
    for key, text in items.items():
        if not isinstance(text, str):
            raise SdplayError(f"{name}: the entry for {key!r} must be text, got {text!r}")
    keyed = keyed_values(items.items(), max_frames, name)
    keys = sorted(keyed)
    out, current = [], keyed[keys[0]]
    for frame in range(max_frames):
        current = keyed.get(frame, current)
        out.append(current)
    return out
