"""Model specs (see specs.py) -> loaded pipelines, loaded once per process and shared between modes.

The weights are loaded once; img2img and inpaint pipelines are derived with `from_pipe`, which
shares the modules instead of loading them again.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Callable
from typing import Any

import torch

from .backends import choose_backend, run_on_backend
from .devices import check_dtype_name, cpu_auto_dtype, dtype_name, resolve_device, resolve_dtype, use_all_cores
from .errors import SdplayError
from .quiet import mute_diffusers_bars
from .runtime import LoadOptions, adapt_pipeline, is_sdxl, pin_execution_device
from .specs import ModelSource, resolve_spec

log = logging.getLogger("sdplay")

# The diffusers pipeline class of each mode, per model family; importing only the one a run needs
# spares the second or more that diffusers' auto-pipeline module takes to import every family it knows.
PIPELINE_CLASSES: dict[str, dict[str, str]] = {
    "sd": {
        "txt2img": "StableDiffusionPipeline",
        "img2img": "StableDiffusionImg2ImgPipeline",
        "inpaint": "StableDiffusionInpaintPipeline",
    },
    "sdxl": {
        "txt2img": "StableDiffusionXLPipeline",
        "img2img": "StableDiffusionXLImg2ImgPipeline",
        "inpaint": "StableDiffusionXLInpaintPipeline",
    },
}


class Model:
    """One set of loaded weights and the pipelines of every mode derived from it."""

    def __init__(
        self, source: ModelSource, base: Any, device: torch.device, dtype: torch.dtype, backend: str = "pytorch"
    ) -> None:
        self.source = source
        self.device = device
        self.dtype = dtype
        self.backend = backend
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
            import diffusers

            cls = getattr(diffusers, PIPELINE_CLASSES["sdxl" if is_sdxl(self.base) else "sd"][mode])
            # every component carries over as it is: from_pipe alone drops one whose class differs from
            # the signature's (a tiny VAE for AutoencoderKL), and casts the shared modules to fp32
            # unless told the dtype (a bf16 or fp16 model's UNet then met latents of another dtype)
            accepted = inspect.signature(cls.__init__).parameters
            components = {k: v for k, v in self.base.components.items() if k in accepted}
            pipe = cls.from_pipe(self.base, dtype=self.dtype, **components)
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


_LOADED: dict[tuple, Model] = {}  # least recently used first
KEEP_MODELS = 1  # sets of weights kept loaded at once; a server may keep more (`sdplay serve --keep-models N`)


def load_model(
    spec: str | None = None,
    options: LoadOptions | None = None,
    on_convert: Callable[[str, int, int], None] | None = None,
    **kwargs: Any,
) -> Model:
    """Load (or reuse) the weights of a model spec; keyword arguments fill LoadOptions.

    `on_convert(component, done, total)` hears of a first conversion for OpenVINO as it goes."""
    options = options or LoadOptions(**kwargs)
    source = resolve_spec(spec)
    device = resolve_device(options.device)
    backend = choose_backend(options.backend, device, options.dtype, options.compile)
    # OpenVINO takes float32 weights and computes in the precision --dtype asks of it
    dtype = torch.float32 if backend == "openvino" else resolve_dtype(options.dtype, device)
    precision = options.dtype if backend == "openvino" else ""
    by_size = backend == "pytorch" and device.type == "cpu" and check_dtype_name(options.dtype) == "auto"
    cleared = {"model": None, "token": None, "local_only": False, "device": "", "dtype": precision, "backend": backend}
    key = (source, str(device), "by size" if by_size else dtype, options.model_copy(update=cleared))
    if key not in _LOADED:
        while len(_LOADED) >= max(1, KEEP_MODELS):
            del _LOADED[next(iter(_LOADED))]  # free the least recently used weights before loading more
        if device.type == "cpu":
            use_all_cores()
        base = _load_pipeline(source, dtype, options)
        if by_size:  # the UNet's size is known once loaded
            dtype = cpu_auto_dtype(sum(p.numel() for p in base.unet.parameters()))
            if dtype != torch.float32:
                base.to(dtype=dtype)
        adapt_pipeline(base, device, dtype, options)
        backend = run_on_backend(base, backend, options.backend, options.dtype, source.name, on_convert)
        _LOADED[key] = Model(source, base, device, dtype, backend)
        on = f"OpenVINO, {'its pick of precision' if precision == 'auto' else precision}"
        log.info("loaded %s on %s (%s)", source.name, device, on if backend == "openvino" else dtype_name(dtype))
    _LOADED[key] = _LOADED.pop(key)  # now the most recently used
    return _LOADED[key]


def loaded_models() -> list[Model]:
    return list(_LOADED.values())


def unload_all() -> None:
    """Forget the loaded weights (benchmarks use it to time a cold load)."""
    _LOADED.clear()


def _load_pipeline(source: ModelSource, dtype: torch.dtype, options: LoadOptions) -> Any:
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
