"""The frames of each animation mode, in order, from a Renderer.

With `diffusion_cadence` N only frames 0, N, 2N, ... are diffused in 2D/3D. A frame between two of
them cross-fades the earlier one warped forward to it with the later one warped back to it;
frames after the last diffused one are that frame warped forward. Video Input, None and
Interpolation frames do not depend on each other and are diffused in batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

import torch
from PIL import Image

from ..interp import lerp
from .renderer import Frame, FrameRequest, Renderer, fit, from_pil, quantise

if TYPE_CHECKING:
    from ..output import RunFolder


def first_frame(r: Renderer, init: Image.Image | None) -> Frame:
    """Frame 0: txt2img, or the init image redrawn keeping `strength` of it."""
    s = r.settings
    if init is None:
        image, extra = r.draw(0), {}
    else:
        request = FrameRequest.keeping(0, from_pil(fit(init, s.W, s.H), r.device), s.strength)
        image, _ = r.redraw(request)
        extra = request.parameters()
    return Frame(0, image, r.parameters(0, extra), True)


def motion_frames(r: Renderer, start: Frame, depth: torch.Tensor | None) -> Iterator[Frame]:
    """2D/3D from a diffused frame (and its depth) on: the frames after it, in order, cadence included."""
    keys = [k for k in r.keys if k > start.index]
    previous = start
    for key in keys:
        chain, image, moving_depth = [], previous.image, depth
        for frame in range(previous.index + 1, key + 1):
            image, moving_depth = r.warp(image, moving_depth, frame)
            chain.append(image)
        request = FrameRequest.keeping(key, r.prepare(chain[-1], key), r.value("strength_schedule", key))
        new, diffused = r.redraw(request)
        new_depth, depth_map = r.depth_of(new)
        back, back_depth, between = new, new_depth, {}
        for frame in range(key - 1, previous.index, -1):
            back, back_depth = r.warp(back, back_depth, frame + 1, inverse=True)
            between[frame] = back
        span = key - previous.index
        for frame in range(previous.index + 1, key):
            weight = (frame - previous.index) / span
            blend = chain[frame - previous.index - 1] * (1 - weight) + between[frame] * weight
            extra = {"Cadence": f"{weight:.3f} of frame {key} over frame {previous.index}"}
            yield Frame(frame, quantise(blend), r.parameters(frame, extra), False)
        extra = request.parameters() if diffused else {"Kept": "previous frame, warped"}
        previous, depth = Frame(key, new, r.parameters(key, extra), True, depth_map), new_depth
        yield previous
    image, moving_depth = previous.image, depth
    for frame in range(previous.index + 1, r.settings.max_frames):
        image, moving_depth = r.warp(image, moving_depth, frame)
        extra = {"Cadence": f"frame {previous.index} warped forward"}
        yield Frame(frame, quantise(image), r.parameters(frame, extra), False)


def independent_batches(r: Renderer, start: int) -> Iterator[list[int]]:
    """Frames that do not depend on each other (Video Input, None, Interpolation), grouped for
    one diffusion call each: frame 0 alone (later frames may match its colours), then up to
    `batch_size` frames counted from frame 1, cut where the call shape changes.

    The groups depend on the settings alone, so a resumed run redoes the group it stopped in
    and makes the same frames as an unbroken one; frames before `start` come out too and are
    skipped by the caller.
    """
    size, count = r.settings.batch_size or 1, r.settings.max_frames
    chunks = [[0]] + [list(range(a, min(a + size, count))) for a in range(1, count, size)]
    for chunk in chunks:
        if chunk[-1] < start:
            continue
        group, shape = [chunk[0]], r.call_shape(chunk[0])
        for frame in chunk[1:]:
            if r.call_shape(frame) != shape:
                yield group
                group, shape = [], r.call_shape(frame)
            group.append(frame)
        yield group


def video_frames(r: Renderer, video: list[Image.Image], start: int) -> Iterator[Frame]:
    """Video Input: each extracted frame redrawn keeping `strength_schedule` of it, in batches.

    Colour coherence matches against frame 0's result, or with `Video Input` against the video
    frame of every `color_coherence_video_every_N_frames`-th frame.
    """
    s = r.settings
    every = s.color_coherence_video_every_N_frames
    anchor = None  # the video frame the reference was made from
    for frames in independent_batches(r, start):
        jobs = []
        for frame in frames:
            source = from_pil(fit(video[frame], s.W, s.H), r.device)
            if s.color_coherence == "Video Input" and anchor != frame - frame % every:
                anchor = frame - frame % every
                r.use_reference(from_pil(fit(video[anchor], s.W, s.H), r.device))
            jobs.append(FrameRequest.keeping(frame, r.prepare(source, frame), r.value("strength_schedule", frame)))
        for job, (image, diffused) in zip(jobs, r.diffuse_all(jobs), strict=True):
            if job.frame == 0 and s.color_coherence in ("RGB", "HSV", "LAB"):
                r.use_reference(image)
            extra = job.parameters() if diffused else {}
            yield Frame(job.frame, image, r.parameters(job.frame, extra), True, r.depth_of(image)[1])


def still_frames(r: Renderer, start: int) -> Iterator[Frame]:
    """animation_mode None: every frame drawn on its own with its prompt and seed, in batches."""
    for frames in independent_batches(r, start):
        for frame, image in zip(frames, r.diffuse([FrameRequest(frame) for frame in frames]), strict=True):
            yield Frame(frame, image, r.parameters(frame, {}), True, r.depth_of(image)[1])


def interpolation_frames(r: Renderer, start: int) -> Iterator[Frame]:
    """Interpolation: the key prompts' text embeddings blended, `interpolate_x_frames` between each pair."""
    keys = r.settings.key_prompts()
    encoded = [r.encode(prompt, negative) for _, prompt, negative in keys]
    per = r.settings.interpolate_x_frames + 1

    def job(frame: int) -> FrameRequest:
        segment, offset = divmod(frame, per)
        if segment >= len(keys) - 1:
            return FrameRequest(frame, embeds=encoded[-1])
        t = offset / per
        after = encoded[segment + 1]
        return FrameRequest(frame, embeds={name: lerp(t, a, after[name]) for name, a in encoded[segment].items()})

    for frames in independent_batches(r, start):
        for frame, image in zip(frames, r.diffuse([job(frame) for frame in frames]), strict=True):
            segment, offset = divmod(frame, per)
            extra = {"Interpolation": f"{offset}/{per} from key {segment}"} if offset else {}
            yield Frame(frame, image, r.parameters(frame, extra), True, r.depth_of(image)[1])


