"""Depth models by Deforum's `depth_algorithm` names, without importing torch (settings are checked first)."""

from __future__ import annotations

import logging

from .errors import SdplayError

log = logging.getLogger("sdplay")

DEFAULT_DEPTH_MODEL = "depth-anything/Depth-Anything-V2-Small-hf"
# Deforum's depth_algorithm -> the transformers depth model it names. Its "+AdaBins (old)" blends
# (weighted by midas_weight) have no transformers AdaBins to blend with: the first model alone runs.
DEPTH_ALGORITHMS = {
    "midas-3-hybrid": "Intel/dpt-hybrid-midas",
    "midas+adabins (old)": "Intel/dpt-hybrid-midas",
    "midas-3.1-beitlarge": "Intel/dpt-beit-large-512",
    "zoe": "Intel/zoedepth-nyu-kitti",
    "zoe+adabins (old)": "Intel/zoedepth-nyu-kitti",
    "depth-anything-v2-small": DEFAULT_DEPTH_MODEL,
}
NO_TRANSFORMERS_MODEL = ("adabins", "leres")  # run as Depth Anything V2, with a warning


def depth_model_for(algorithm: str) -> str:
    """The depth model for Deforum's `depth_algorithm` (`Midas-3-Hybrid` -> Intel/dpt-hybrid-midas, ...)."""
    key = " ".join(algorithm.strip().lower().split())
    if key in DEPTH_ALGORITHMS:
        return DEPTH_ALGORITHMS[key]
    if key in NO_TRANSFORMERS_MODEL:
        log.warning("depth_algorithm %r has no transformers model; using %s instead", algorithm, DEFAULT_DEPTH_MODEL)
        return DEFAULT_DEPTH_MODEL
    known = ", ".join([*DEPTH_ALGORITHMS, *NO_TRANSFORMERS_MODEL])
    raise SdplayError(f"depth_algorithm must be one of {known}; got {algorithm!r}")
