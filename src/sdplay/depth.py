"""Per-pixel depth from a transformers depth-estimation model (Depth Anything, DPT...): for animate's
3D warp and for ControlNet's depth preprocessor.

The model is loaded on first use only (a 2D run never loads it), on the frames' device, with a
CPU fallback when it does not fit. Frames go in as device tensors: the model's own image
processor settings (size, multiple, mean, std) are applied with torch, so no PIL round trip.
The prediction (larger = nearer) is normalised to [0, 1] and histogram-equalised to n; the
depth handed to the warp is 2 - n: near = 1, far = 2. The spec `none` means flat depth (all 1).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import torch
import torch.nn.functional as F

from .errors import SdplayError, is_out_of_memory
from .specs import is_missing_path

log = logging.getLogger("sdplay")

ADVICE = "Use --depth-model PATH (a local folder), --depth-model none (flat depth) or --set use_depth_warping=false"


def nearer_is_larger(config: Any) -> bool:
    """Whether a depth model predicts disparity (DPT/MiDaS, Depth Anything relative: larger = nearer)
    rather than metric depth (ZoeDepth, Depth Anything metric: larger = farther)."""
    return config.model_type != "zoedepth" and getattr(config, "depth_estimation_type", "relative") != "metric"


def check_depth_spec(spec: str) -> None:
    """A depth model given as a path that is not there is an error at the start of a run, not
    when its first 3D frame needs depth."""
    if is_missing_path(spec):
        raise SdplayError(f"could not load depth model {spec!r}: folder not found. {ADVICE}")


class DepthEstimator:
    """Depth maps for (1, 3, H, W) frames in [0, 1]; `spec` is a hub id, a local folder or `none`."""

    def __init__(
        self,
        spec: str,
        device: torch.device,
        local_only: bool = False,
        dtype: torch.dtype = torch.float32,
        compile: bool = False,
    ) -> None:
        """`dtype` comes from `devices.depth_dtype`: half precision on a GPU halves the depth pass of every
        3D frame, bf16 on a CPU with native bf16 takes a quarter off it.
        `compile` (with --compile) compiles the depth model too: in 3D it runs once per diffused frame."""
        check_depth_spec(spec)
        self.spec, self.device, self.local_only, self.dtype = spec, device, local_only, dtype
        self.compile = compile
        self._loaded: tuple[Any, Any] | None = None

    @property
    def flat(self) -> bool:
        return self.spec.strip().lower() == "none"

    def _load(self) -> tuple[Any, Any]:
        """(model, image processor), loaded on first use. Not through transformers' `pipeline()`:
        from 5.x on it refuses `local_files_only` among the model's arguments (a traceback with
        --local-only), and only these two are used."""
        if self._loaded is None:
            from transformers import AutoImageProcessor, AutoModelForDepthEstimation

            hub = {"local_files_only": self.local_only}
            try:
                processor = AutoImageProcessor.from_pretrained(self.spec, **hub)
                model = AutoModelForDepthEstimation.from_pretrained(self.spec, **hub).eval()
            except (OSError, ValueError, KeyError, RuntimeError) as exc:
                reason = " ".join(str(exc).split()).split(". ")[0]
                raise SdplayError(
                    f"could not load depth model {self.spec!r} (no network or a wrong id?): {reason}. {ADVICE}"
                ) from exc
            try:
                model.to(self.device, self.dtype)
            except RuntimeError as exc:
                if not is_out_of_memory(exc):
                    raise
                log.warning("the depth model does not fit on %s; it runs on the CPU instead", self.device)
                model.to("cpu", torch.float32)
            self._loaded = (torch.compile(model) if self.compile else model, processor)
        return self._loaded

    def normalised(self, image: torch.Tensor) -> torch.Tensor:
        """n in [0, 1] (1 = nearest), histogram-equalised, as (1, 1, H, W) on the frame's device."""
        if self.flat:
            return torch.ones(1, 1, *image.shape[-2:], device=image.device)  # all at depth 1
        return equalise(self.nearness(image))

    def control_map(self, image: torch.Tensor) -> torch.Tensor:
        """A ControlNet depth map: nearness min-max normalised to [0, 1] (white = near), not equalised,
        as depth ControlNets were trained on MiDaS maps; flat depth is all white."""
        if self.flat:
            return torch.ones(1, 1, *image.shape[-2:], device=image.device)
        nearness = self.nearness(image)
        low, high = nearness.min(), nearness.max()
        if not math.isfinite(float(high - low)) or float(high - low) <= 1e-8:
            return torch.zeros_like(nearness)
        return (nearness - low) / (high - low)

    def nearness(self, image: torch.Tensor) -> torch.Tensor:
        """The model's prediction at the frame's size, larger = nearer, as (1, 1, H, W) on the frame's device."""
        height, width = image.shape[-2:]
        model, processor = self._load()
        model_device = next(model.parameters()).device
        pixels = _prepare(image.to(model_device, torch.float32), processor)
        with torch.inference_mode():
            predicted = model(pixel_values=pixels.to(model.dtype)).predicted_depth
        predicted = F.interpolate(predicted.float()[:, None], (height, width), mode="bilinear", align_corners=False)
        if not nearer_is_larger(model.config):
            predicted = -predicted
        return predicted.to(image.device)

    def depth(self, image: torch.Tensor) -> torch.Tensor:
        """Depth for the 3D warp: 2 - n (near = 1, far = 2)."""
        return 2.0 - self.normalised(image)


def _prepare(image: torch.Tensor, processor: Any) -> torch.Tensor:
    """The processor's resize and normalisation, done on the tensor (DPT's keep-aspect rule)."""
    height, width = image.shape[-2:]
    size = processor.size
    scale_h, scale_w = size["height"] / height, size["width"] / width
    if getattr(processor, "keep_aspect_ratio", False):
        scale_h = scale_w = scale_w if abs(1 - scale_w) < abs(1 - scale_h) else scale_h
    multiple = getattr(processor, "ensure_multiple_of", 1) or 1
    new_h = max(multiple, int(round(height * scale_h / multiple)) * multiple)
    new_w = max(multiple, int(round(width * scale_w / multiple)) * multiple)
    resized = F.interpolate(image, (new_h, new_w), mode="bicubic", align_corners=False).clamp(0, 1)
    mean = torch.tensor(processor.image_mean, device=image.device).view(1, -1, 1, 1)
    std = torch.tensor(processor.image_std, device=image.device).view(1, -1, 1, 1)
    return (resized - mean) / std


def equalise(prediction: torch.Tensor) -> torch.Tensor:
    """Min-max normalise, then equalise the histogram (by rank; equal values share the lowest rank,
    rescaled so the nearest pixels get exactly 1) so depth steps spread evenly over [0, 1]."""
    low, high = prediction.min(), prediction.max()
    if not math.isfinite(float(high - low)) or float(high - low) <= 1e-8:
        return torch.zeros_like(prediction)
    flat = ((prediction - low) / (high - low)).flatten()
    ordered = flat.sort().values
    rank = torch.searchsorted(ordered, flat, side="left").float()
    return (rank / rank.max()).reshape(prediction.shape)
