"""sdplay: a local Stable Diffusion playground (txt2img, img2img, inpaint, dream, animate).

import sdplay
image = sdplay.generate("a red circle on a blue background", model="mini", seed=1).images[0]
result = sdplay.run(sdplay.Job.from_dict("dream", {"prompts": ["a cat", "a dog"], "model": "mini"}), on_event=print)
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = [
    "CancelToken",
    "Job",
    "animate",
    "dream",
    "generate",
    "interpolate",
    "load_model",
    "outpaint",
    "run",
    "upscale",
    "__version__",
]


def __getattr__(name: str) -> Any:
    """Import torch and diffusers only when the API is used, so `sdplay --help` starts fast."""
    if name == "generate":
        from .api import generate

        return generate
    if name == "dream":
        from .dream import dream

        return dream
    if name == "animate":
        from .animate import animate

        return animate
    if name == "interpolate":
        from .frame_interpolation import interpolate

        return interpolate
    if name == "outpaint":
        from .outpainting import outpaint

        return outpaint
    if name == "upscale":
        from .upscaling import upscale

        return upscale
    if name in ("Job", "run", "CancelToken"):
        from . import engine

        return getattr(engine, name)
    if name == "load_model":
        from .models import load_model

        return load_model
    raise AttributeError(name)
