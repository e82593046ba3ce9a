"""ControlNet for the image modes: `--control TYPE:IMAGE[:WEIGHT]` (repeatable) with `--control-model`.

TYPE is the preprocessor that turns the picture into a control map: `canny` (edges, OpenCV), `depth`
(a depth map, white = near, from the depth model animate uses: `depth_model`), or `none` (the picture
already is a control map: edges, a depth map, a pose drawing). Several
controls run at once through diffusers' MultiControlNet; each may have its own model and weight,
and all act between the `control_start` and `control_end` fractions of the denoising steps.
A control image of another size is resized to the picture's size, with a warning.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from .errors import SdplayError, import_extra
from .inputs import load_image

if TYPE_CHECKING:
    from .depth import DepthEstimator

log = logging.getLogger("sdplay")

PREPROCESSORS = ("canny", "depth", "none")
CONTROL = re.compile(r"^(?P<kind>[a-z_]+):(?P<image>.+?)(?::(?P<weight>[+-]?(?:\d+\.?\d*|\.\d+)))?$")
CANNY_THRESHOLDS = (100, 200)  # the thresholds the SD 1.5 canny ControlNet was trained with
EXTRA_HINT = "pip install 'sdplay[control]'"


@dataclass(frozen=True)
class Control:
    kind: str
    image: str
    weight: float = 1.0


def parse_control(text: str) -> Control:
    """`canny:edges.png:0.8` -> Control("canny", "edges.png", 0.8); the weight defaults to 1."""
    match = CONTROL.match(text.strip())
    if not match:
        raise ValueError(f"control: {text!r} is not TYPE:IMAGE[:WEIGHT], e.g. canny:photo.png:0.8")
    kind = match.group("kind")
    if kind not in PREPROCESSORS:
        raise ValueError(f"control: unknown preprocessor {kind!r}; choose {', '.join(PREPROCESSORS)}")
    weight = float(match.group("weight")) if match.group("weight") else 1.0
    if not 0 <= weight <= 2:
        raise ValueError(f"control: the weight of {text!r} must be from 0 to 2")
    return Control(kind, match.group("image"), weight)


def control_map(control: Control, size: tuple[int, int], depth: DepthEstimator | None = None) -> Image.Image:
    """The control image read, sized like the picture and preprocessed (`depth`: the depth preprocessor's model)."""
    image = load_image(control.image, "control image")
    if image.size != size:
        log.warning("control image %s resized from %dx%d to %dx%d", control.image, *image.size, *size)
        image = image.resize(size, Image.Resampling.LANCZOS)
    return preprocess(control.kind, image, depth)


def preprocess(
    kind: str, image: Image.Image, depth: DepthEstimator | None = None, thresholds: tuple[int, int] = CANNY_THRESHOLDS
) -> Image.Image:
    """A picture -> the control map of preprocessor `kind` (canny edges, a depth map, or itself for none)."""
    if kind == "canny":
        cv2 = _import_cv2()
        edges = cv2.Canny(np.asarray(image.convert("L")), *thresholds)
        return Image.fromarray(np.stack([edges] * 3, axis=-1))
    if kind == "depth":
        if depth is None:
            raise ValueError("the depth preprocessor needs a depth model")
        import torch

        pixels = torch.from_numpy(np.asarray(image.convert("RGB")).copy()).permute(2, 0, 1)[None].float() / 255
        nearness = depth.control_map(pixels.to(depth.device))
        grey = (nearness[0, 0].clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
        return Image.fromarray(np.stack([grey] * 3, axis=-1))
    return image


def _import_cv2() -> Any:
    return import_extra("cv2", f"the canny preprocessor needs OpenCV: {EXTRA_HINT}")


def load_controlnet(spec: str, dtype: Any, token: str | None, local_only: bool) -> Any:
    """One ControlNet from a diffusers folder, a hub id[@revision] or a single .safetensors file."""
    from diffusers import ControlNetModel

    from .quiet import mute_diffusers_bars

    mute_diffusers_bars()
    path = Path(spec).expanduser()
    try:
        if path.is_file():
            return ControlNetModel.from_single_file(str(path), torch_dtype=dtype)
        if path.is_dir():
            return ControlNetModel.from_pretrained(str(path), torch_dtype=dtype)
        if spec.startswith((".", "/", "~")) or path.suffix:
            raise SdplayError(f"control model not found: {spec}")
        repo, _, revision = spec.partition("@")
        return ControlNetModel.from_pretrained(
            repo, torch_dtype=dtype, revision=revision or None, token=token, local_files_only=local_only
        )
    except SdplayError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        reason = " ".join(str(exc).split()).split(". ")[0]
        raise SdplayError(f"could not load control model {spec!r}: {reason}") from exc


def load_controlnets(model: Any, specs: tuple[str, ...], token: str | None, local_only: bool) -> Any:
    """The ControlNet (or MultiControlNet of several) of `specs`, on the model's device and in its dtype."""
    from diffusers import MultiControlNetModel

    nets = [load_controlnet(spec, model.dtype, token, local_only).to(model.device) for spec in specs]
    return nets[0] if len(nets) == 1 else MultiControlNetModel(nets)


def controlled(model: Any, mode: str, nets: Any) -> Any:
    """The mode's pipeline with the ControlNet(s) attached, sharing every other module with the model."""
    from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting, AutoPipelineForText2Image

    auto = {"txt2img": AutoPipelineForText2Image, "img2img": AutoPipelineForImage2Image}.get(
        mode, AutoPipelineForInpainting
    )
    pipe = auto.from_pipe(model.base, controlnet=nets)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def control_kwargs(
    settings: Any, size: tuple[int, int], txt2img: bool, depth: DepthEstimator | None = None
) -> dict[str, Any]:
    """The pipeline's ControlNet arguments for the settings' controls (one image and weight each, the same
    for every picture of a call)."""
    controls = [parse_control(text) for text in settings.control]
    images = [control_map(control, size, depth) for control in controls]
    weights = [control.weight for control in controls]
    single = len(controls) == 1
    return {
        "image" if txt2img else "control_image": images[0] if single else images,
        "controlnet_conditioning_scale": weights[0] if single else weights,
        "control_guidance_start": settings.control_start,
        "control_guidance_end": settings.control_end,
    }


def controls_for(settings: Any, model: Any, mode: str, size: tuple[int, int], job: Any) -> tuple[Any, dict[str, Any]]:
    """(the mode's pipeline with the settings' ControlNets, its ControlNet arguments), made before the run
    folder so that a wrong file or model fails first."""
    from .depth import DepthEstimator

    depth = None
    if settings.depth_model and "depth" in settings.control_kinds():
        depth = DepthEstimator(settings.depth_model, model.device, job.local_only, model.dtype)
    control = control_kwargs(settings, size, mode == "txt2img", depth)
    nets = load_controlnets(model, settings.control_models(), job.token, job.local_only)
    return controlled(model, mode, nets), control
