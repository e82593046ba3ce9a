"""The walk's own scheduler, and the img2img timestep its image key points are noised to."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from ..errors import SdplayError
from ..schedulers import make_scheduler
from .settings import DreamSettings

if TYPE_CHECKING:
    from ..models import Model


def fresh_scheduler(model: Model, name: str | None) -> Any:
    """A new scheduler from the model's original config, so the walk never changes a shared one."""
    base = model.original_scheduler
    return make_scheduler(name, base.config) if name else type(base).from_config(base.config)


def use_dream_scheduler(pipe: Any, model: Model, settings: DreamSettings) -> None:
    """A private scheduler for the walk; image walks get one that keeps our own noising."""
    scheduler = fresh_scheduler(model, settings.scheduler)
    pipe.scheduler = _prenoised(scheduler) if settings.images else scheduler


_PRENOISED: dict[type, type] = {}


def _prenoised(scheduler: Any) -> Any:
    """The same scheduler, but `add_noise` leaves latents as they are.

    The img2img pipeline noises its input itself; an image walk hands it latents that are
    already noised (and slerped), so that step must do nothing.
    """
    cls = type(scheduler)
    if cls not in _PRENOISED:
        _PRENOISED[cls] = type(f"Prenoised{cls.__name__}", (cls,), {"add_noise": _keep_noised})
    return _PRENOISED[cls].from_config(scheduler.config)


def _keep_noised(self: Any, original_samples: torch.Tensor, noise: torch.Tensor, timesteps: Any) -> torch.Tensor:
    return original_samples


def start_timestep(scheduler: Any, steps: int, strength: float) -> tuple[Any, int]:
    """The timestep an img2img pipeline starts denoising from (and its index), as diffusers computes it."""
    scheduler.set_timesteps(steps, device="cpu")
    denoised = min(int(steps * strength), steps)
    if denoised < 1:
        raise SdplayError(f"--strength {strength} with {steps} steps leaves no step to run; raise either")
    begin = (steps - denoised) * scheduler.order
    return scheduler.timesteps[begin], begin
