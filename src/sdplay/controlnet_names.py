"""Deforum's ControlNet unit names -> sdplay's preprocessors and models, without importing torch
(settings are checked, and a server checks requests, before anything loads).

A Deforum file names a unit's preprocessor the way the web UI's ControlNet extension does
(`canny`, `depth_midas`, `depth_zoe`, ...) and its model by the extension's file name and hash
(`control_v11p_sd15_canny [d14c016b]`). The lllyasviel models have diffusers copies on the hub
under the same names: `control_v11*` as `lllyasviel/<name>`, the 1.0 `control_sd15_<type>` as
`lllyasviel/sd-controlnet-<type>`.
"""

from __future__ import annotations

import re
from pathlib import Path

CONTROLNET_UNITS = range(1, 6)  # Deforum's cn_1_* ... cn_5_*
DEPTH_MODULES = ("depth", "depth_midas", "depth_zoe", "depth_leres", "depth_leres++", "depth_anything")
HASH = re.compile(r"\s*\[[0-9a-fA-F]+\]$")  # the web UI's " [d14c016b]" after a model name
NO_MODEL = ("", "none")


def preprocessor_of(module: str) -> str:
    """A web-UI preprocessor name -> canny, depth or none; ValueError names what is available."""
    name = module.strip().lower()
    if name in ("none", "canny"):
        return name
    if name in DEPTH_MODULES or name.startswith("depth_anything"):
        return "depth"
    raise ValueError(
        f"preprocessor {module!r} is not available in sdplay; use canny, depth ({', '.join(DEPTH_MODULES[1:])}, "
        "depth_anything_v2) or none (the video already holds control maps)"
    )


def controlnet_model_spec(name: str) -> str:
    """A unit's model as sdplay loads it: a path or hub id as given, a web-UI model name as its hub copy."""
    name = HASH.sub("", name.strip())
    path = Path(name).expanduser()
    if "/" in name or "\\" in name or path.suffix or path.exists():
        return name
    stem = name.removesuffix("_fp16")
    if stem.startswith("control_v11"):
        return f"lllyasviel/{stem}"
    if stem.startswith("control_sd15_"):
        return f"lllyasviel/sd-controlnet-{stem.removeprefix('control_sd15_')}"
    raise ValueError(
        f"{name!r} is a web-UI model name with no known diffusers copy; give a diffusers folder, "
        "a .safetensors file or a hub id"
    )


def check_unit(unit: int, module: str, model: str) -> None:
    """A unit that is turned on names a preprocessor sdplay has and a model it can find."""
    try:
        preprocessor_of(module)
    except ValueError as exc:
        raise ValueError(f"cn_{unit}_module: {exc}") from None
    if HASH.sub("", model.strip()).lower() in NO_MODEL:
        raise ValueError(f"cn_{unit}_model: ControlNet {unit} is enabled but names no model")
    try:
        controlnet_model_spec(model)
    except ValueError as exc:
        raise ValueError(f"cn_{unit}_model: {exc}") from None
