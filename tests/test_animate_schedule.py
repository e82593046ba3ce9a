"""Keyframe schedules: Deforum's string format -> one value per frame, evaluated safely."""

from __future__ import annotations

import numpy as np
import pytest

from sdplay.animate.schedule import schedule_values, split_keyframes, string_keyframes
from sdplay.errors import SdplayError


def test_linear_between_keys_and_held_outside_them() -> None:
    values = schedule_values("10: (1.0), 20: (2.0)", 31, 0, "zoom")
    assert values[0] == 1.0 and values[10] == 1.0
    assert values[15] == pytest.approx(1.5)
    assert values[20] == 2.0 and values[30] == 2.0


def test_expression_runs_from_its_key_to_the_next_key() -> None:
    values = schedule_values("0: (0), 5: (1.0025+0.002*sin(1.25*3.14*t/30)), 8: (7)", 10, 0, "zoom")
    t = np.arange(5, 8)
    assert np.allclose(values[5:8], 1.0025 + 0.002 * np.sin(1.25 * 3.14 * t / 30))
    assert values[1] == pytest.approx(values[5] / 5)  # linear from the numeric key 0 to the expression's first value
    assert list(values[8:]) == [7.0, 7.0]


def test_max_f_seed_and_expression_keys() -> None:
    values = schedule_values("0: (0), max_f/2: (max_f), max_f: (s)", 11, 42, "angle")
    assert values[5] == 10.0 and values[10] == 42.0
    assert values[2] == pytest.approx(4.0)
    short = schedule_values('0: (s), "max_f-2": (-1), max_f: (3)', 2, 7, "seed_schedule")  # max_f-2 < 0: dropped
    assert list(short) == [7.0, 3.0]


def test_commas_and_nested_parentheses_inside_an_expression() -> None:
    assert split_keyframes("0: (max(1, min(t, (3)))), 4:(2)", "x") == [("0", "max(1, min(t, (3)))"), ("4", "2")]
    values = schedule_values("0: (where(t > 2, 1, 0)), 4:(arctan2(1, 1))", 6, 0, "x")
    assert list(values[:4]) == [0, 0, 0, 1] and values[5] == pytest.approx(np.pi / 4)


def test_numbers_are_constant_schedules_and_prompts_hold_until_the_next_key() -> None:
    assert list(schedule_values(0.65, 3, 0, "strength_schedule")) == [0.65] * 3
    assert string_keyframes({"0": "a", "max_f": "b"}, 4, "prompts") == ["a", "a", "a", "b"]


@pytest.mark.parametrize(
    "text, quoted",
    [
        ("0: 1.0", "'1.0'"),
        ("0: (1.0", "'(1.0'"),
        ("0: (1.0) 10: (2)", "'10: (2)'"),
        ("zoom", "'zoom'"),
        ("0: (2 +* 3)", "'2 +* 3'"),
        ("0: (foo(t))", "'foo'"),
        ("0: (t.__class__)", "'t.__class__'"),
        ("-3: (1)", "'-3'"),
        ("", "empty"),
    ],
)
def test_malformed_schedules_quote_the_bad_part(text: str, quoted: str) -> None:
    with pytest.raises(SdplayError, match="^zoom: ") as info:
        schedule_values(text, 5, 0, "zoom")
    assert quoted in str(info.value)


def test_no_code_is_executed(tmp_path) -> None:
    marker = tmp_path / "ran"
    attack = f"0: (__import__('pathlib').Path({str(marker)!r}).touch())"
    with pytest.raises(SdplayError):
        schedule_values(attack, 3, 0, "zoom")
    with pytest.raises(SdplayError):
        schedule_values("0: ([x for x in ()])", 3, 0, "zoom")
    assert not marker.exists()
    with pytest.raises(SdplayError, match="not a finite number"):
        schedule_values("0: (9**9**9)", 2, 0, "zoom")  # floats only: overflows at once instead of hanging
