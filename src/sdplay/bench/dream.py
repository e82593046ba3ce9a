"""Dream figures: frames per second batched beside one frame at a time (the original tool's way)."""

from __future__ import annotations

from ..devices import default_batch_size, resolve_device
from ..dream import DreamSettings
from ..engine import Job, run
from ..settings import ImageSettings
from .images import figure
from .timing import timed_side_by_side


def walk_settings(base: ImageSettings, batch_size: int, frames: int) -> DreamSettings:
    """A two-key walk on the bench's model and size."""
    return DreamSettings(
        prompts=(base.prompt, "a blue square on a yellow background"),
        seeds=(1, 2),
        total_frames=frames,
        steps=base.steps,
        width=base.width,
        height=base.height,
        batch_size=batch_size,
        **{**base.model_options(), "safety_checker": False},
    )


def bench_dream(base: ImageSettings, repeats: int, frames: int = 16) -> list[dict]:
    """Make the same walk twice per repeat, batched and one frame per UNet call; same prompts, seeds."""

    def walk(batch_size: int) -> DreamSettings:
        return walk_settings(base, batch_size, frames)

    warm = run(Job("dream", walk(1), write=False))  # loads the model, resolves the size
    device = resolve_device(base.device)
    size = warm.settings.width * warm.settings.height
    batch = max(2, default_batch_size(device, size))
    run(Job("dream", walk(batch), write=False))
    one, batched = timed_side_by_side(
        [lambda: run(Job("dream", walk(1), write=False)), lambda: run(Job("dream", walk(batch), write=False))],
        device,
        repeats,
    )
    return [figure(f"dream frames/s (batch {batch})", "1/s", frames / batched, frames / one, "one frame per UNet call")]
