"""Samplers by name: one table from the names users type to diffusers scheduler classes.

Each entry also accepts the spellings of the AUTOMATIC1111 web UI and Deforum (`Euler a`,
`DPM++ 2M Karras`, `klms`, ...) so imported settings files keep their sampler.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import SdplayError


@dataclass(frozen=True)
class Sampler:
    cls: str
    options: dict[str, Any] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()


SAMPLERS: dict[str, Sampler] = {
    "ddim": Sampler("DDIMScheduler"),
    "ddpm": Sampler("DDPMScheduler"),
    "pndm": Sampler("PNDMScheduler", {"skip_prk_steps": True}, ("plms",)),
    "lms": Sampler("LMSDiscreteScheduler", {}, ("klms", "k_lms")),
    "lms_karras": Sampler("LMSDiscreteScheduler", {"use_karras_sigmas": True}, ("lms karras",)),
    "euler": Sampler("EulerDiscreteScheduler", {}, ("k_euler",)),
    "euler_a": Sampler("EulerAncestralDiscreteScheduler", {}, ("euler a", "euler_ancestral", "k_euler_ancestral")),
    "heun": Sampler("HeunDiscreteScheduler", {}, ("k_heun",)),
    "dpm2": Sampler("KDPM2DiscreteScheduler", {}, ("k_dpm_2", "dpm_2")),
    "dpm2_a": Sampler("KDPM2AncestralDiscreteScheduler", {}, ("dpm2 a", "k_dpm_2_ancestral", "dpm_2_ancestral")),
    "dpm++_2m": Sampler("DPMSolverMultistepScheduler", {}, ("dpm++ 2m", "dpmpp_2m")),
    "dpm++_2m_karras": Sampler(
        "DPMSolverMultistepScheduler", {"use_karras_sigmas": True}, ("dpm++ 2m karras", "dpmpp_2m_karras")
    ),
    "dpm++_2m_sde": Sampler(
        "DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++"}, ("dpm++ 2m sde", "dpmpp_2m_sde")
    ),
    "dpm++_2m_sde_karras": Sampler(
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "sde-dpmsolver++", "use_karras_sigmas": True},
        ("dpm++ 2m sde karras", "dpmpp_2m_sde_karras"),
    ),
    "dpm++_sde": Sampler("DPMSolverSinglestepScheduler", {}, ("dpm++ sde", "dpmpp_sde")),
    "dpm++_sde_karras": Sampler(
        "DPMSolverSinglestepScheduler", {"use_karras_sigmas": True}, ("dpm++ sde karras", "dpmpp_sde_karras")
    ),
    "unipc": Sampler("UniPCMultistepScheduler", {}, ("unipc multistep",)),
    "lcm": Sampler("LCMScheduler"),
}


def _normalise(name: str) -> str:
    return " ".join(name.strip().lower().replace("-", " ").split())


_LOOKUP = {_normalise(key): key for key in SAMPLERS}
_LOOKUP.update({_normalise(alias): key for key, s in SAMPLERS.items() for alias in s.aliases})


def canonical_sampler(name: str) -> str:
    """Map any accepted spelling to our canonical sampler name, or fail with the list."""
    key = _LOOKUP.get(_normalise(name)) or _LOOKUP.get(_normalise(name).replace(" ", "_"))
    if key is None:
        raise SdplayError(f"unknown scheduler {name!r}; choose one of {', '.join(SAMPLERS)}")
    return key


def make_scheduler(name: str, base_config: dict[str, Any]) -> Any:
    """Build the named scheduler from the model's own scheduler config (betas, prediction type)."""
    import diffusers  # here, not at the top: settings check sampler names long before a model loads

    sampler = SAMPLERS[canonical_sampler(name)]
    cls = getattr(diffusers, sampler.cls)
    return cls.from_config(base_config, **sampler.options)


def sampler_name_of(scheduler: Any) -> str:
    """Our name for a scheduler object (the model's own default one included)."""
    cls = type(scheduler).__name__
    most_specific_first = sorted(SAMPLERS.items(), key=lambda item: -len(item[1].options))
    for key, sampler in most_specific_first:
        if sampler.cls == cls and all(scheduler.config.get(k) == v for k, v in sampler.options.items()):
            return key
    return cls
