"""Model specs -> loaded pipelines, loaded once per process and shared between modes.

A spec is an alias from ALIASES, a hub id (`org/name[@revision]`), a local diffusers folder or a
single `.safetensors`/`.ckpt` file. The weights are loaded once; img2img and inpaint pipelines are
derived with `from_pipe`, which shares the modules instead of loading them again.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .devices import dtype_name, resolve_device, resolve_dtype, use_all_cores
from .errors import SdplayError
from .quiet import mute_diffusers_bars
from .runtime import adapt_pipeline, pin_execution_device
from .settings import ModelSettings

log = logging.getLogger("sdplay")

MINI_DIR = Path(__file__).parent / "mini" / "model"
CHECKPOINT_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")


@dataclass(frozen=True)
class Alias:
    """A short name for a well-known model, with the defaults it is meant to be used with."""

    location: str
    about: str
    steps: int = 25
    guidance: float = 7.5
    scheduler: str | None = None


ALIASES: dict[str, Alias] = {
    "mini": Alias(str(MINI_DIR), "bundled 64x64 shapes model, offline, trained by sdplay.mini.train", 20, 5.0),
    "sd15": Alias("stable-diffusion-v1-5/stable-diffusion-v1-5", "Stable Diffusion 1.5, 512x512"),
    "sd14": Alias("CompVis/stable-diffusion-v1-4", "Stable Diffusion 1.4, 512x512"),
    "sd15-inpaint": Alias("stable-diffusion-v1-5/stable-diffusion-inpainting", "SD 1.5 inpainting (9-channel)"),
    "sd21": Alias("stabilityai/stable-diffusion-2-1", "Stable Diffusion 2.1, 768x768"),
    "sd21-base": Alias("stabilityai/stable-diffusion-2-1-base", "Stable Diffusion 2.1 base, 512x512"),
    "sd2-inpaint": Alias("stabilityai/stable-diffusion-2-inpainting", "SD 2 inpainting (9-channel)"),
    "sdxl": Alias("stabilityai/stable-diffusion-xl-base-1.0", "SDXL base 1.0, 1024x1024", 30, 7.0),
    "sd-turbo": Alias("stabilityai/sd-turbo", "SD-Turbo, 1-4 steps, no guidance", 1, 0.0, "euler_a"),
    "sdxl-turbo": Alias("stabilityai/sdxl-turbo", "SDXL-Turbo, 1-4 steps, no guidance", 1, 0.0, "euler_a"),
}

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(@[\w./-]+)?$")


@dataclass(frozen=True)
class ModelSource:
    """Where a model's weights come from, and the name recorded in image metadata."""

    kind: str  # "folder" | "file" | "hub"
    location: str
    name: str
    revision: str | None = None
    alias: Alias | None = None


def is_missing_path(spec: str) -> bool:
    """A spec written as a file or folder path (not a hub id) that does not exist here."""
    path = Path(spec).expanduser()
    looks_like_path = path.suffix.lower() in CHECKPOINT_SUFFIXES or spec.startswith((".", "/", "~"))
    return looks_like_path and not path.exists()


def default_model_spec() -> str:
    return os.environ.get("SDPLAY_MODEL") or "sd15"


def resolve_spec(spec: str | None) -> ModelSource:
    """Classify a model spec without touching the network."""
    spec = (spec or default_model_spec()).strip()
    alias = ALIASES.get(spec.lower())
    if alias is not None:
        if spec.lower() == "mini":
            if not (MINI_DIR / "model_index.json").exists():
                raise SdplayError(f"the bundled mini model is missing from this install ({MINI_DIR})")
            return ModelSource("folder", str(MINI_DIR), "mini", alias=alias)
        return ModelSource("hub", alias.location, spec.lower(), alias=alias)
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "model_index.json").exists():
            raise SdplayError(f"{spec} is a folder but not a diffusers model (no model_index.json in it)")
        return ModelSource("folder", str(path), path.name)
    if path.is_file():
        if path.suffix.lower() not in CHECKPOINT_SUFFIXES:
            raise SdplayError(f"{spec} is not a model checkpoint (expected one of {', '.join(CHECKPOINT_SUFFIXES)})")
        return ModelSource("file", str(path), path.name)
    if is_missing_path(spec):
        raise SdplayError(f"model file or folder not found: {spec}")
    if HUB_ID.match(spec):
        repo, _, revision = spec.partition("@")
        return ModelSource("hub", repo, repo, revision=revision or None)
    raise SdplayError(
        f"unknown model {spec!r}: use an alias ({', '.join(ALIASES)}), a hub id like org/name, "
        "a local diffusers folder or a .safetensors/.ckpt file"
    )


