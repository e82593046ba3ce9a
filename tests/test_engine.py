"""The run engine: one Job for every mode, events to listeners, previews on request, cancel within a step,
resume identical to an unbroken run (also after a kill during the video encode)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sdplay.dream import DreamSettings
from sdplay.engine import CancelToken, Job, run
from sdplay.engine.events import Cancelled, Event, FileWritten, Finished, PictureMade, Preview, Progress, Started
from sdplay.errors import SdplayError
from sdplay.settings import ImageSettings
from sdplay.video import video_info


def dream_settings(tiny_model: Path, **options) -> DreamSettings:
    base = dict(model=str(tiny_model), width=64, height=64, steps=2, device="cpu", seeds=[1, 2], batch_size=1)
    return DreamSettings(prompts=("a cat", "a dog"), **{**base, **options})


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_a_job_tells_its_listeners_what_happens_in_order(tiny_model, tmp_path) -> None:
    events: list[Event] = []
    settings = ImageSettings(prompt="a cat", model=str(tiny_model), steps=2, num=2, device="cpu", scheduler="euler")
    result = run(Job("txt2img", settings, outdir=tmp_path), events.append)
    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "FileWritten" and events[0].kind == "settings"  # settings.json comes first
    assert kinds[1] == "Started" and events[1].total == 2 and events[1].run_dir == result.run_dir
    assert kinds[-1] == "Finished" and events[-1].result is result
    progress = [(e.frame, e.step, e.steps) for e in events if isinstance(e, Progress)]
    assert progress == [(0, 1, 2), (0, 2, 2), (1, 1, 2), (1, 2, 2)]
    frames = [e for e in events if isinstance(e, FileWritten) and e.kind == "frame"]
    assert [(e.frame, e.path) for e in frames] == list(enumerate(result.paths))
    assert not any(isinstance(e, Preview) for e in events)  # nobody asked for previews
    assert all(e.job_id == result.job.id for e in events)


def test_previews_come_only_when_asked_and_look_like_the_picture(tmp_path) -> None:
    events: list[Event] = []
    settings = ImageSettings(prompt="a red circle on a blue background", model="mini", seed=3, device="cpu")
    result = run(Job("txt2img", settings, write=False), events.append, previews=True)
    previews = [e for e in events if isinstance(e, Preview)]
    assert previews and previews[-1].step == result.settings.steps  # the last step always has one
    last = previews[-1].image
    assert last.size == (16, 16)  # latent size: 64 px / the mini VAE's factor 4
    final = np.asarray(result.images[0].resize(last.size, Image.Resampling.BOX), dtype=float)
    # a linear map is rough, but the blue background and the picture's overall colours come through
    assert np.abs(final - np.asarray(last, dtype=float)).mean() < 40
    assert np.asarray(last, dtype=float)[0, 0, 2] > np.asarray(last, dtype=float)[0, 0, 0]  # a blue corner


def test_cancel_from_another_thread_stops_within_one_step_and_the_run_resumes_identically(tiny_model, tmp_path):
    settings = dream_settings(tiny_model, total_frames=6, steps=4)
    whole = run(Job("dream", settings, outdir=tmp_path / "whole"))
    cancel, first_frame_written = CancelToken(), threading.Event()
    after_cancel: list[Event] = []

    def listen(event: Event) -> None:
        if cancel.cancelled:
            after_cancel.append(event)
        if isinstance(event, FileWritten) and event.frame == 1:
            first_frame_written.set()

    outcome: list = []
    worker = threading.Thread(
        target=lambda: outcome.append(run(Job("dream", settings, outdir=tmp_path), listen, cancel))
    )
    worker.start()
    assert first_frame_written.wait(120)
    cancel.cancel()
    worker.join(120)
    cut = outcome[0]
    assert cut.cancelled and isinstance(after_cancel[-1], Cancelled) and after_cancel[-1].run_dir == cut.run_dir
    assert sum(isinstance(e, Progress) for e in after_cancel) <= 1  # at most the step that was running
    assert not (cut.run_dir / "dream.mp4").exists()
    resumed = run(Job("dream", None, resume=cut.run_dir))
    assert resumed.run_dir == cut.run_dir and video_info(resumed.video)[0] == 6
    for mine, theirs in zip(resumed.paths, whole.paths, strict=True):
        assert np.array_equal(pixels(mine), pixels(theirs)), mine.name


def test_a_kill_during_the_video_encode_leaves_no_video_and_resume_encodes_a_complete_one(tiny_model, tmp_path):
    done = run(Job("dream", dream_settings(tiny_model, total_frames=4), outdir=tmp_path))
    video = done.video
    video.unlink()  # as if the process had been killed while encoding: only the hidden partial file is left
    (video.parent / ".dream.partial.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 cut off")
    events: list[Event] = []
    resumed = run(Job("dream", None, resume=done.run_dir), events.append)
    assert video_info(resumed.video)[0] == 4 and not (video.parent / ".dream.partial.mp4").exists()
    started = next(e for e in events if isinstance(e, Started))
    assert started.start == 4 and not any(isinstance(e, Progress) for e in events)  # no frame was made again


def test_an_interrupted_encode_leaves_no_truncated_video(tiny_model, tmp_path, monkeypatch) -> None:
    import sdplay.video

    def killed(arrays, path, fps, audio):
        path.write_bytes(b"half a video")
        raise KeyboardInterrupt

    monkeypatch.setattr(sdplay.video, "_write_mp4", killed)
    with pytest.raises(KeyboardInterrupt):
        run(Job("dream", dream_settings(tiny_model, total_frames=3), outdir=tmp_path))
    run_dir = next((tmp_path / "dream").iterdir())
    assert sorted(p.name for p in run_dir.iterdir()) == ["0000.png", "0001.png", "0002.png", "settings.json"]


def test_a_full_disk_stops_the_run_with_one_line_and_keeps_the_finished_frames(tiny_model, tmp_path, monkeypatch):
    import errno

    from sdplay import output

    real_save_png = output.save_png

    def disk_full_at_frame_2(image, path_for, start, parameters):
        if start == 2:
            return output.write_exclusive(path_for, start, _raise(OSError(errno.ENOSPC, "No space left on device")))
        return real_save_png(image, path_for, start, parameters)

    monkeypatch.setattr(output, "save_png", disk_full_at_frame_2)
    events: list[Event] = []
    with pytest.raises(SdplayError, match="No space left on device; the files before it were kept"):
        run(Job("dream", dream_settings(tiny_model, total_frames=5), outdir=tmp_path), events.append)
    run_dir = next((tmp_path / "dream").iterdir())
    assert sorted(p.name for p in run_dir.glob("*.png"))[:2] == ["0000.png", "0001.png"]
    assert not (run_dir / "0002.png").exists()  # no half-written file
    assert type(events[-1]).__name__ == "Failed" and "No space left" in events[-1].message
    monkeypatch.setattr(output, "save_png", real_save_png)
    resumed = run(Job("dream", None, resume=run_dir))
    assert len(resumed.paths) == 5 and video_info(resumed.video)[0] == 5


def _raise(exc: Exception):
    def write(handle) -> None:
        handle.write(b"part")
        raise exc

    return write


def test_jobs_come_from_plain_data_and_refuse_what_is_not_a_job(tiny_model, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    job = Job.from_dict("txt2img", {"prompt": "a cat", "model": str(tiny_model), "steps": 1, "device": "cpu"})
    assert job.settings.mode == "txt2img" and job.settings.prompt == "a cat"
    made = run(job, None)
    assert made.run_dir.parent.resolve() == tmp_path / "outputs" / "txt2img"  # written under ./outputs by default
    with pytest.raises(SdplayError, match="unknown mode 'paint'"):
        Job.from_dict("paint", {})
    with pytest.raises(SdplayError, match="must be a mapping"):
        Job.from_dict("dream", ["a cat"])  # type: ignore[arg-type]
    with pytest.raises(SdplayError, match="only dream and animate runs resume"):
        Job("txt2img", None, resume=tmp_path)
    with pytest.raises(SdplayError, match="not dream settings"):
        Job("dream", job.settings)


def test_an_output_root_that_is_a_file_is_refused_before_the_model_loads(tiny_model, tmp_path, monkeypatch) -> None:
    blocker = tmp_path / "outputs"
    blocker.write_text("not a folder")
    monkeypatch.setattr("sdplay.models.load_model", lambda *a, **k: pytest.fail("the model was loaded"))
    with pytest.raises(SdplayError, match="is a file"):
        run(Job("dream", dream_settings(tiny_model), outdir=blocker))
    assert blocker.read_text() == "not a folder"


def test_finished_is_the_last_event_and_carries_the_result(tiny_model) -> None:
    events: list[Event] = []
    result = run(Job("dream", dream_settings(tiny_model, total_frames=2), write=False), events.append)
    assert isinstance(events[-1], Finished) and events[-1].result is result and len(result.images) == 2


def test_resume_refuses_a_folder_of_another_mode(tiny_model, tmp_path) -> None:
    done = run(Job("dream", dream_settings(tiny_model, total_frames=2), outdir=tmp_path))
    with pytest.raises(SdplayError, match="that is a dream run, not animate"):
        run(Job("animate", None, resume=done.run_dir))


def test_without_videos_a_run_writes_its_frames_only_and_memory_runs_tell_each_picture(tiny_model, tmp_path) -> None:
    settings = dream_settings(tiny_model, total_frames=3)
    frames_only = run(Job("dream", settings, outdir=tmp_path, videos=False))
    assert len(frames_only.paths) == 3 and frames_only.videos == []
    assert sorted(p.name for p in frames_only.run_dir.iterdir()) == [
        "0000.png",
        "0001.png",
        "0002.png",
        "settings.json",
    ]
    events: list[Event] = []
    in_memory = run(Job("dream", settings, write=False), events.append)
    made = [e for e in events if isinstance(e, PictureMade)]
    assert [e.index for e in made] == [0, 1, 2] and [e.image for e in made] == in_memory.images
    assert np.array_equal(np.asarray(made[2].image), pixels(frames_only.paths[2])) and made[2].extras == {}
