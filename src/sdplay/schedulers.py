"""Samplers by name: one table from the names users type to diffusers scheduler classes.

Each entry also accepts the spellings of the AUTOMATIC1111 web UI and Deforum (`Euler a`,
`DPM++ 2M Karras`, `klms`, ...) so imported settings files keep their sampler: all 29 of Deforum's
sampler names load. The Karras and Exponential variants are diffusers' sigma options on the same
scheduler; the four Deforum samplers diffusers has no scheduler for (`DPM++ 2S a` and its Karras
variant, `DPM adaptive`, `Restart`) run as the nearest one here, with a one-line warning naming it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from .errors import SdplayError

log = logging.getLogger("sdplay")


@dataclass(frozen=True)
class Sampler:
    cls: str
    options: dict[str, Any] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()


SDE = {"algorithm_type": "sde-dpmsolver++"}
KARRAS = {"use_karras_sigmas": True}
EXPONENTIAL = {"use_exponential_sigmas": True}

SAMPLERS: dict[str, Sampler] = {
    "ddim": Sampler("DDIMScheduler"),
    "ddpm": Sampler("DDPMScheduler"),
    "pndm": Sampler("PNDMScheduler", {"skip_prk_steps": True}, ("plms",)),
    "lms": Sampler("LMSDiscreteScheduler", {}, ("klms", "k_lms")),
    "lms_karras": Sampler("LMSDiscreteScheduler", KARRAS),
    "euler": Sampler("EulerDiscreteScheduler", {}, ("k_euler",)),
    "euler_a": Sampler("EulerAncestralDiscreteScheduler", {}, ("euler a", "euler_ancestral", "k_euler_ancestral")),
    "heun": Sampler("HeunDiscreteScheduler", {}, ("k_heun",)),
    "dpm2": Sampler("KDPM2DiscreteScheduler", {}, ("k_dpm_2", "dpm_2")),
    "dpm2_karras": Sampler("KDPM2DiscreteScheduler", KARRAS),
    "dpm2_a": Sampler("KDPM2AncestralDiscreteScheduler", {}, ("k_dpm_2_ancestral", "dpm_2_ancestral")),
    "dpm2_a_karras": Sampler("KDPM2AncestralDiscreteScheduler", KARRAS),
    "dpm_fast": Sampler("DPMSolverSinglestepScheduler", {"solver_order": 3}),  # the fast order schedule, order 3
    "dpm++_2m": Sampler("DPMSolverMultistepScheduler"),
    "dpm++_2m_karras": Sampler("DPMSolverMultistepScheduler", KARRAS),
    "dpm++_2m_sde": Sampler("DPMSolverMultistepScheduler", SDE),
    "dpm++_2m_sde_karras": Sampler("DPMSolverMultistepScheduler", {**SDE, **KARRAS}),
    "dpm++_2m_sde_exponential": Sampler("DPMSolverMultistepScheduler", {**SDE, **EXPONENTIAL}),
    "dpm++_2m_sde_heun": Sampler("DPMSolverMultistepScheduler", {**SDE, "solver_type": "heun"}),
    "dpm++_2m_sde_heun_karras": Sampler("DPMSolverMultistepScheduler", {**SDE, "solver_type": "heun", **KARRAS}),
    "dpm++_2m_sde_heun_exponential": Sampler(
        "DPMSolverMultistepScheduler", {**SDE, "solver_type": "heun", **EXPONENTIAL}
    ),
    "dpm++_3m_sde": Sampler("DPMSolverMultistepScheduler", {**SDE, "solver_order": 3}),
    "dpm++_3m_sde_karras": Sampler("DPMSolverMultistepScheduler", {**SDE, "solver_order": 3, **KARRAS}),
    "dpm++_3m_sde_exponential": Sampler("DPMSolverMultistepScheduler", {**SDE, "solver_order": 3, **EXPONENTIAL}),
    "dpm++_sde": Sampler("DPMSolverSinglestepScheduler"),
    "dpm++_sde_karras": Sampler("DPMSolverSinglestepScheduler", KARRAS),
    "unipc": Sampler("UniPCMultistepScheduler", {}, ("unipc multistep",)),
    "lcm": Sampler("LCMScheduler"),
}
# Deforum's samplers with no diffusers scheduler: the nearest one here, and why it is the nearest.
SUBSTITUTES: dict[str, tuple[str, str]] = {
    "dpm++ 2s a": ("dpm++_sde", "the same second-order single-step DPM-Solver++, without the ancestral noise"),
    "dpm++ 2s a karras": (
        "dpm++_sde_karras",
        "the same second-order single-step DPM-Solver++, without the ancestral noise",
    ),
    "dpm adaptive": ("dpm_fast", "DPM-Solver with a fixed step schedule instead of an adaptive one"),
    "restart": ("heun", "the Heun steps Restart is built on, without its restarts"),
}


def _normalise(name: str) -> str:
    return " ".join(name.strip().lower().replace("-", " ").replace("dpmpp", "dpm++").split())


WARNED: set[str] = set()  # substituted samplers already warned about
_LOOKUP = {_normalise(key): key for key in SAMPLERS}
_LOOKUP.update({_normalise(alias): key for key, s in SAMPLERS.items() for alias in s.aliases})


def canonical_sampler(name: str) -> str:
    """Map any accepted spelling to our canonical sampler name, or fail with the list.

    A Deforum sampler diffusers does not have maps to its nearest one, with a warning (once per name).
    """
    normal = _normalise(name)
    key = _LOOKUP.get(normal) or _LOOKUP.get(normal.replace(" ", "_"))
    if key is not None:
        return key
    spoken = normal.replace("_", " ")
    if spoken not in SUBSTITUTES:
        raise SdplayError(f"unknown scheduler {name!r}; choose one of {', '.join(SAMPLERS)}")
    if spoken not in WARNED:  # once per sampler and process, whatever the spelling
        WARNED.add(spoken)
        log.warning("sampler %r is not in diffusers; using %s instead (%s)", name.strip(), *SUBSTITUTES[spoken])
    return SUBSTITUTES[spoken][0]


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
