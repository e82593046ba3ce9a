"""The frames of each animation mode, in order, from a Renderer.

With `diffusion_cadence` N only frames 0, N, 2N, ... are diffused in 2D/3D; as in Deforum, frames
K..K+N-1 blend the diffused frame before K and K itself, both warped forward, so K shows fully at
K+N-1 (each diffused picture is kept in the `keys` folder for resuming); with optical-flow cadence the
two are moved along the flow between them before the blend (Renderer.cadence_blend). Video Input, None and
Interpolation frames do not depend on each other and are diffused in batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

import torch
from PIL import Image

from ..interp import lerp
from ..output import frame_path
from .renderer import KEYS_FOLDER, Frame, FrameRequest, Renderer, fit, from_pil, quantise

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


Moving = tuple[torch.Tensor, torch.Tensor | None]  # a picture and its depth, warped along together


def motion_frames(
    r: Renderer,
    start: Frame,
    depth: torch.Tensor | None,
    video: list[Image.Image] | None = None,
    older: Moving | None = None,
) -> Iterator[Frame]:
    """2D/3D after a diffused frame `start` (its depth; `older`, the diffused frame before it warped up to
    the frame before `start`), with Deforum's cadence timing.

    The frames from a diffused frame K up to the next one blend the diffused frame before K and K itself,
    both warped forward frame by frame, K's weight rising from 1/N at frame K to 1 at frame K+N-1; the
    next diffused frame starts from that last one, warped once more. With N = 1 every frame is diffused.
    """
    n, total = r.settings.diffusion_cadence, r.settings.max_frames
    key, anchor = start, None
    while True:
        following = min((k for k in r.keys if k > key.index), default=None)
        newer: Moving = (key.image, depth)
        for frame in range(key.index, total if following is None else following):
            if frame > key.index:
                newer = r.warp(*newer, frame)
            if older is not None:
                older = r.warp(*older, frame)
            if frame == start.index:
                continue  # written already (frame 0, or on disk when resuming)
            weight = (frame - key.index + 1) / n
            if older is None or weight >= 1:
                image, extra = newer[0], {"Cadence": f"frame {key.index} warped forward"}
            else:
                image, extra = r.cadence_blend(older[0], newer[0], weight, key.index, frame)
                extra = {"Cadence": f"{weight:.3f} of frame {key.index} over the frame diffused before it", **extra}
            if frame == key.index:
                yield replace(key, image=quantise(image), key_image=key.image if n > 1 else None)
            else:
                yield Frame(frame, quantise(image), r.parameters(frame, extra), False)
        if following is None:
            return
        anchor = video_reference(r, video or [], following, anchor)
        keep = r.value("strength_schedule", following)
        warped = r.warp(*newer, following)[0]
        request = FrameRequest.keeping(following, r.prepare(warped, following), keep)
        new, diffused, extra = r.redraw_key(request, warped)
        new = quantise(r.coherence.after(new, following, keep))
        depth, depth_map = r.depth_of(new)
        extra = extra if diffused else {"Kept": "previous frame, warped"}
        key, older = Frame(following, new, r.parameters(following, extra), True, depth_map), newer


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
    """Interpolation: between two key prompts' frames, their text embeddings blended linearly frame by frame;
    before the first key and after the last one, that key's prompt."""
    keys = r.settings.key_prompts()
    frames_of = [frame for frame, _, _ in keys]
    encoded = [r.encode(prompt, negative) for _, prompt, negative in keys]

    def place(frame: int) -> tuple[int, float]:
        """(the key at or before the frame, the share of the next key's prompt)."""
        index = max([i for i, key in enumerate(frames_of) if key <= frame], default=0)
        if index == len(keys) - 1 or frame < frames_of[0]:
            return index, 0.0
        return index, (frame - frames_of[index]) / (frames_of[index + 1] - frames_of[index])

    def job(frame: int) -> FrameRequest:
        index, t = place(frame)
        if t == 0:
            return FrameRequest(frame, embeds=encoded[index])
        after = encoded[index + 1]
        return FrameRequest(frame, embeds={name: lerp(t, a, after[name]) for name, a in encoded[index].items()})

    for frames in independent_batches(r, start):
        for frame, image in zip(frames, r.diffuse([job(frame) for frame in frames]), strict=True):
            index, t = place(frame)
            extra = {"Interpolation": f"{t:.3f} from the key prompt at frame {frames_of[index]}"} if t else {}
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
    older = None
    if done:  # restart from the last diffused frame on disk; what follows it is made again identically
        key = restart_key(r, folder, done)
        if s.color_coherence in ("RGB", "HSV", "LAB"):
            first_reference(r, from_pil(_on_disk(folder, 0), r.device), init is not None, key)
        image = key_image(r, folder, key)
        depth, _ = r.depth_of(image)
        start = Frame(key, image, "", True)
        if key > 0:  # the diffused frame before it, warped up to the frame before it
            before = key - s.diffusion_cadence
            older = key_image(r, folder, before), r.depth_of(key_image(r, folder, before))[0]
            for frame in range(before + 1, key):
                older = r.warp(*older, frame)
    else:
        video_reference(r, video, 0, None)
        made = first_frame(r, init)
        depth, depth_map = r.depth_of(made.image)
        start = replace(made, depth=depth_map)
        yield start
    yield from motion_frames(r, start, depth, video, older)


def key_image(r: Renderer, folder: RunFolder | None, key: int) -> torch.Tensor:
    """A diffused frame's own picture from a run folder: with a cadence, frames from 1 on show a blend,
    so it is kept in the keys sub-folder."""
    if key == 0 or r.settings.diffusion_cadence == 1:
        return from_pil(_on_disk(folder, key), r.device)
    assert folder is not None
    with Image.open(frame_path(folder.path / KEYS_FOLDER)(key)) as image:
        return from_pil(image, r.device)


def restart_key(r: Renderer, folder: RunFolder | None, done: int) -> int:
    """The last diffused frame before `done` that a resumed run can start from: its picture and the one
    before it are in the keys folder. A kill can leave a frame written without its picture there, or that
    picture cut off mid-write: such a picture is removed, to be written again when its frame is remade."""
    n = r.settings.diffusion_cadence

    def kept(key: int) -> bool:
        if key <= 0 or n == 1:
            return True
        path = frame_path(folder.path / KEYS_FOLDER)(key) if folder is not None else None
        if path is None or not path.exists():
            return False
        try:
            with Image.open(path) as image:
                image.load()
        except OSError:  # cut off mid-write (PIL's errors are OSErrors)
            path.unlink()
            return False
        return True

    return max(k for k in r.keys if k < done and kept(k) and kept(k - n))


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