class LoadOptions(ModelSettings):
    """How to load and run the weights (ModelSettings), plus the credentials to reach the hub,
    which are never recorded in a run's settings.json."""

    token: str | None = None
    local_only: bool = False


class Model:
    """One set of loaded weights and the pipelines of every mode derived from it."""

    def __init__(self, source: ModelSource, base: Any, device: torch.device, dtype: torch.dtype) -> None:
        self.source = source
        self.device = device
        self.dtype = dtype
        self.base = base
        self.original_scheduler = base.scheduler
        self._pipelines: dict[str, Any] = {}
        self._dropped_words: set[frozenset[str]] = set()  # warned about once per model
        pin_execution_device(base, device)
        if self.is_inpainting_model:
            self._pipelines["inpaint"] = base
        else:
            self._pipelines["txt2img"] = base

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def is_inpainting_model(self) -> bool:
        return self.base.unet.config.in_channels == 9

    @property
    def vae_scale_factor(self) -> int:
        return int(self.base.vae_scale_factor)

    @property
    def native_size(self) -> int:
        size = self.base.unet.config.sample_size
        size = size[0] if isinstance(size, (list, tuple)) else size
        return int(size) * self.vae_scale_factor

    @property
    def default_steps(self) -> int:
        return self.source.alias.steps if self.source.alias else self._family_defaults()[0]

    @property
    def default_guidance(self) -> float:
        return self.source.alias.guidance if self.source.alias else self._family_defaults()[1]

    def _family_defaults(self) -> tuple[int, float]:
        """Few-step models need few steps and little or no guidance; others the usual 25 and 7.5."""
        if type(self.original_scheduler).__name__ == "LCMScheduler":
            return 4, 1.0
        if "turbo" in self.source.location.lower():
            return 1, 0.0
        return 25, 7.5

    @property
    def default_scheduler(self) -> str | None:
        """None keeps the scheduler the model was published with."""
        return self.source.alias.scheduler if self.source.alias else None

    def pipeline(self, mode: str) -> Any:
        """The pipeline for a mode, derived from the loaded weights on first use."""
        if mode not in self._pipelines:
            if self.is_inpainting_model:
                raise SdplayError(
                    f"{self.name} is an inpainting model (9-channel UNet) and can only inpaint; "
                    f"use a regular model for {mode}"
                )
            from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting, AutoPipelineForText2Image

            auto = {
                "txt2img": AutoPipelineForText2Image,
                "img2img": AutoPipelineForImage2Image,
                "inpaint": AutoPipelineForInpainting,
            }[mode]
            pipe = auto.from_pipe(self.base)
            pipe.set_progress_bar_config(disable=True)
            pin_execution_device(pipe, self.device)
            self._pipelines[mode] = pipe
        return self._pipelines[mode]

    def known_words(self) -> set[str] | None:
        """The whole-word vocabulary of a word-level tokenizer (the mini model's), else None.

        A byte-level BPE vocabulary holds all 256 byte symbols, so it can spell any word.
        """
        vocab = self.base.tokenizer.get_vocab()
        if sum(len(token) == 1 for token in vocab) >= 256:
            return None
        return {token[: -len("</w>")] for token in vocab if token.endswith("</w>")}

    def clean_prompt(self, prompt: str) -> str:
        """Drop words a word-level tokenizer does not know, with one warning line (once per model and
        set of words: a walk or an animation encodes its prompts again and again)."""
        words = self.known_words()
        if words is None or not prompt:
            return prompt
        tokens = re.findall(r"[a-z0-9]+", prompt.lower())
        unknown = frozenset(t for t in tokens if t not in words)
        if unknown and unknown not in self._dropped_words:
            self._dropped_words.add(unknown)
            log.warning("%s does not know the words %s; they were dropped", self.name, ", ".join(sorted(unknown)))
        return " ".join(t for t in tokens if t in words)


