"""The same batch on a local Ray instance (2 CPUs, loopback): outputs identical to the local run, frame
ranges joined into one folder and video, each worker's step progress, a worker killed mid-range whose
range completes elsewhere, a 3D job whose worker is killed continuing from its last frame, and a shared
output root the workers write into themselves."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import ray
import yaml
from animate_helpers import save_tiny_depth_model

from sdplay.errors import SdplayError
from sdplay.farm import open_batch, run_batch
from sdplay.farm.cluster import WorkerPool, run_on_pool, run_on_ray
from sdplay.farm.local import BatchListener
from sdplay.farm.shares import Joiner
from sdplay.video import write_video


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def depth_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_depth_model(tmp_path_factory.mktemp("depth"))


class Steps(BatchListener):
    """Every step a worker reports, as (job id, lane, frame, step)."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, int, int, int]] = []

    def step(self, record, lane, event) -> None:
        self.seen.append((record.id, lane, event.frame, event.step))


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
    shares, steps = [], Steps()
    there = open_batch(path, outdir=tmp_path / "there")
    assert run_on_ray(there, "auto", workers=2, listener=steps, on_dispatch=lambda t, w: shares.append(t.frames))
    for mine, theirs in zip(here.jobs, there.jobs, strict=True):
        assert theirs.state == "done" and theirs.run_dir != mine.run_dir
        assert same_files(mine.paths, theirs.paths), mine.name
        assert Path(mine.run_dir, "settings.json").read_text() == Path(theirs.run_dir, "settings.json").read_text()
        assert same_files(mine.videos, theirs.videos), mine.name  # encoded once, from the same frames
    assert (0, 4) in shares and (4, 8) in shares  # the walk went out in two ranges
    assert shares.index((0, 3)) < shares.index((3, 6))  # frame 0 (colour reference) first
    assert [video.endswith("animation.mp4") for video in there.jobs[5].videos] == [True]
    assert {lane for _, lane, _, _ in steps.seen} == {0, 1}  # both workers' progress came in while they ran
    assert {job for job, *_ in steps.seen} == set(range(6))  # every job's progress came in
    dream_frames = {frame for job, _, frame, _ in steps.seen if job == 4}
    assert dream_frames & {0, 1, 2, 3} and dream_frames & {4, 5, 6, 7}  # from both ranges


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


def run_files(folder: str | Path) -> dict[str, bytes]:
    """Every file of a run folder (frames, depth maps, key pictures, video, settings) by its path inside."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def frames_in(run_dir: str) -> int:
    return len(list(Path(run_dir).glob("[0-9]*.png")))


def three_d(model: Path, depth_model: Path, frames: int = 10) -> dict:
    settings = {**base(model), "steps": 4, "W": 64, "H": 64, "seed": 5, "sampler": "euler", "prompts": {"0": "a"}}
    settings.update(animation_mode="3D", max_frames=frames, diffusion_cadence=2, translation_z=5, rotation_3d_y=2)
    return {"mode": "animate", "settings": {**settings, "save_depth_maps": True, "depth_model": str(depth_model)}}


class KillOnce(Steps):
    """Kills the worker of the job's whole run once `after` of its frames are on disk here; then notes
    how many were there when its successor took the job, and the frames that successor made.

    A thread watches the folder rather than waiting for step events: under load the events reach the
    driver late, and by then the worker may have finished the job it was meant to lose."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.after, self.killed, self.handed_over = after, False, None
        self.watch: threading.Thread | None = None

    def dispatched(self, task, worker) -> None:
        if task.kind != "whole" or task.record.mode != "animate":
            return
        if self.killed:
            self.handed_over = frames_in(task.record.run_dir)
            self.seen.append((task.record.id, -1, -1, -1))  # the handover, in the order of the steps
        elif self.watch is None:
            pid = ray.get(worker.pid)
            self.watch = threading.Thread(target=self._kill_when_due, args=(task.record.run_dir, pid), daemon=True)
            self.watch.start()

    def _kill_when_due(self, run_dir: str, pid: int) -> None:
        while frames_in(run_dir) < self.after:
            time.sleep(0.005)
        self.killed = True
        os.kill(pid, signal.SIGKILL)

    def made_after_the_handover(self) -> list[int]:
        """The frames the successor made (their steps, after the handover mark, of that job only)."""
        marks = [i for i, seen in enumerate(self.seen) if seen[1:] == (-1, -1, -1)]
        if not marks:
            return []
        job = self.seen[marks[0]][0]
        return [frame for number, _, frame, _ in self.seen[marks[0] + 1 :] if number == job]


