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


def test_bench_backends_puts_each_backend_beside_pytorch_fp32(tiny_model, tmp_path) -> None:
    out = tmp_path / "bench.json"
    args = ["bench", "--model", str(tiny_model), "--device", "cpu", "--repeats", "1", "--steps", "2"]
    result = CliRunner().invoke(app, [*args, "--backend", "openvino,pytorch:bf16", "--json", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["backends"] == ["openvino auto", "pytorch bf16"]
    rows = {row["figure"]: row for row in report["figures"]}
    assert rows["openvino: conversion and first load (once per model)"]["ours"] > 0
    for variant in report["backends"]:
        beside = [f"UNet step at {size} px" for size in (256, 512)]
        beside += [f"{mode} s/image" for mode in ("txt2img", "img2img", "inpaint")]
        beside += ["dream frames/s (batch 8)", "animate 2D frames/s", "memory of the loaded model"]
        for figure in beside:
            row = rows[f"{variant}: {figure}"]
            assert row["baseline_is"] == "PyTorch fp32" and row["ours"] > 0 and row["ratio"] > 0
    assert rows["openvino auto: first UNet call at 512 px (compiles)"]["ours"] > 0
    assert 0 <= rows["pytorch bf16: txt2img mean pixel difference from PyTorch fp32"]["ours"] < 255
    assert 0 < rows["pytorch bf16: UNet output at 256 px, largest difference from PyTorch fp32"]["ours"] < 0.5
    assert rows["openvino auto: UNet step at 512 px through sdplay"]["baseline_is"] == "OpenVINO called directly"
    assert not any(name.startswith("pytorch fp32") for name in rows)  # the baseline is in every row, not a row


def test_bench_backends_can_measure_only_some_figures(tiny_model, tmp_path) -> None:
    out = tmp_path / "bench.json"
    args = ["bench", "--model", str(tiny_model), "--device", "cpu", "--repeats", "1", "--steps", "2"]
    result = CliRunner().invoke(app, [*args, "--backend", "auto", "--figures", "unet,txt2img", "--json", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["figure_groups"] == ["unet", "txt2img"]
    names = {row["figure"] for row in report["figures"]}
    assert "openvino auto: txt2img s/image" in names and "openvino auto: UNet step at 512 px" in names
    assert not any("img2img" in n or "dream" in n or "memory" in n or "conversion" in n for n in names)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--backend", "openvino", "--figures", "speed"], "unknown figure 'speed'"),
        (["--figures", "unet"], "add --backend"),
    ],
)
def test_bench_figures_are_checked_before_anything_is_built(extra, message, monkeypatch) -> None:
    monkeypatch.setattr("sdplay.bench.run.save_random_pipeline", lambda *args: pytest.fail("a model was built"))
    result = CliRunner().invoke(app, ["bench", "--model", "random:sd15", "--device", "cpu", *extra])
    assert result.exit_code == 2 and message in result.output


@pytest.mark.parametrize(
    "backends, message",
    [(["tpu"], "unknown backend 'tpu'"), (["openvino:fp16"], "computes in auto, fp32, bf16, not fp16")],
)
def test_bench_backends_rejects_what_cannot_run_before_building_anything(backends, message, monkeypatch) -> None:
    monkeypatch.setattr("sdplay.bench.run.save_random_pipeline", lambda *args: pytest.fail("a model was built"))
    args = ["bench", "--model", "random:sd15", "--device", "cpu"]
    result = CliRunner().invoke(app, [*args, *(f"--backend={b}" for b in backends)])
    assert result.exit_code == 2 and message in result.output


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
