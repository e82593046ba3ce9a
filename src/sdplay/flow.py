"""Dense optical flow with OpenCV, shared by frame interpolation and animate's optical-flow cadence and redo.

Methods carry Deforum's names and settings (DIS presets, its "fine" DIS, its Farneback), so a Deforum
file's `optical_flow_cadence` means the same flow here; RAFT, which needs torchvision and downloaded
weights, is measured with DIS Fine instead. A flow is HxWx2 (x, y) in pixels: `a[p]` is found at
`b[p + flow[p]]`. OpenCV is imported only when a flow is measured.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from .errors import SdplayError, import_extra

log = logging.getLogger("sdplay")

METHODS = ("DIS Medium", "DIS Fine", "DIS Fast", "DIS UltraFast", "Farneback")
SUBSTITUTES = {"RAFT": ("DIS Fine", "RAFT needs torchvision and downloaded weights")}
OPENCV_HINT = "pip install 'sdplay[interpolate]'"
WARNED: set[str] = set()


def flow_method(name: str, key: str = "flow method") -> str:
    """Any case of a method's name -> its name here; RAFT -> DIS Fine with one warning per process (naming `key`)."""
    spelled = {method.lower(): method for method in (*METHODS, *SUBSTITUTES)}
    method = spelled.get(" ".join(name.strip().lower().split()))
    if method is None:
        raise ValueError(f"unknown optical flow {name!r}; choose None, {', '.join(METHODS)} or RAFT")
    if method in SUBSTITUTES:
        substitute, why = SUBSTITUTES[method]
        if method not in WARNED:
            WARNED.add(method)
            log.warning("%s: optical flow %s is done with %s instead (%s)", key, method, substitute, why)
        return substitute
    return method


def import_cv2(purpose: str) -> Any:
    return import_extra("cv2", f"{purpose} needs OpenCV: {OPENCV_HINT}")


def _gray(image: np.ndarray, cv2: Any) -> np.ndarray:
    """8-bit grey of an RGB picture, uint8 or float in [0, 1]: what OpenCV's flows measure."""
    if image.dtype != np.uint8:
        image = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def measure(a: np.ndarray, b: np.ndarray, method: str = "DIS Medium") -> np.ndarray:
    """The flow from RGB picture `a` to `b` (HxWx2 float32, pixels)."""
    cv2 = import_cv2(f"optical flow ({method})")
    gray_a, gray_b = _gray(a, cv2), _gray(b, cv2)
    if method == "Farneback":  # Deforum's "normal" Farneback
        return cv2.calcOpticalFlowFarneback(gray_a, gray_b, None, 0.5, 5, 21, 5, 7, 1.2, 0)
    presets = {
        "DIS Medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
        "DIS Fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
        "DIS UltraFast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
        "DIS Fine": cv2.DISOPTICAL_FLOW_PRESET_FAST,  # Deforum's base for its own finer settings below
    }
    if method not in presets:
        raise SdplayError(f"unknown optical flow {method!r}; choose {', '.join(METHODS)}")
    dis = cv2.DISOpticalFlow_create(presets[method])  # one per call: not thread-safe
    if method == "DIS Fine":  # Deforum's: the finest scale, many more iterations, overlapping patches
        dis.setFinestScale(0)
        dis.setGradientDescentIterations(192)
        dis.setPatchSize(8)
        dis.setPatchStride(4)
    return dis.calc(gray_a, gray_b, None)


def push(image: np.ndarray, flow: np.ndarray, factor: float = 1.0) -> np.ndarray:
    """Move a picture's content along `factor` times a flow: each pixel p reads from p - factor * flow[p]."""
    cv2 = import_cv2("optical flow")
    height, width = image.shape[:2]
    grid = np.stack(np.meshgrid(np.arange(width), np.arange(height)), axis=-1).astype(np.float32)
    source = grid - np.float32(factor) * flow
    return cv2.remap(image, source[..., 0], source[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def between(
    a: np.ndarray, b: np.ndarray, times: list[float], method: str = "DIS Medium", factor: float = 1.0
) -> list[np.ndarray]:
    """Pictures at each time in [0, 1] between `a` (time 0) and `b` (time 1), flows measured once each way.

    At time t, `a` moves t of the way along its flow to `b` and `b` the rest of the way back along its
    flow to `a`, so both meet where the content stands at t; they are blended (1 - t, t). `factor`
    scales both flows (Deforum's cadence flow factor).
    """
    cv2 = import_cv2("optical flow")
    forward, backward = measure(a, b, method), measure(b, a, method)
    moved = [(push(a, forward, t * factor), push(b, backward, (1 - t) * factor)) for t in times]
    return [cv2.addWeighted(from_a, 1 - t, from_b, t, 0) for t, (from_a, from_b) in zip(times, moved, strict=True)]
