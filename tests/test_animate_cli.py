"""`sdplay animate` and `python run.py --mode animate` with real files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml
from PIL import Image
from typer.testing import CliRunner

from sdplay.cli import app
from sdplay.legacy import main

DEFORUM_FILE = Path(__file__).parent / "data" / "deforum_webui_settings.txt"
runner = CliRunner()


def sdplay(*args: object):
    return runner.invoke(app, ["animate", *[str(a) for a in args]])


def small_yaml(path: Path, **extra: object) -> Path:
    data = {"W": 64, "H": 64, "steps": 2, "max_frames": 3, "seed": 1, "prompts": {0: "a cat"}, **extra}
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_several_files_run_one_after_another(tiny_model, tmp_path) -> None:
    ours = small_yaml(tmp_path / "ours.yaml", zoom=1.1)
    result = sdplay(
        "--config", DEFORUM_FILE, ours, "--set", "max_frames=2", "--model", tiny_model, "--outdir", tmp_path, "-q"
    )
    assert result.exit_code == 0, result.output
    videos = [Path(line) for line in result.stdout.splitlines() if line.endswith(".mp4")]
    assert len(videos) == 2 and all(v.exists() for v in videos)
    settings = [json.loads((v.parent / "settings.json").read_text()) for v in videos]
    assert [s["max_frames"] for s in settings] == [2, 2] and settings[1]["zoom"] == "0: (1.1)"
    assert "turns on" not in result.stderr  # Deforum's default file turns on nothing sdplay lacks


def test_a_failing_file_is_reported_and_the_rest_still_run(tiny_model, tmp_path) -> None:
    bad = small_yaml(tmp_path / "bad.yaml", diffusion_cadence=60)
    good = small_yaml(tmp_path / "good.yaml")
    result = sdplay("-c", bad, good, "--model", tiny_model, "--outdir", tmp_path, "--format", "gif", "-q")
    assert result.exit_code == 2
    assert f"error: {bad}: diffusion_cadence: must be a whole number from 1 to 50, got 60" in result.stderr
    assert "error: 1 of 2 settings files failed" in result.stderr
    assert [Path(line).name for line in result.stdout.splitlines()] == ["animation.gif"]


def test_bad_values_are_one_error_line(tiny_model, tmp_path) -> None:
    for args, message in [
        (["--set", "max_frames=lots"], "error: max_frames: must be a whole number from 1 to 100000, got 'lots'"),
        (["--set", "zoom=0: (1.0"], "error: zoom: unclosed parenthesis in '(1.0'"),
        (["--set", "max_frames"], "error: --set needs key=value, got 'max_frames'"),
        (["--config", tmp_path / "missing.yaml"], "error: cannot read config file"),
        (["--resume", tmp_path, "--set", "fps=3"], "error: --resume takes everything from the run's settings.json"),
        (["--resume", tmp_path], f"error: --resume {tmp_path}: no settings.json there"),
        ([], "error: nothing to animate: give a settings file"),
    ]:
        model = [] if "--resume" in args else ["--model", tiny_model]
        result = sdplay(*args, *model, "--outdir", tmp_path)
        assert result.exit_code == 2, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(message), lines
        assert not (tmp_path / "animate").exists()  # no run folder is left behind


def test_a_missing_depth_model_is_one_error_line_and_leaves_no_run_folder(tiny_model, tmp_path) -> None:
    config = small_yaml(tmp_path / "a.yaml", animation_mode="3D")
    result = sdplay("-c", config, "--model", tiny_model, "--depth-model", tmp_path / "no-depth", "--outdir", tmp_path)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "could not load depth model" in errors[0] and "folder not found" in errors[0]
    assert not (tmp_path / "animate").exists()


def test_resume_from_the_command_line(tiny_model, tmp_path) -> None:
    config = small_yaml(tmp_path / "a.yaml", max_frames=4, diffusion_cadence=2)
    first = sdplay("-c", config, "--model", tiny_model, "--outdir", tmp_path, "-q")
    run_dir = Path(first.stdout.strip()).parent
    before = np.asarray(Image.open(run_dir / "0003.png"))
    for name in ("0003.png", "animation.mp4"):
        (run_dir / name).unlink()
    again = sdplay("--resume", run_dir, "-q")
    assert again.exit_code == 0, again.output
    assert np.array_equal(np.asarray(Image.open(run_dir / "0003.png")), before)
    assert (run_dir / "animation.mp4").exists()


def test_classic_entry_writes_a_template_then_runs_a_settings_file(tiny_model, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("builtins.input", lambda question: "")
    assert main(["--mode", "animate", "--device", "cpu", "--save", "--local", "--model", str(tiny_model)]) == 0
    assert "wrote a commented template to animation.yaml: edit it" in capsys.readouterr().out
    template = yaml.safe_load((tmp_path / "animation.yaml").read_text())
    assert template["animation_mode"] == "2D" and "max_f/2" in template["prompts"]
    config = small_yaml(tmp_path / "mine.yaml", max_frames=2)
    answers = iter(["nowhere.yaml", str(config)])
    monkeypatch.setattr("builtins.input", lambda question: next(answers))
    assert main(["--mode", "animate", "--device", "cpu", "--save", "--local", "--model", str(tiny_model)]) == 0
    captured = capsys.readouterr()
    assert "invalid: no settings file at nowhere.yaml" in captured.err
    assert sorted(p.name for p in next((tmp_path / "images" / "animate").iterdir()).glob("*.png")) == [
        "0000.png",
        "0001.png",
    ]
