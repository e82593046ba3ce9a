"""Batch files run in one process: sweeps, grids, a failing job, resume; bad batch files are one line each."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from sdplay.cli import app, ray_without_address
from sdplay.dream import DreamSettings
from sdplay.engine import CancelToken, Job, run
from sdplay.engine.events import FileWritten
from sdplay.engine.modes import Split
from sdplay.errors import SdplayError
from sdplay.farm import Manifest, open_batch, run_batch
from sdplay.farm.batchfile import read_batch
from sdplay.farm.local import BatchListener
from sdplay.farm.shares import frame_ranges


def write_batch(folder: Path, jobs: list[dict], name: str = "batch.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump({"jobs": jobs}, sort_keys=False))
    return path


def image_job(model: Path, **extra) -> dict:
    settings = {"prompt": "a red circle", "model": str(model), "width": 64, "height": 64, "steps": 2, "device": "cpu"}
    return {"mode": "txt2img", "settings": settings, **extra}


def dream_job(model: Path, frames: int = 4) -> dict:
    settings = {"prompts": ["a cat", "a dog"], "seeds": [1, 2], "model": str(model), "width": 64, "height": 64}
    settings.update(steps=2, device="cpu", total_frames=frames, batch_size=2)
    return {"mode": "dream", "settings": settings}


def pixels(path: str | Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_a_sweep_expands_to_every_combination_with_its_axes(tiny_model, tmp_path) -> None:
    path = write_batch(
        tmp_path,
        [image_job(tiny_model, product={"seed": [1, 2, 3], "guidance": [4, 7.5]}, zip={"prompt": ["a", "b"]})],
    )
    jobs = read_batch(path).jobs
    assert len(jobs) == 12
    assert jobs[0].axes == {"prompt": "a", "seed": 1, "guidance": 4}
    assert jobs[1].axes == {"prompt": "b", "seed": 1, "guidance": 4}  # zip varies fastest, then the product
    assert {(job.settings["seed"], job.settings["guidance"], job.settings["prompt"]) for job in jobs} == {
        (s, g, p) for s in (1, 2, 3) for g in (4, 7.5) for p in "ab"
    }


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"mode": "paint", "settings": {}}, "unknown mode 'paint'"),
        ({"mode": "txt2img", "product": {"colour": [1, 2]}}, "product over unknown setting 'colour'"),
        ({"mode": "txt2img", "zip": {"seed": [1, 2], "prompt": ["a"]}}, "zip lists must be equally long: seed has 2"),
        ({"mode": "txt2img", "product": {"seed": []}}, "product.seed must be a non-empty list"),
        ({"mode": "txt2img", "settings": {"steps": -1}}, "steps: must be"),
        ({"mode": "txt2img", "grid": True, "zip": {"seed": [1]}}, "grid must be true or a list of 1 to 3"),
        ({"mode": "dream", "grid": ["seeds"], "product": {"seeds": [[1, 2]]}}, "a grid is made of pictures"),
        ({"files": "missing/*.txt"}, "no file matches missing/*.txt"),
        ({"file": "missing.json"}, "cannot read config file"),
        ({"settings": {"prompt": "x"}}, "give a mode"),
        ("txt2img", "must be a mapping"),
    ],
)
def test_a_bad_batch_file_is_one_line_naming_the_job(tmp_path, entry, message) -> None:
    path = write_batch(tmp_path, [{"mode": "txt2img", "settings": {"prompt": "fine"}}, entry])
    with pytest.raises(SdplayError, match="job 2") as caught:
        read_batch(path)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_the_cli_refuses_a_bad_batch_before_anything_runs(tmp_path) -> None:
    path = write_batch(tmp_path, [{"mode": "txt2img", "settings": {"prompt": "x"}, "zip": {"seed": [1], "steps": []}}])
    result = CliRunner().invoke(app, ["batch", str(path), "--outdir", str(tmp_path / "out")])
    assert result.exit_code == 2
    expected = f"error: {path}: job 1: zip.steps must be a non-empty list of values, got []"
    assert result.output.strip().splitlines() == [expected]
    assert not (tmp_path / "out").exists()


def test_a_batch_runs_its_jobs_records_a_failure_and_draws_the_grid(tiny_model, tmp_path) -> None:
    grid = image_job(tiny_model, product={"seed": [1, 2], "guidance": [2, 7]}, grid=["seed", "guidance"])
    broken = {**image_job(tiny_model), "mode": "img2img"}
    broken["settings"] = {**broken["settings"], "init": str(tmp_path / "missing.png")}
    path = write_batch(tmp_path, [grid, broken, dream_job(tiny_model)])
    result = CliRunner().invoke(app, ["batch", str(path), "--outdir", str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 2
    assert "error: 1 of 6 jobs failed" in result.output
    manifest = Manifest.load(next(Path(line).parent for line in result.stdout.splitlines() if "manifest" in line))
    states = [job.state for job in manifest.jobs]
    assert states == ["done"] * 4 + ["failed", "done"]  # the others still ran
    assert "missing.png" in manifest.jobs[4].error
    assert len(manifest.jobs[5].paths) == 4 and manifest.jobs[5].videos[0].endswith("dream.mp4")
    assert json.loads(Path(manifest.jobs[1].run_dir, "settings.json").read_text())["guidance"] == 7
    sheet = Image.open(manifest.grids[0].path)
    assert sheet.width > 2 * 64 and sheet.height > 2 * 64  # two columns, two rows and their labels
    cell = pixels(manifest.jobs[3].paths[0])  # seed 2, guidance 7: bottom right
    assert np.array_equal(np.asarray(sheet.convert("RGB"))[-64:, -64:], cell)
    labels = np.asarray(sheet.convert("L"))[: sheet.height - 128, :]
    assert labels.min() < 100  # the axis values are written above the columns


def test_resume_runs_only_the_unfinished_jobs_and_continues_a_video_in_its_folder(tiny_model, tmp_path) -> None:
    path = write_batch(tmp_path, [image_job(tiny_model, product={"seed": [1, 2]}), dream_job(tiny_model, frames=6)])
    whole = open_batch(path, outdir=tmp_path / "whole")
    assert run_batch(whole)
    cancel = CancelToken()

    class StopInTheDream(BatchListener):
        def __call__(self, event) -> None:
            if (
                isinstance(event, FileWritten)
                and event.kind == "frame"
                and event.frame == 1
                and "dream" in str(event.path)
            ):
                cancel.cancel()

    manifest = open_batch(path, outdir=tmp_path / "cut")
    assert not run_batch(manifest, StopInTheDream(), cancel)
    dream = manifest.jobs[2]
    assert [job.state for job in manifest.jobs] == ["done", "done", "running"] and dream.run_dir
    first_two = [job.run_dir for job in manifest.jobs[:2]]
    resumed = Manifest.load(manifest.folder)
    ran = []

    class Count(BatchListener):
        def job_started(self, record, done, total) -> None:
            ran.append(record.id)

    assert run_batch(resumed, Count())
    assert ran == [2] and [job.run_dir for job in resumed.jobs] == [*first_two, dream.run_dir]
    assert sorted(p.name for p in (tmp_path / "cut" / "txt2img").iterdir()) == sorted(Path(d).name for d in first_two)
    for a, b in zip(whole.jobs[2].paths, resumed.jobs[2].paths, strict=True):
        assert np.array_equal(pixels(a), pixels(b))


def test_frame_ranges_start_at_the_cuts_and_cover_the_run() -> None:
    split = Split(tuple(range(0, 48, 4)))
    assert frame_ranges(split, 48, 0, 2) == [(0, 24), (24, 48)]
    assert frame_ranges(split, 48, 30, 2) == [(28, 40), (40, 48)]  # from the cut before the resume point
    assert frame_ranges(Split((0, 1, 4, 7)), 9, 0, 3) == [(0, 4), (4, 7), (7, 9)]
    assert frame_ranges(Split((0,)), 5, 0, 4) == [(0, 5)]


def test_ray_alone_means_a_local_instance_and_an_address_is_kept() -> None:
    assert ray_without_address(["batch", "f.yaml", "--ray"]) == ["batch", "f.yaml", "--ray", "local"]
    assert ray_without_address(["batch", "--ray", "f.yaml"]) == ["batch", "--ray", "local", "f.yaml"]
    assert ray_without_address(["batch", "--ray", "10.0.0.2:6379", "f"]) == ["batch", "--ray", "10.0.0.2:6379", "f"]
    assert ray_without_address(["batch", "--ray", "auto", "f"]) == ["batch", "--ray", "auto", "f"]


def test_ray_without_the_extra_is_one_line_saying_how_to_install_it(tmp_path) -> None:
    fake = tmp_path / "no-ray" / "ray"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('not installed')\n")
    path = write_batch(tmp_path, [{"mode": "txt2img", "settings": {"prompt": "x"}}])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake.parent), *sys.path])}
    command = [sys.executable, "-m", "sdplay", "batch", str(path), "--ray", "--outdir", str(tmp_path / "out")]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2
    assert result.stderr == 'error: --ray needs Ray, an optional extra: pip install "sdplay[farm]"\n'
    assert not (tmp_path / "out").exists()


def test_a_share_of_a_walk_is_those_frames_of_the_whole_walk(tiny_model) -> None:
    settings = DreamSettings.from_dict(dream_job(tiny_model, frames=6)["settings"])
    whole = run(Job("dream", settings, write=False))
    outline = run(Job("dream", settings, write=False, frames=(0, 0)))
    assert outline.images == [] and outline.outline.total == 6 and outline.outline.split.cuts == (0, 2, 4)
    assert outline.settings == whole.settings and outline.outline.video.kinds == ("mp4",)
    share = run(Job("dream", whole.settings, write=False, frames=(2, 5)))
    assert len(share.images) == 3
    for mine, theirs in zip(share.images, whole.images[2:5], strict=True):
        assert np.array_equal(np.asarray(mine), np.asarray(theirs))
        assert mine.info["parameters"] == theirs.info["parameters"]
    with pytest.raises(SdplayError, match="frame range"):
        Job("dream", settings, frames=(0, 2))  # a share is made in memory, never into a folder


def test_relative_file_names_are_relative_to_the_batch_file_not_the_cwd(tiny_model, tmp_path, monkeypatch) -> None:
    folder = tmp_path / "project"
    (folder / "pics").mkdir(parents=True)
    Image.new("RGB", (64, 64), (200, 30, 30)).save(folder / "pics" / "red.png")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    img2img = {**image_job(tiny_model), "mode": "img2img"}
    img2img["settings"] = {**img2img["settings"], "init": "pics/red.png", "mask": str(folder / "pics" / "red.png")}
    sweep = {**img2img, "product": {"init": ["pics/red.png", "pics/blue.png"]}}
    control = image_job(tiny_model)
    control["settings"].update(control=["none:pics/red.png:0.5"], control_model="org/controlnet")
    url = {"mode": "animate", "settings": {"animation_mode": "Video Input", "video_init_path": "https://a.b/v.mp4"}}
    path = write_batch(folder, [img2img, sweep, control, url])
    monkeypatch.chdir(elsewhere)  # the batch is started from another folder
    jobs = read_batch(Path("..") / "project" / "batch.yaml").jobs
    red, blue = str(folder / "pics" / "red.png"), str(folder / "pics" / "blue.png")
    assert Path(jobs[0].settings["init"]).resolve() == Path(red)
    assert jobs[0].settings["mask"] == red  # an absolute name stays as it is
    assert [Path(job.settings["init"]).resolve() for job in jobs[1:3]] == [Path(red), Path(blue)]
    assert jobs[1].axes == {"init": "pics/red.png"}  # the grid labels keep the names as written
    kind, image, weight = jobs[3].settings["control"][0].split(":")
    assert (kind, Path(image).resolve(), weight) == ("none", Path(red), "0.5")
    assert jobs[4].settings["video_init_path"] == "https://a.b/v.mp4"  # a URL is no file name
    manifest = open_batch(Path("..") / "project" / path.name, outdir=tmp_path / "out")
    manifest.jobs = manifest.jobs[:1]
    assert run_batch(manifest) and manifest.jobs[0].state == "done"  # found from elsewhere


def test_the_batch_display_shows_each_workers_running_job_and_step(tiny_model, tmp_path) -> None:
    from rich.console import Console

    from sdplay.engine.events import Progress
    from sdplay.farm.progress import BatchBar

    path = write_batch(tmp_path, [image_job(tiny_model), dream_job(tiny_model)])
    first, second = open_batch(path, outdir=tmp_path / "out").jobs
    bar = BatchBar(Console(file=open(os.devnull, "w")), enabled=False)  # noqa: SIM115 - the console's stream
    bar.job_started(first, 0, 2)
    bar(Progress("id", 1, 2, 0, 1, None))  # here: the running job's own events
    assert [(t.description, t.completed, t.total) for t in bar.progress.tasks[1:]] == [("txt2img: denoising", 1, 2)]
    bar.step(second, 1, Progress("id", 3, 8, 5, 8, None))  # on Ray: a second worker's job
    lanes = [(t.description, t.completed, t.total) for t in bar.progress.tasks[1:]]
    assert lanes == [("txt2img: denoising", 1, 2), ("worker 2 dream: frame 6/8", 3, 8)]


def test_a_shared_outdir_without_ray_is_one_line(tmp_path) -> None:
    path = write_batch(tmp_path, [{"mode": "txt2img", "settings": {"prompt": "x"}}])
    result = CliRunner().invoke(app, ["batch", str(path), "--shared-outdir", "--outdir", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert result.output.strip() == "error: --shared-outdir tells Ray workers they can write the outputs; add --ray"
    assert not (tmp_path / "out").exists()