_LOADED: dict[tuple, Model] = {}


def load_model(spec: str | None = None, options: LoadOptions | None = None, **kwargs: Any) -> Model:
    """Load (or reuse) the weights of a model spec; keyword arguments fill LoadOptions."""
    options = options or LoadOptions(**kwargs)
    source = resolve_spec(spec)
    device = resolve_device(options.device)
    dtype = resolve_dtype(options.dtype, device)
    shared = options.model_copy(update={"model": None, "token": None, "local_only": False, "device": "", "dtype": ""})
    key = (source, str(device), dtype, shared)
    if key not in _LOADED:
        _LOADED.clear()  # one set of weights per process: free the previous one first
        if device.type == "cpu":
            use_all_cores()
        base = _load_pipeline(source, dtype, options)
        adapt_pipeline(base, device, dtype, options)
        _LOADED[key] = Model(source, base, device, dtype)
        log.info("loaded %s on %s (%s)", source.name, device, dtype_name(dtype))
    return _LOADED[key]


def unload_all() -> None:
    """Forget the loaded weights (benchmarks use it to time a cold load)."""
    _LOADED.clear()


def _load_pipeline(source: ModelSource, dtype: torch.dtype, options: LoadOptions) -> Any:
    import diffusers.pipelines.auto_pipeline  # noqa: F401  imported with the weights: mode switches then cost no import

    mute_diffusers_bars()
    kwargs: dict[str, Any] = {"dtype": dtype}
    if not options.safety_checker:
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    try:
        if source.kind == "file":
            pipe = _load_single_file(source, options, kwargs)
        else:
            from diffusers import DiffusionPipeline

            if source.kind == "hub":
                kwargs.update(token=options.token, local_files_only=options.local_only, revision=source.revision)
            pipe = DiffusionPipeline.from_pretrained(source.location, **kwargs)
    except SdplayError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise SdplayError(_load_failure_message(source, options, exc)) from exc
    if not hasattr(pipe, "unet") or not hasattr(pipe, "vae"):
        raise SdplayError(f"{source.name} is a {type(pipe).__name__}, not a Stable Diffusion model")
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _load_single_file(source: ModelSource, options: LoadOptions, kwargs: dict[str, Any]) -> Any:
    """Load an original-format checkpoint; its layout (v1, v2, XL, inpainting) picks the class."""
    import diffusers
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type, load_single_file_checkpoint

    checkpoint = load_single_file_checkpoint(source.location, local_files_only=True)
    model_type = infer_diffusers_model_type(checkpoint)
    if model_type.startswith("xl"):
        cls_name = "StableDiffusionXLInpaintPipeline" if "inpaint" in model_type else "StableDiffusionXLPipeline"
    else:
        cls_name = "StableDiffusionInpaintPipeline" if "inpaint" in model_type else "StableDiffusionPipeline"
    cls = getattr(diffusers, cls_name)
    extra: dict[str, Any] = {"local_files_only": options.local_only, "token": options.token}
    if options.checkpoint_config:
        extra["config"] = options.checkpoint_config
    return cls.from_single_file(source.location, **kwargs, **extra)


def _load_failure_message(source: ModelSource, options: LoadOptions, exc: Exception) -> str:
    text = " ".join(str(exc).split())
    reason = text.split(". ")[0].rstrip(".") if text else type(exc).__name__
    if source.kind == "hub":
        where = "from the local cache" if options.local_only else "from the Hugging Face hub or its cache"
        return (
            f"could not load model {source.name!r} {where} (no network, a wrong id, or a gated model "
            f"needing --token?): {reason}. Use a local folder or file (--model PATH) or --model mini"
        )
    return f"could not load model {source.location}: {reason}"
