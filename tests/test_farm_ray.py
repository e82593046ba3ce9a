"""The same batch on a local Ray instance (2 CPUs, loopback): outputs identical to the local run, frame
ranges joined into one folder and video, and a worker killed mid-range whose range completes elsewhere."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest
import ray
import yaml

from sdplay.farm import open_batch, run_batch
from sdplay.farm.cluster import run_on_ray
from sdplay.video import write_video


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    yield
    ray.shutdown()


def write_batch(folder: Path, jobs: list[dict]) -> Path:
    path = folder / "batch.yaml"
    path.write_text(yaml.safe_dump({"jobs": jobs}, sort_keys=False))
    return path


def base(model: Path) -> dict:
    return {"model": str(model), "device": "cpu", "steps": 2}


def same_files(a: list[str], b: list[str]) -> bool:
    return len(a) == len(b) and all(Path(x).read_bytes() == Path(y).read_bytes() for x, y in zip(a, b, strict=True))


def test_a_batch_on_ray_makes_the_same_files_as_here(local_ray, tiny_model, tmp_path) -> None:
    colours = [(40 * i, 250 - 40 * i, 120) for i in range(6)]
    video = write_video([np.full((64, 64, 3), c, np.uint8) for c in colours], tmp_path / "in.mp4", fps=6)
    video_input = {
        **base(tiny_model),
        "animation_mode": "Video Input",
        "video_init_path": str(video),
        "color_coherence": "LAB",  # later ranges read frame 0, made first
        "batch_size": 2,
        "W": 64,
        "H": 64,
        "seed": 5,
        "prompts": {"0": "a"},
        "strength_schedule": "0: (0.5)",
    }
    dream = {**base(tiny_model), "prompts": ["a cat", "a dog"], "seeds": [1, 2], "total_frames": 8, "batch_size": 2}
    sweep = {**base(tiny_model), "prompt": "a red circle", "width": 64, "height": 64}
    jobs = [
        {"mode": "txt2img", "settings": sweep, "product": {"seed": [1, 2], "guidance": [2, 7]}, "grid": True},
        {"mode": "dream", "settings": {**dream, "width": 64, "height": 64}},
        {"mode": "animate", "settings": video_input},
    ]
    path = write_batch(tmp_path, jobs)
    here = open_batch(path, outdir=tmp_path / "here")
    assert run_batch(here)
    shares = []
    there = open_batch(path, outdir=tmp_path / "there")
    assert run_on_ray(there, "auto", workers=2, on_dispatch=lambda task, worker: shares.append(task.frames))
    for mine, theirs in zip(here.jobs, there.jobs, strict=True):
        assert theirs.state == "done" and theirs.run_dir != mine.run_dir
        assert same_files(mine.paths, theirs.paths), mine.name
        assert Path(mine.run_dir, "settings.json").read_text() == Path(theirs.run_dir, "settings.json").read_text()
        assert same_files(mine.videos, theirs.videos), mine.name  # encoded once, from the same frames
    assert (0, 4) in shares and (4, 8) in shares  # the walk went out in two ranges
    assert shares.index((0, 3)) < shares.index((3, 6))  # frame 0 (colour reference) first
    assert [video.endswith("animation.mp4") for video in there.jobs[5].videos] == [True]


def test_a_worker_killed_mid_range_has_its_range_made_by_another(local_ray, tiny_model, tmp_path) -> None:
    dream = {**base(tiny_model), "prompts": ["a cat", "a dog"], "seeds": [1, 2], "total_frames": 8, "batch_size": 2}
    path = write_batch(tmp_path, [{"mode": "dream", "settings": {**dream, "width": 64, "height": 64}}])
    here = open_batch(path, outdir=tmp_path / "here")
    assert run_batch(here)
    killed = []

    def kill_the_second_range(task, worker) -> None:
        if task.frames == (4, 8) and not killed:
            killed.append(ray.get(worker.pid))
            os.kill(killed[0], signal.SIGKILL)

    there = open_batch(path, outdir=tmp_path / "there")
    assert run_on_ray(there, "auto", workers=2, on_dispatch=kill_the_second_range)
    assert killed and there.jobs[0].state == "done"
    assert sorted(p.name for p in Path(there.jobs[0].run_dir).iterdir()) == sorted(
        p.name for p in Path(here.jobs[0].run_dir).iterdir()
    )  # every frame once, one video, no second copies
    assert same_files(here.jobs[0].paths, there.jobs[0].paths)
