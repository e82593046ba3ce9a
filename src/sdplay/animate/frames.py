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
    """Frame 0: txt2img, or the init image redrawn keeping `strength` of it; then its colours (Deforum's order)."""
    s = r.settings
    if init is None:
        image, extra, keep = r.draw(0), {}, r.value("strength_schedule", 0)
    else:
        request = FrameRequest.keeping(0, from_pil(fit(init, s.W, s.H), r.device), s.strength)
        (image, _), extra, keep = r.redraw(request), request.parameters(), s.strength
    image = quantise(r.coherence.after(image, 0, keep, from_init=init is not None))
    return Frame(0, image, r.parameters(0, extra), True)


def video_reference(r: Renderer, video: list[Image.Image], frame: int, anchor: int | None) -> int | None:
    """With `color_coherence: Video Input`, the video frame of every N-th frame becomes the colour
    reference; returns the video frame now in use (`anchor`, the one in use before)."""
    s = r.settings
    if s.color_coherence != "Video Input" or not video:
        return anchor
    every = s.color_coherence_video_every_N_frames
    wanted = min(frame - frame % every, len(video) - 1)
    if wanted != anchor:
        r.coherence.use(from_pil(fit(video[wanted], s.W, s.H), r.device))
    return wanted


def motion_frames(
    r: Renderer, start: Frame, depth: torch.Tensor | None, video: list[Image.Image] | None = None
) -> Iterator[Frame]:
    """2D/3D from a diffused frame (and its depth) on: the frames after it, in order, cadence included."""
    keys = [k for k in r.keys if k > start.index]
    previous, anchor = start, None
    for key in keys:
        chain, image, moving_depth = [], previous.image, depth
        for frame in range(previous.index + 1, key + 1):
            image, moving_depth = r.warp(image, moving_depth, frame)
            chain.append(image)
        anchor = video_reference(r, video or [], key, anchor)
        keep = r.value("strength_schedule", key)
        request = FrameRequest.keeping(key, r.prepare(chain[-1], key), keep)
        new, diffused = r.redraw(request)
        new = quantise(r.coherence.after(new, key, keep))
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

    As in Deforum, the video frames go to img2img as they are (no colour matching, contrast,
    sharpening or noise). With `color_coherence: Video Input` each result is matched to the video
    frame of every `color_coherence_video_every_N_frames`-th frame; the other colour modes find no
    reference here, as in Deforum, where every frame comes from an init picture.
    """
    s = r.settings
    anchor = None  # the video frame the reference was made from
    for frames in independent_batches(r, start):
        jobs = [
            FrameRequest.keeping(
                frame, from_pil(fit(video[frame], s.W, s.H), r.device), r.value("strength_schedule", frame)
            )
            for frame in frames
        ]
        for job, (image, diffused) in zip(jobs, r.diffuse_all(jobs), strict=True):
            anchor = video_reference(r, video, job.frame, anchor)
            image = quantise(r.coherence.after(image, job.frame, 1 - job.strength, from_init=True))
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
    r: Renderer,
    folder: RunFolder | None,
    done: int,
    init: Image.Image | None,
    video: list[Image.Image],
    color_image: Image.Image | None = None,
) -> Iterator[Frame]:
    """The frames of the run from where it stands: fresh, or after `done` frames already in `folder`.

    Frames before `done` may come out too (remade to rebuild what follows them); callers skip them.
    """
    s = r.settings
    if color_image is not None:
        r.coherence.use(from_pil(fit(color_image, s.W, s.H), r.device))
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
        if s.color_coherence in ("RGB", "HSV", "LAB"):
            first_reference(r, from_pil(_on_disk(folder, 0), r.device), init is not None, key)
        image = from_pil(_on_disk(folder, key), r.device)
        depth, _ = r.depth_of(image)
        start = Frame(key, image, "", True)
    else:
        video_reference(r, video, 0, None)
        made = first_frame(r, init)
        depth, depth_map = r.depth_of(made.image)
        start = replace(made, depth=depth_map)
        yield start
    yield from motion_frames(r, start, depth, video)


def first_reference(r: Renderer, frame_0: torch.Tensor, from_init: bool, restart: int) -> None:
    """The colour reference a run had made by the diffused frame after `restart`, rebuilt to resume:
    frame 0's result, or (legacy colour match, or frame 0 from an init image) frame 0 warped to the
    next key, which that key's own input becomes when the run reaches it."""
    if not r.settings.legacy_colormatch and not from_init:
        r.coherence.use(frame_0)
        return
    if restart == 0:
        return
    image, depth = frame_0, r.depth_of(frame_0)[0]
    for frame in range(1, min(r.settings.diffusion_cadence, r.settings.max_frames - 1) + 1):
        image, depth = r.warp(image, depth, frame)
    r.coherence.use(image)


def _on_disk(folder: RunFolder | None, index: int) -> Image.Image:
    if folder is None:
        raise ValueError("continuing a run needs its folder")
    return folder.frame(index)