def test_a_3d_job_carries_its_depth_maps_back_and_continues_where_its_killed_worker_stopped(
    local_ray, tiny_model, depth_model, tmp_path
) -> None:
    path = write_batch(tmp_path, [three_d(tiny_model, depth_model)])
    here = open_batch(path, outdir=tmp_path / "here")
    assert run_batch(here)
    killer = KillOnce(after=4)
    there = open_batch(path, outdir=tmp_path / "there")
    assert run_on_ray(there, "auto", workers=1, listener=killer, on_dispatch=killer.dispatched)
    assert killer.killed and there.jobs[0].state == "done"
    assert killer.handed_over >= 4 and min(killer.made_after_the_handover()) >= killer.handed_over - 3  # not 0
    mine, theirs = run_files(here.jobs[0].run_dir), run_files(there.jobs[0].run_dir)
    assert sorted(mine) == sorted(theirs)  # every frame, depth map and key picture once, one video
    assert {name.split("/")[0] for name in theirs if "/" in name} == {"depth", "keys"}
    assert all(mine[name] == theirs[name] for name in mine)


def test_with_a_shared_outdir_the_workers_write_the_outputs_themselves(
    local_ray, tiny_model, depth_model, tmp_path, monkeypatch
) -> None:
    sweep = {**base(tiny_model), "prompt": "a red circle", "width": 64, "height": 64}
    dream = {**base(tiny_model), "prompts": ["a cat", "a dog"], "seeds": [1, 2], "total_frames": 8, "batch_size": 2}
    jobs = [
        {"mode": "txt2img", "settings": sweep, "product": {"seed": [1, 2]}},
        {"mode": "dream", "settings": {**dream, "width": 64, "height": 64}},
        three_d(tiny_model, depth_model),
    ]
    path = write_batch(tmp_path, jobs)
    here = open_batch(path, outdir=tmp_path / "here")
    assert run_batch(here)

    def nothing_is_sent_back(self, pictures) -> list:
        assert not list(pictures), "a picture came back to be written here"
        return []

    monkeypatch.setattr(Joiner, "add", nothing_is_sent_back)
    killer = KillOnce(after=4)
    there = open_batch(path, outdir=tmp_path / "shared")
    assert run_on_ray(there, "auto", workers=2, listener=killer, on_dispatch=killer.dispatched, shared=True)
    assert killer.killed and killer.handed_over >= 4
    assert min(killer.made_after_the_handover()) >= killer.handed_over - 3  # continued in the shared folder
    for mine, theirs in zip(here.jobs, there.jobs, strict=True):
        assert theirs.state == "done" and Path(theirs.run_dir).is_relative_to(tmp_path / "shared")
        assert run_files(mine.run_dir) == run_files(theirs.run_dir), mine.name
    assert [Path(p).name for p in there.jobs[3].videos] == ["animation.mp4"]


def test_a_worker_that_cannot_see_the_shared_outdir_stops_the_batch_in_one_line(local_ray, tiny_model, tmp_path):
    path = write_batch(tmp_path, [{"mode": "txt2img", "settings": {**base(tiny_model), "prompt": "x"}}])
    manifest = open_batch(path, outdir=tmp_path / "out")
    pool = WorkerPool(ray, 1)
    try:
        here = ray.get(pool.workers[0].actor.sees.remote(str(manifest.path), str(tmp_path / "out")))
        elsewhere = ray.get(pool.workers[0].actor.sees.remote(str(tmp_path / "not-here"), str(tmp_path)))
        assert here is None and elsewhere == socket.gethostname()
        pool.workers[0].sees = ray.put("node-b")  # as a worker on a machine without the mount answers
        with pytest.raises(SdplayError, match=r"^--shared-outdir: a worker on node-b cannot see or write .*out;"):
            run_on_pool(manifest, pool, shared=True)
    finally:
        pool.close()
    assert manifest.jobs[0].state == "running" and manifest.unfinished()  # --resume takes it up


def test_the_cli_runs_a_batch_on_ray_into_a_shared_outdir(local_ray, tiny_model, tmp_path) -> None:
    from typer.testing import CliRunner

    from sdplay.cli import app

    settings = {**base(tiny_model), "prompt": "a red circle", "width": 64, "height": 64}
    path = write_batch(tmp_path, [{"mode": "txt2img", "settings": settings, "product": {"seed": [1, 2]}}])
    out = tmp_path / "shared"
    args = ["batch", str(path), "--ray", "auto", "--workers", "2", "--outdir", str(out), "--shared-outdir", "-q"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    folders = sorted((out / "txt2img").iterdir())
    assert [sorted(p.name for p in folder.iterdir()) for folder in folders] == [["0000.png", "settings.json"]] * 2
