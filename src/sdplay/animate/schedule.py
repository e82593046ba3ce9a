"""Keyframe schedules: `"0: (1.0), 30: (1.05)"` -> one value per frame, as Deforum reads them.

Numeric keys are joined linearly; before the first key the first value holds, after the last key
the last one. A value that is an expression (`1+0.1*sin(t/4)`) is evaluated at every frame from
its key up to the next key, with `t` = frame index, `max_f` = max_frames - 1 and `s` = seed.
Keys may be expressions of `max_f` too (`max_f/2`). Expressions go through an AST whitelist of
arithmetic and numpy functions, never `eval`, so a settings file cannot run code.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import SdplayError

FUNCTIONS: dict[str, Callable[..., Any]] = {
    name: getattr(np, name)
    for name in [
        *("sin", "cos", "tan", "arcsin", "arccos", "arctan", "arctan2", "sinh", "cosh", "tanh"),
        *("sqrt", "exp", "expm1", "log", "log10", "log1p", "log2", "abs", "floor", "ceil", "round"),
        *("sign", "where", "fmod"),
    ]
}
FUNCTIONS.update(
    asin=np.arcsin, acos=np.arccos, atan=np.arctan, atan2=np.arctan2, min=np.minimum, max=np.maximum, pow=np.power
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
    ast.BitAnd: np.logical_and,
    ast.BitOr: np.logical_or,
}
UNARY = {ast.USub: np.negative, ast.UAdd: np.positive, ast.Invert: np.logical_not}
COMPARE = {
    ast.Lt: np.less,
    ast.LtE: np.less_equal,
    ast.Gt: np.greater,
    ast.GtE: np.greater_equal,
    ast.Eq: np.equal,
    ast.NotEq: np.not_equal,
}


def evaluate(expression: str, variables: dict[str, Any], name: str) -> Any:
    """Evaluate an arithmetic expression over numbers and numpy arrays; anything else is refused."""
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        raise SdplayError(f"{name}: cannot read the expression {expression.strip()!r}") from None
    with np.errstate(all="ignore"):
        return _node(tree.body, variables, name, expression.strip())


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


def split_keyframes(text: str, name: str) -> list[tuple[str, str]]:
    """`"0: (1), 10: (sin(t, 2))"` -> [("0", "1"), ("10", "sin(t, 2)")], parentheses matched."""
    pairs: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            break
        colon = text.find(":", i)
        opening = text.find("(", i)
        if colon < 0 or (0 <= opening < colon):
            raise SdplayError(f"{name}: expected 'frame: (value)' at {text[i:]!r}")
        key = text[i:colon].strip()
        i = colon + 1
        while i < n and text[i].isspace():
            i += 1
        if i >= n or text[i] != "(":
            raise SdplayError(f"{name}: the value after {key + ':'!r} must be in parentheses, at {text[i:]!r}")
        depth, start = 0, i
        while i < n:
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
            if depth == 0:
                break
        if depth:
            raise SdplayError(f"{name}: unclosed parenthesis in {text[start:]!r}")
        pairs.append((key, text[start + 1 : i - 1].strip()))
        while i < n and text[i].isspace():
            i += 1
        if i < n and text[i] != ",":
            raise SdplayError(f"{name}: expected ',' before {text[i:]!r}")
        i += 1
    if not pairs:
        raise SdplayError(f"{name}: empty schedule; write e.g. '0: (1.0)'")
    return pairs


def frame_key(key: str | int, max_frames: int, name: str) -> int | None:
    """A keyframe index: a whole number or an expression of max_f (`max_f/2` -> its floor).

    An expression that falls before frame 0 in a short animation (`max_f-2` of 2 frames) is
    dropped (None); a negative number written as such is a mistake.
    """
    text = str(key).strip().strip("'\"")
    value = evaluate(text, {"max_f": float(max_frames - 1)}, name)
    if np.ndim(value) or not np.isfinite(value) or (value < 0 and _as_number(text) is not None):
        raise SdplayError(f"{name}: keyframe {text!r} must be a frame number >= 0")
    return int(math.floor(value + 1e-9)) if value >= 0 else None


def keyed_values(pairs: Any, max_frames: int, name: str) -> dict[int, Any]:
    """{frame: value} of the keys that fall on frame 0 or later (later keys win on a tie)."""
    keyed = {}
    for key, value in pairs:
        frame = frame_key(key, max_frames, name)
        if frame is not None:
            keyed[frame] = value
    if not keyed:
        raise SdplayError(f"{name}: no keyframe falls on frame 0 or later")
    return keyed


def _as_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def schedule_values(spec: str | float | int, max_frames: int, seed: int, name: str) -> np.ndarray:
    """One float per frame from a schedule string (or a plain number, constant for every frame)."""
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return np.full(max_frames, float(spec))
    if not isinstance(spec, str):
        raise SdplayError(f"{name} must be a schedule like '0: (1.0)' or a number, got {spec!r}")
    keyed = keyed_values(split_keyframes(spec, name), max_frames, name)
    keys = sorted(k for k in keyed if k < max_frames)
    if not keys:  # every key lies past the end: the first one's value holds throughout
        first = min(keyed)
        keyed[max_frames - 1], keys = keyed[first], [max_frames - 1]
    values = np.full(max_frames, np.nan)
    frames = np.arange(max_frames, dtype=float)
    env = {"max_f": float(max_frames - 1), "s": float(seed)}
    for index, key in enumerate(keys):
        text = keyed[key]
        number = _as_number(text)
        if number is not None:
            values[key] = number
            continue
        end = keys[index + 1] if index + 1 < len(keys) else max_frames
        span = frames[key:end]
        result = np.broadcast_to(np.asarray(evaluate(text, {"t": span, **env}, name), dtype=float), span.shape)
        values[key:end] = result
    if not np.all(np.isfinite(values[~np.isnan(values)])):
        raise SdplayError(f"{name}: the schedule {spec!r} gives a value that is not a finite number")
    known = np.flatnonzero(~np.isnan(values))
    return np.interp(frames, known, values[known])


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