def frames_from(
    r: Renderer, folder: RunFolder | None, done: int, init: Image.Image | None, video: list[Image.Image]
) -> Iterator[Frame]:
    """The frames of the run from where it stands: fresh, or after `done` frames already in `folder`.

    Frames before `done` may come out too (remade to rebuild what follows them); callers skip them.
    """
    s = r.settings
    if done and s.color_coherence not in ("None", "Video Input"):
        r.use_reference(from_pil(_on_disk(folder, 0), r.device))
    if s.animation_mode == "Video Input":
        yield from video_frames(r, video, done)
        return
    if s.animation_mode == "None":
        yield from still_frames(r, done)
        return
    if s.animation_mode == "Interpolation":
        yield from interpolation_frames(r, done)
        return
    if done:  # restart from the last diffused frame on disk; what follows it is made again identically
        key = max(k for k in r.keys if k < done)
        image = from_pil(_on_disk(folder, key), r.device)
        depth, _ = r.depth_of(image)
        start = Frame(key, image, "", True)
    else:
        made = first_frame(r, init)
        depth, depth_map = r.depth_of(made.image)
        start = replace(made, depth=depth_map)
        yield start
        if s.color_coherence != "None":
            r.use_reference(start.image)
    yield from motion_frames(r, start, depth)


def _on_disk(folder: RunFolder | None, index: int) -> Image.Image:
    if folder is None:
        raise ValueError("continuing a run needs its folder")
    return folder.frame(index)
