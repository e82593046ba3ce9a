"""Deforum features sdplay does not do, found in a settings file: one short warning naming those the
file turns on, so a run that will not look like Deforum's says why; the full list of unused keys
only at debug level (`--debug`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

log = logging.getLogger("sdplay")

OFF = (None, False, 0, "", "none", "false", "0", "ignore")
# feature -> the keys that turn it on (any value but an "off" one turns it on)
FEATURES: dict[str, tuple[str, ...]] = {
    "ControlNet masks": tuple(f"cn_{i}_mask_vid_path" for i in range(1, 6)),
    "hybrid video": ("hybrid_composite", "hybrid_motion"),
    "masks": ("use_mask", "use_mask_video", "use_noise_mask"),
    "Parseq": ("parseq_manifest",),
    "guided images": ("use_looper",),
    "sampler, checkpoint, clip-skip, subseed and eta scheduling": (
        "enable_sampler_scheduling",
        "enable_checkpoint_scheduling",
        "enable_clipskip_scheduling",
        "enable_subseed_scheduling",
        "enable_ddim_eta_scheduling",
        "enable_ancestral_eta_scheduling",
    ),
    "upscaling": ("r_upscale_video",),
    "a soundtrack": ("add_soundtrack",),
    "grayscale": ("color_force_grayscale",),
    "tiling": ("tiling",),
    "face restoration": ("restore_faces",),
    "blank-frame rerolls": ("reroll_blank_frames",),
}


def turned_on(value: Any) -> bool:
    """Whether a setting's value turns its feature on (Deforum writes off as false, 0, "None", "ignore", ...)."""
    if isinstance(value, str):
        return value.strip().lower() not in OFF
    return value not in OFF


def features_in_use(data: Mapping[str, Any]) -> dict[str, list[str]]:
    """{feature: [the keys that turn it on]} for the features of `data` that sdplay does not do."""
    found = {}
    for feature, keys in FEATURES.items():
        on = [key for key in keys if key in data and turned_on(data[key])]
        if on:
            found[feature] = on
    return found


def report_ignored(source: str, data: Mapping[str, Any], ignored: list[str]) -> None:
    """One warning line for the features turned on; every ignored key at debug level."""
    if ignored:
        log.debug("%s: %d key(s) have no meaning here and were ignored: %s", source, len(ignored), ", ".join(ignored))
    found = features_in_use({key: data[key] for key in ignored})
    if not found:
        return
    named = [f"{feature} ({', '.join(keys)})" for feature, keys in found.items()]
    listed = named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]
    them = "it" if len(named) == 1 else "them"
    log.warning("%s: this file turns on %s; sdplay does not do %s, so the result will differ", source, listed, them)
