"""The classic `python run.py --mode ... --device ...` flow, answered through stdin."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sdplay.legacy import Asker, main, parse_size, parse_strength
from sdplay.output import read_parameters

RUN_PY = Path(__file__).resolve().parent.parent / "run.py"


def run_py(args: list[str], answers: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(RUN_PY), *args], input=answers, capture_output=True, text=True, cwd=cwd, timeout=300
    )


def test_txt2img_piped_answers_save_without_overwriting(tiny_model, tmp_path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "image_0.png").write_bytes(b"earlier")
    answers = "\n".join(["", "a red circle", "64 sixty", "64 64"]) + "\n"
    result = run_py(
        ["--mode", "txt2img", "--device", "cpu", "--save", "--num", "2", "--model", str(tiny_model)], answers, tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "invalid: give two whole numbers" in result.stderr
    assert (tmp_path / "images" / "image_0.png").read_bytes() == b"earlier"
    assert read_parameters(tmp_path / "images" / "image_2.png")["prompt"] == "a red circle"


def test_in_process_flows(tiny_model, picture, mask, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    answers = iter(["a cat", "", "nowhere.png", str(picture), str(mask), "1.7", "0.6"])
    monkeypatch.setattr("builtins.input", lambda question: next(answers))
    code = main(["--mode", "inpaint", "--device", "cpu", "--save", "--local", "--model", str(tiny_model)])
    assert code == 0
    captured = capsys.readouterr()
    assert "init image not found: nowhere.png" in captured.err and "strength must be between 0 and 1" in captured.err
    assert read_parameters(tmp_path / "images" / "image_0.png")["Denoising strength"] == "0.6"


def test_without_save_and_without_a_display_it_says_so(tiny_model, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    answers = iter(["a cat", "64 64"])
    monkeypatch.setattr("builtins.input", lambda question: next(answers))
    assert main(["--mode", "txt2img", "--device", "cpu", "--local", "--model", str(tiny_model)]) == 0
    assert "run with --save" in capsys.readouterr().out
    assert not (tmp_path / "images").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--mode", "txt2img", "--device", "gpu"], "no CUDA GPU"),
        (["--mode", "txt2img", "--device", "cpu", "--num", "0"], "--num"),
    ],
)
def test_errors_are_one_line_exit_2(tiny_model, tmp_path, monkeypatch, capsys, args, message) -> None:
    monkeypatch.chdir(tmp_path)
    answers = iter(["a cat", "64 64"])
    monkeypatch.setattr("builtins.input", lambda question: next(answers))
    assert main([*args, "--local", "--model", str(tiny_model)]) == 2
    assert message in capsys.readouterr().err.strip().splitlines()[-1]


def test_input_ending_is_an_error_not_a_hang() -> None:
    def closed(question: str) -> str:
        raise EOFError

    with pytest.raises(Exception, match="input ended"):
        Asker(closed).ask("Prompt: ", str)


def test_answer_parsers() -> None:
    assert parse_size("512 768") == (512, 768) and parse_size("") == (None, None)
    assert parse_strength("") == 0.75
    for bad in ("12 12", "a b", "512"):
        with pytest.raises(ValueError):
            parse_size(bad)
