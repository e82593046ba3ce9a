"""Keyframe schedules: Deforum's string format -> one value per frame, evaluated safely."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from sdplay.animate.schedule import schedule_values, split_keyframes, string_keyframes
from sdplay.cli import app
from sdplay.errors import SdplayError

CORPUS = json.loads((Path(__file__).parent / "data" / "deforum_schedules.json").read_text())


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
    assert split_keyframes("0: (max(1, min(t, (3)))), 4:(2)", "x") == [("0", "(max(1, min(t, (3))))"), ("4", "(2)")]
    values = schedule_values("0: (where(t > 2, 1, 0)), 4:(arctan2(1, 1))", 6, 0, "x")
    assert list(values[:4]) == [0, 0, 0, 1] and values[5] == pytest.approx(np.pi / 4)


@pytest.mark.parametrize("entry", CORPUS, ids=lambda e: f"{e['source']}:{e['schedule'][:40]}@{e['max_frames']}")
def test_the_corpus_gives_deforums_values_or_a_listed_difference(entry) -> None:
    """Deforum's defaults, docs, users' strings and edge cases, with the values Deforum's own parser gave."""
    args = entry["schedule"], entry["max_frames"], entry["seed"], "zoom"
    if "expected_error" in entry:
        with pytest.raises(SdplayError, match="not a finite number at frame"):
            schedule_values(*args)
        return
    expected = entry.get("expected", entry["deforum"])
    assert np.allclose(schedule_values(*args), expected, atol=1e-6, rtol=0)
    if entry["source"] != "edge":
        assert "difference" not in entry  # every string from Deforum's defaults, docs and issues agrees


def test_the_shapes_deforum_files_use() -> None:
    assert list(schedule_values("(max_f/2):(10), 0:(0)", 11, 0, "x")[[0, 5, 10]]) == [0, 10, 10]  # keys in parentheses
    assert list(schedule_values("0:1.0, 4: 2", 5, 0, "x")) == [1.0, 1.25, 1.5, 1.75, 2.0]  # values without them
    assert list(schedule_values("0: (\"0.5\"), 2: '1'", 3, 0, "x")) == [0.5, 0.75, 1.0]  # quoted numbers
    assert schedule_values("0:(arcsinh(t)+arccosh(t+1)+arctanh(t/4))", 2, 0, "x")[1] == pytest.approx(
        np.arcsinh(1) + np.arccosh(2) + np.arctanh(0.25)
    )
    assert list(schedule_values("0:(0), s:(1)", 5, 2, "x")) == [0, 0.5, 1, 1, 1]  # the seed in a key
    assert list(schedule_values("0:(0), max_f-1.5:(1)", 2, 0, "x")) == [1, 1]  # keys truncate toward zero, like int()


def test_expressions_are_evaluated_per_frame_and_held_numbers_are_tweened() -> None:
    assert list(schedule_values("0:(1+1), 2:(4)", 4, 0, "x")) == [2, 2, 4, 4]  # an expression: held until its next key
    assert list(schedule_values("0:(1.), 2:(4)", 4, 0, "x")) == [1, 1, 4, 4]  # as Deforum, "1." is not a number
    assert list(schedule_values("0:( 0.5 ), 2:(1)", 3, 0, "x")) == [0.5, 0.75, 1]  # Deforum holds it: a listed bug
    assert list(schedule_values("0:(t&1), 4:(~t), 6:(t|2)", 8, 0, "x")) == [0, 1, 0, 1, -5, -6, 6, 7]  # numexpr's
    with pytest.raises(SdplayError, match="whole numbers or comparisons"):
        schedule_values("0:((t/2)&1)", 3, 0, "x")


@pytest.mark.parametrize(
    "spec, frames, message",
    [
        ("0: (0.4*sin(2*3.14*t/max_f))", 1, "frame 0 (max_f is 0 when max_frames is 1)"),  # README's own example
        ("0: (0), 3: (1/(t-4))", 8, "'(1/(t-4))' is not a finite number at frame 4"),
        ("0: (sqrt(t-2))", 5, "frame 0"),
        ("0: (1), 2: (log(t-2))", 5, "'(log(t-2))' is not a finite number at frame 2"),
        ("0: (1), 3: (1e999)", 5, "frame 3"),
        ("0: (1), 3: (9**9**9)", 5, "frame 3"),
    ],
)
def test_a_value_that_is_not_a_finite_number_names_the_key_and_frame(spec: str, frames: int, message: str) -> None:
    with pytest.raises(SdplayError, match="^rotation_3d_y: ") as info:
        schedule_values(spec, frames, 0, "rotation_3d_y")
    assert message in str(info.value)


def test_the_readme_example_with_one_frame_is_one_error_line(tmp_path) -> None:
    schedule = "rotation_3d_y=0: (0.4*sin(2*3.14*t/max_f))"
    result = CliRunner().invoke(app, ["animate", "--set", "max_frames=1", "--set", schedule, "--outdir", tmp_path])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        "error: rotation_3d_y: '(0.4*sin(2*3.14*t/max_f))' is not a finite number at frame 0"
        " (max_f is 0 when max_frames is 1)"
    ]


def test_numbers_are_constant_schedules_and_prompts_hold_until_the_next_key() -> None:
    assert list(schedule_values(0.65, 3, 0, "strength_schedule")) == [0.65] * 3
    assert string_keyframes({"0": "a", "max_f": "b"}, 4, "prompts") == ["a", "a", "a", "b"]


@pytest.mark.parametrize(
    "text, quoted",
    [
        ("0: (1.0", "'(1.0'"),
        ("0: 1.0)", "')'"),
        ("0: (1.0) 10: (2)", "'0: (1.0) 10: (2)'"),
        ("zoom", "'zoom'"),
        ("0: ()", "'0: ()'"),
        ("0: (2 +* 3)", "'(2 +* 3)'"),
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
