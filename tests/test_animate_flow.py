"""Deforum's optical-flow cadence, optical-flow redo and diffusion redo, measured on small pictures."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from animate_helpers import shift_of, texture
from PIL import Image

from sdplay import flow
from sdplay.animate.renderer import FrameRequest, Renderer
from sdplay.animate.settings import AnimationSettings
from sdplay.api import model_for
from sdplay.engine import Job, run
from sdplay.engine.events import Event, Progress
from sdplay.errors import SdplayError
from sdplay.output import read_parameters


def small(tiny_model: Path, **options) -> AnimationSettings:
    base = {"model": str(tiny_model), "W": 64, "H": 64, "steps": 4, "seed": 5, "device": "cpu", "prompts": {"0": "a"}}
    base.update(strength_schedule=0.5, sampler="euler", noise_schedule=0, color_coherence="None", zoom="0: (1)")
    return AnimationSettings(**{**base, **options})


def square_at(x: int, size: int = 64) -> torch.Tensor:
    """A white 16x16 square with its left edge at x over a dim texture (flow needs texture), (1, 3, H, W)."""
    image = texture(size, size) * 0.3
    image[..., 24:40, x : x + 16] = 1.0
    return image


def read(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)


def changed(renderer: Renderer, **values: object) -> Renderer:
    """The same renderer (model, prompts) with some settings changed."""
    other = copy.copy(renderer)
    other.settings = renderer.settings.with_values(**values)
    other.series = other.settings.series
    return other


@pytest.fixture(scope="module")
def renderer(tiny_model) -> Renderer:
    settings = small(tiny_model, optical_flow_cadence="DIS Medium").resolved(model_for(small(tiny_model)))
    return Renderer(settings, model_for(settings))


@pytest.mark.parametrize(("method", "tolerance"), [("DIS Medium", 1.25), ("DIS Fine", 1.25), ("Farneback", 0.25)])
def test_flow_cadence_slides_a_shape_between_the_keys_instead_of_fading(renderer, method, tolerance) -> None:
    """Keys 8 px apart: along the flow, the in-between frame at weight w holds one whole square 8 w px on;
    the plain cross-fade holds two faint ones, whole only where they overlap. Measured at 64 px: DIS within
    1.1 px, Farneback exactly."""
    older, newer = square_at(16), square_at(24)
    along, plain = changed(renderer, optical_flow_cadence=method), changed(renderer, optical_flow_cadence="None")
    for weight in (0.25, 0.5, 0.75):
        moved, how = along.cadence_blend(older, newer, weight, key=3, frame=4)
        faded, _ = plain.cadence_blend(older, newer, weight, key=3, frame=4)
        assert how == {"Optical flow cadence": method}
        square = moved[0].mean(0) > 0.9
        assert square.sum() > 0.75 * 16 * 16 and (faded[0].mean(0) > 0.9).sum() == 16 * 8, weight  # just the overlap
        left = float(torch.nonzero(square)[:, 1].float().mean()) - 7.5  # the centre's column less half a side
        assert abs(left - (16 + 8 * weight)) < tolerance, weight


def test_flow_cadence_factor_scales_the_slide_and_a_key_that_keeps_nothing_fades(renderer) -> None:
    older, newer = texture(seed=1)[..., :64, :64], torch.roll(texture(seed=1)[..., :64, :64], 6, dims=-1)
    half = changed(renderer, cadence_flow_factor_schedule="0: (0.5)")
    full, _ = renderer.cadence_blend(older, newer, 0.5, key=3, frame=4)
    halved, _ = half.cadence_blend(older, newer, 0.5, key=3, frame=4)
    assert abs(shift_of(older, full)[1] - 3) < 0.5 and abs(shift_of(older, halved)[1] - 1.5) < 0.5
    nothing_kept = changed(renderer, strength_schedule="0: (0)")
    faded, how = nothing_kept.cadence_blend(older, newer, 0.5, key=3, frame=4)
    assert how == {} and torch.allclose(faded, (older + newer) / 2)


def test_a_run_with_flow_cadence_shows_the_keys_met_along_their_flow(tiny_model, tmp_path) -> None:
    """N = 3: frames K..K+2 are the flow blend of the key before and key K at w = 1/3, 2/3, 1, resumed alike."""
    settings = small(tiny_model, max_frames=7, diffusion_cadence=3, optical_flow_cadence="dis medium")
    result = run(Job("animate", settings, outdir=tmp_path / "a"))
    frame = [read(p) for p in result.paths]
    keys = {k: read(result.run_dir / "keys" / f"{k:04d}.png") for k in (3, 6)}
    keys[0] = frame[0]
    for t, (before, key) in {3: (0, 3), 4: (0, 3), 6: (3, 6)}.items():
        weight = (t - key + 1) / 3
        a, b = (keys[k].astype(np.float32) / 255 for k in (before, key))
        expected = flow.between(a, b, [weight], "DIS Medium")[0] * 255
        assert np.abs(frame[t] - expected).max() <= 1, t
        linear = (1 - weight) * keys[before] + weight * keys[key]
        assert weight == 1 or np.abs(frame[t] - linear).mean() > 0.5, t  # the flow moved something
    assert read_parameters(result.paths[4])["Optical flow cadence"] == "DIS Medium"
    resumed_dir = tmp_path / "cut"
    shutil.copytree(result.run_dir, resumed_dir)
    for name in ("0005.png", "0006.png", "keys/0006.png", "animation.mp4"):
        (resumed_dir / name).unlink()
    resumed = run(Job("animate", None, resume=resumed_dir))
    for a, b in zip(result.paths, resumed.paths, strict=True):
        assert np.array_equal(read(a), read(b)), b.name


def test_raft_is_measured_with_dis_fine_and_an_unknown_flow_is_one_line(tiny_model, caplog) -> None:
    flow.WARNED.discard("RAFT")
    assert small(tiny_model, optical_flow_cadence="RAFT").optical_flow_cadence == "DIS Fine"
    assert "optical_flow_cadence: optical flow RAFT is done with DIS Fine instead" in caplog.text
    with pytest.raises(SdplayError, match=r"^optical_flow_redo_generation: unknown optical flow 'Lucas'; choose None"):
        small(tiny_model, optical_flow_redo_generation="Lucas")


class Calls:
    """The pipeline calls of a run, by the frame each made: how many, counted at their first step."""

    def __init__(self) -> None:
        self.count: dict[int, int] = {}

    def __call__(self, event: Event) -> None:
        if isinstance(event, Progress) and event.step == 1:
            self.count[event.frame] = self.count.get(event.frame, 0) + 1


def test_diffusion_redo_generates_again_from_each_result_before_the_frame_s_own(tiny_model, tmp_path) -> None:
    settings = small(tiny_model, max_frames=3)
    plain, calls = run(Job("animate", settings, outdir=tmp_path / "a")), Calls()
    redone = run(Job("animate", settings.with_values(diffusion_redo=2), outdir=tmp_path / "b"), calls)
    again = run(Job("animate", settings.with_values(diffusion_redo=2), outdir=tmp_path / "c"))
    assert calls.count == {0: 1, 1: 3, 2: 3}  # frame 0 has no frame before it to redo
    assert np.array_equal(read(plain.paths[0]), read(redone.paths[0]))
    assert np.abs(read(plain.paths[1]) - read(redone.paths[1])).mean() > 2
    assert all(np.array_equal(read(a), read(b)) for a, b in zip(redone.paths, again.paths, strict=True))
    assert read_parameters(redone.paths[1])["Diffusion redo"] == "2"
    keep_all, calls = settings.with_values(diffusion_redo=2, strength_schedule="0: (1)"), Calls()
    run(Job("animate", keep_all, outdir=tmp_path / "d"), calls)
    assert calls.count == {0: 1}  # nothing to denoise: no redo either


def test_optical_flow_redo_starts_from_the_draft_moved_on_along_its_flow(renderer, monkeypatch) -> None:
    """The draft lies 3 px right of the frame before; moved along that flow (factor 0.5) it starts 1.5 px further."""
    previous = texture(seed=2)[..., :64, :64]
    draft = torch.roll(previous, 3, dims=-1)
    redo = changed(renderer, optical_flow_redo_generation="Farneback", redo_flow_factor_schedule="0: (0.5)")
    given: list[FrameRequest] = []

    def diffuse(jobs: list[FrameRequest]) -> list[torch.Tensor]:
        given.extend(jobs)
        return [draft for _ in jobs]

    monkeypatch.setattr(redo, "diffuse", diffuse)
    _, diffused, extra = redo.redraw_key(FrameRequest.keeping(2, previous, 0.5), previous)
    assert diffused and extra == {"Denoising strength": 0.5, "Optical flow redo": "Farneback"}
    assert given[0].seed is not None and given[0].seed != given[1].seed and given[1].seed is None
    assert abs(shift_of(previous, given[1].image)[1] - 4.5) < 0.5
