"""`sdplay bench` on the tiny pipeline: the report's shape, not its speed."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

import sdplay
from sdplay.bench.markdown import table
from sdplay.bench.random_models import save_random_depth_model, save_random_tiny_vae
from sdplay.cli import app
from sdplay.depth import DepthEstimator


def test_bench_reports_every_figure_beside_its_baseline(tiny_model, tmp_path) -> None:
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(
        app,
        ["bench", "--model", str(tiny_model), "--device", "cpu", "--repeats", "1", "--steps", "2", "--json", str(out)],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert {"machine", "model", "figures", "seconds"} <= set(report)
    names = {row["figure"] for row in report["figures"]}
    for mode in ("txt2img", "img2img", "inpaint"):
        assert {f"{mode} s/image", f"{mode} s/image (fresh pipeline)", f"{mode} peak memory"} <= names
    assert {"model load", "switch txt2img -> img2img -> inpaint", "UNet steps/s (batch 2, CFG)"} <= names
    assert any(name.startswith("dream frames/s (batch ") for name in names)
    for mode in ("2D", "3D"):
        assert any(name.startswith(f"animate {mode} cadence 4 frames/s") for name in names)
    assert any(name.startswith("animate Video Input frames/s (batch ") for name in names)
    for row in report["figures"]:
        assert row["ours"] > 0
        if "baseline" in row:
            assert row["ratio"] > 0 and row["baseline_is"]
    assert "txt2img s/image" in result.stdout
    assert report["settings"] == {"steps": 2, "size": None, "compile": False, "tiny_vae": None, "naive": True}
    readme_rows = table([report]).splitlines()[2:]  # the README table, model column with the settings
    assert len(readme_rows) == len(report["figures"]) and "tiny-sd (auto, 2 steps) | model load |" in readme_rows[0]


def test_bench_rejects_an_unknown_architecture() -> None:
    result = CliRunner().invoke(app, ["bench", "--model", "random:sd99", "--device", "cpu"])
    assert result.exit_code == 2 and "unknown architecture" in result.stderr


def test_a_random_taesd_stands_in_for_the_tiny_vae_offline(tiny_model, tmp_path) -> None:
    taesd = save_random_tiny_vae(tmp_path)
    run = sdplay.generate("a", model=str(tiny_model), tiny_vae=str(taesd), device="cpu", steps=1, seed=1)
    assert run.images[0].size == (64, 64)


def test_a_random_depth_anything_v2_small_stands_in_for_the_default_depth_model(tmp_path) -> None:
    depth = DepthEstimator(str(save_random_depth_model(tmp_path)), torch.device("cpu"))
    picture = torch.rand(1, 3, 48, 64)
    normalised = depth.normalised(picture)
    assert normalised.shape == (1, 1, 48, 64) and float(normalised.min()) == 0 and float(normalised.max()) == 1
    model, _ = depth._load()
    weights = sum(p.numel() for p in model.parameters())
    assert 24e6 < weights < 26e6  # the published Small model has 24.8 M parameters


def test_a_bench_cut_short_keeps_the_sections_it_finished(tiny_model, tmp_path, monkeypatch) -> None:
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("sdplay.bench.run.bench_dream", interrupted)
    out = tmp_path / "bench.json"
    args = ["bench", "--model", str(tiny_model), "--device", "cpu", "--repeats", "1", "--steps", "2", "--no-naive"]
    CliRunner().invoke(app, [*args, "--json", str(out)])
    names = {row["figure"] for row in json.loads(out.read_text())["figures"]}
    assert "txt2img s/image" in names and not any(name.startswith("dream") for name in names)


def test_a_missing_gpu_is_reported_before_any_model_is_built(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = CliRunner().invoke(app, ["bench", "--model", "random:sd15", "--device", "cuda"])
    assert result.exit_code == 2 and "no CUDA GPU" in result.stderr


def test_a_json_path_in_a_missing_folder_is_refused_before_measuring(tmp_path) -> None:
    out = tmp_path / "missing" / "bench.json"
    result = CliRunner().invoke(app, ["bench", "--model", "mini", "--device", "cpu", "--json", str(out)])
    assert result.exit_code == 2 and "does not exist" in result.stderr and not out.parent.exists()


def test_a_missing_depth_folder_is_refused_before_measuring(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("sdplay.bench.run.save_random_pipeline", lambda *args: pytest.fail("a model was built"))
    missing = tmp_path / "no-depth-model"
    result = CliRunner().invoke(app, ["bench", "--model", "random:sd15", "--depth-model", str(missing)])
    assert result.exit_code == 2 and "could not load depth model" in result.stderr
