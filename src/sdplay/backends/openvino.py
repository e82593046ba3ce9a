"""OpenVINO on the CPU: a pipeline's UNet, VAE encoder and decoder and text encoders, converted once.

Each component is traced from its diffusers/transformers module (`openvino.convert_model` with
example inputs) into a model with open input shapes, saved in the cache folder under a key made
of its weights, its config and the library versions (a changed model or library converts again
and the stale entry is removed), and compiled for the exact shapes it meets (static shapes are
fastest; a new size or batch compiles again). Compiled blobs are not cached: for SD 1.5's UNet each
shape and precision took 3.3 GB of disk to save a compile of 6-16 s, and OpenVINO 2026.4 handed a blob
compiled in f32 to a later bf16 compile of the same model in the same process (NaN out).
The torch modules keep their configs and attributes, and only their forward passes run through
OpenVINO, so pipelines, schedulers, callbacks and batching work as on PyTorch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

import torch

from ..cache_dir import cache_dir
from ..errors import SdplayError
from . import core, import_openvino

log = logging.getLogger("sdplay")

CONVERTER_VERSION = 1  # bump when the traced wrappers below change: earlier conversions are then not reused
SHAPES_KEPT = 3  # compiled shapes kept per component: each compiled model holds its own copy of the weights
PRECISIONS = {"fp32": "f32", "bf16": "bf16"}  # --dtype -> OpenVINO's inference precision hint
LIBRARIES = ("openvino", "torch", "diffusers", "transformers")


def cache_root() -> Path:
    """Converted models live here."""
    return cache_dir() / "openvino"


class Compiled:
    """One converted component, compiled for each set of input shapes it is called with."""

    def __init__(self, model: Any, config: dict[str, Any]) -> None:
        self.model = model
        self.config = config
        self.types = [torch.from_numpy(_empty_of(p.get_element_type())).dtype for p in model.inputs]
        self.by_shape: OrderedDict[tuple, Any] = OrderedDict()

    def __call__(self, *inputs: torch.Tensor) -> list[torch.Tensor]:
        arrays = [x.detach().to("cpu", t).contiguous().numpy() for x, t in zip(inputs, self.types, strict=True)]
        shapes = tuple(a.shape for a in arrays)
        compiled = self.by_shape.pop(shapes, None) or self._compile(shapes)
        self.by_shape[shapes] = compiled
        while len(self.by_shape) > SHAPES_KEPT:
            self.by_shape.popitem(last=False)
        result = compiled(arrays, share_inputs=True)
        return [torch.from_numpy(result[output]) for output in compiled.outputs]

    def _compile(self, shapes: tuple) -> Any:
        model = self.model.clone()
        model.reshape({i: list(shape) for i, shape in enumerate(shapes)})
        return core().compile_model(model, "CPU", self.config)


def _empty_of(element_type: Any) -> Any:
    import numpy as np

    return np.empty(0, dtype=element_type.to_dtype())


class UNetCore(torch.nn.Module):
    """The UNet with plain tensors in and out: what is traced (SDXL's and LCM's extra inputs included)."""

    def __init__(self, unet: torch.nn.Module) -> None:
        super().__init__()
        self.unet = unet
        self.text_time = unet.config.addition_embed_type == "text_time"  # SDXL
        self.guidance_embedding = unet.config.time_cond_proj_dim is not None  # LCM-distilled

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, hidden: torch.Tensor, *extra: torch.Tensor) -> Any:
        extra_list = list(extra)
        timestep_cond = extra_list.pop(0) if self.guidance_embedding else None
        added = {"text_embeds": extra_list[0], "time_ids": extra_list[1]} if self.text_time else None
        return self.unet(sample, timestep, hidden, timestep_cond=timestep_cond, added_cond_kwargs=added)[0]

    def example(self) -> tuple[torch.Tensor, ...]:
        config = self.unet.config
        size = config.sample_size if isinstance(config.sample_size, int) else config.sample_size[0]
        size = min(int(size), 16)  # any size traces the same graph; a small one traces quickly
        inputs = [
            torch.randn(2, config.in_channels, size, size),
            torch.tensor([999.0, 999.0]),
            torch.randn(2, 77, config.cross_attention_dim),
        ]
        if self.guidance_embedding:
            inputs.append(torch.randn(2, config.time_cond_proj_dim))
        if self.text_time:
            inputs.append(
                torch.randn(2, config.projection_class_embeddings_input_dim - 6 * config.addition_time_embed_dim)
            )
            inputs.append(torch.randn(2, 6))
        return tuple(inputs)


def install_unet(unet: torch.nn.Module, run: Compiled, core_module: UNetCore) -> None:
    """The UNet's forward runs on OpenVINO and its PyTorch weights are freed (SD 1.5's: 3.4 GB)."""

    def forward(
        sample: torch.Tensor, timestep: Any, encoder_hidden_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> Any:
        timestep_cond = kwargs.pop("timestep_cond", None)
        added = kwargs.pop("added_cond_kwargs", None)
        return_dict = kwargs.pop("return_dict", True)
        unsupported(args, kwargs, "UNet")  # ControlNet residuals, attention masks, per-call LoRA scales
        batch = sample.shape[0]
        steps = torch.as_tensor(timestep, dtype=torch.float32).reshape(-1).expand(batch)
        inputs = [sample, steps, encoder_hidden_states]
        if core_module.guidance_embedding:
            inputs.append(timestep_cond)
        if core_module.text_time:
            inputs += [added["text_embeds"], added["time_ids"]]
        out = run(*inputs)[0].to(sample.dtype)
        if not return_dict:
            return (out,)
        from diffusers.models.unets.unet_2d_condition import UNet2DConditionOutput

        return UNet2DConditionOutput(sample=out)

    unet.forward = forward
    unet.openvino = run  # for benchmarks: the compiled models themselves
    free_weights(unet)


def unsupported(args: tuple, kwargs: dict[str, Any], component: str) -> None:
    """Inputs the traced graph does not take are a clear error, not a silently different picture."""
    given = [name for name, value in kwargs.items() if value is not None] + ([f"{len(args)} more"] if args else [])
    if given:
        raise SdplayError(f"the OpenVINO {component} does not take {', '.join(given)}; use --backend pytorch")


def free_weights(module: torch.nn.Module) -> None:
    """Release a converted module's PyTorch tensors: its config and dtype stay for whoever reads them."""
    module.to_empty(device="meta")


class TextCore(torch.nn.Module):
    """A text encoder returning its output fields then every hidden state, as plain tensors."""

    def __init__(self, encoder: torch.nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.length = min(77, encoder.config.max_position_embeddings)  # the tokenizers pad to 77 tokens
        with torch.no_grad():
            out = encoder(self.example()[0], output_hidden_states=True, return_dict=True)
        self.output_class = type(out)
        self.fields = [k for k in out if k != "hidden_states"]

    def forward(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.encoder(input_ids, output_hidden_states=True, return_dict=True)
        return (*(out[k] for k in self.fields), *out.hidden_states)

    def example(self) -> tuple[torch.Tensor, ...]:
        return (torch.zeros(1, self.length, dtype=torch.long),)


def install_text_encoder(encoder: torch.nn.Module, run: Compiled, core_module: TextCore) -> None:
    fields = core_module.fields

    def forward(input_ids: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        hidden = kwargs.pop("output_hidden_states", None)
        return_dict = kwargs.pop("return_dict", None)
        unsupported(args, kwargs, "text encoder")  # attention masks, position ids, attentions
        outputs = run(input_ids)
        result = core_module.output_class(
            **dict(zip(fields, outputs[: len(fields)], strict=True)),
            hidden_states=tuple(outputs[len(fields) :]) if hidden else None,
        )
        return result if return_dict is not False else result.to_tuple()

    encoder.forward = forward
    free_weights(encoder)


class OpenVINOModule(torch.nn.Module):
    """Stands in for a VAE encoder or decoder (called with one tensor), which it replaces."""

    def __init__(self, run: Compiled) -> None:
        super().__init__()
        self.run = run

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x)[0].to(x.dtype)


class VAEHalf(torch.nn.Module):
    """A VAE's encoder or decoder called with its one input: what is traced."""

    def __init__(self, half: torch.nn.Module, example: torch.Tensor) -> None:
        super().__init__()
        self.part = half
        self._example = example

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.part(x)

    def example(self) -> tuple[torch.Tensor, ...]:
        return (self._example,)


ConversionReport = Callable[[str, int, int], None]  # (component converting now, done, of how many)


def run_on_openvino(pipe: Any, dtype: str | None, model_name: str, report: ConversionReport | None = None) -> None:
    """Convert (or take from the cache) and compile every heavy component, then swap them in.

    `report` hears of each conversion as it starts and once more when all are done (nothing when
    everything is cached). Nothing is swapped until every component has converted, so a failure
    leaves a working PyTorch pipeline behind."""
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": torch.get_num_threads()}
    if (dtype or "auto").lower() in PRECISIONS:
        config["INFERENCE_PRECISION_HINT"] = PRECISIONS[dtype.lower()]
    # one folder per model name: a model converted again (new weights, a temporary copy elsewhere) replaces
    # its stale entries instead of piling up gigabytes; two models of one name take turns at a reconversion
    place = cache_root() / _slug(model_name)
    parts = [
        (*part, place / f"{part[0]}-{fingerprint(part[1], part[0], part[2])}") for part in heavy_parts(pipe, model_name)
    ]
    todo = [component for component, *_, folder in parts if not (folder / "model.xml").exists()]
    installs: list[Callable[[], None]] = []
    for component, module, _, install, folder in parts:
        if component in todo and report is not None:
            report(component, todo.index(component), len(todo))
        installs.append(_later(install, convert(module, component, model_name, folder, config)))
    if todo and report is not None:
        report("", len(todo), len(todo))
    for install in installs:
        install()


def heavy_parts(pipe: Any, model_name: str) -> Iterator[tuple[str, torch.nn.Module, Any, Callable[[Compiled], None]]]:
    """(component, the module traced for it, its config for the cache key, how to swap its compiled model in)."""
    with failing_as(model_name, "unet"):
        unet_core = UNetCore(pipe.unet)
    yield "unet", unet_core, pipe.unet.config, lambda run: install_unet(pipe.unet, run, unet_core)
    for name in ("text_encoder", "text_encoder_2"):
        encoder = getattr(pipe, name, None)
        if encoder is not None:
            with failing_as(model_name, name):
                text_core = TextCore(encoder)
            yield (name, text_core, encoder.config.to_dict(),
                   lambda run, e=encoder, c=text_core: install_text_encoder(e, run, c))  # fmt: skip
    vae = pipe.vae
    channels, latent = vae.config.latent_channels, 8
    scale = int(pipe.vae_scale_factor)
    vae_config = {"vae": type(vae).__name__, **vae.config}
    encoder_input = torch.randn(1, vae.config.in_channels, latent * scale, latent * scale)
    yield (
        "vae_encoder",
        VAEHalf(vae.encoder, encoder_input),
        vae_config,
        lambda run: setattr(vae, "encoder", OpenVINOModule(run)),
    )
    decoder_input = torch.randn(1, channels, latent, latent)
    yield (
        "vae_decoder",
        VAEHalf(vae.decoder, decoder_input),
        vae_config,
        lambda run: setattr(vae, "decoder", OpenVINOModule(run)),
    )


def _later(function: Callable[..., None], *args: Any) -> Callable[[], None]:
    return lambda: function(*args)


def convert(module: Any, component: str, model_name: str, folder: Path, config: dict[str, Any]) -> Compiled:
    """The component as OpenVINO will run it, converted now into `folder` or read from there."""
    ov = import_openvino()
    path = folder / "model.xml"
    if not path.exists():
        log.info("converting %s's %s for OpenVINO (once per model; SD 1.5's UNet takes minutes)", model_name, component)
        start = time.perf_counter()
        with failing_as(model_name, component), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shape checks traced as constants
            converted = ov.convert_model(module.eval(), example_input=module.example())
        _save(converted, folder)
        del converted  # the saved copy is read back memory-mapped: SD 1.5's UNet is 3.4 GB
        log.info("converted %s in %.0f s (cached in %s)", component, time.perf_counter() - start, folder)
    return Compiled(core().read_model(str(path)), config)


@contextmanager
def failing_as(model_name: str, component: str) -> Iterator[None]:
    """Tracing and conversion fail in many ways (an operation OpenVINO lacks, Python control flow
    on values, an odd input): each means this model cannot run on OpenVINO, said in one line."""
    try:
        yield
    except SdplayError:
        raise
    except Exception as exc:
        text = " ".join(str(exc).split())
        missing = sorted(set(re.findall(r"aten::\w+", text)))
        reason = f"OpenVINO has no conversion for {', '.join(missing)}" if missing else text[:200] or type(exc).__name__
        raise SdplayError(
            f"could not convert {model_name}'s {component} for OpenVINO ({reason}); use --backend pytorch"
        ) from exc


def _save(model: Any, folder: Path) -> None:
    """Write the converted model beside its final place, then rename it there (never half-written),
    and remove the stale conversions of the same component (other weights or library versions)."""
    ov = import_openvino()
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        ov.save_model(model, str(partial / "model.xml"), compress_to_fp16=False)
        os.replace(partial, folder)
    except OSError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        if not (folder / "model.xml").exists():  # another process may have written it first
            raise SdplayError(f"could not write the converted model to {folder.parent}: {exc.strerror or exc}") from exc
    component = folder.name.rsplit("-", 1)[0]
    for stale in folder.parent.glob(f"{component}-*"):
        if stale != folder and ".partial-" not in stale.name:
            shutil.rmtree(stale, ignore_errors=True)


def fingerprint(module: torch.nn.Module, component: str, model_config: Any) -> str:
    """A key that changes with the weights, the config or a library version.

    Every tensor contributes its name, shape and an even sample of its values: a fine-tune, a
    fused LoRA or a different checkpoint changes it, without hashing gigabytes."""
    digest = hashlib.blake2b(digest_size=10)
    identity = {
        "component": component,
        "converter": CONVERTER_VERSION,
        "class": type(module).__name__,
        "config": dict(model_config),
        "versions": {name: version(name) for name in LIBRARIES},
    }
    digest.update(json.dumps(identity, sort_keys=True, default=str).encode())
    for name, tensor in module.state_dict().items():
        flat = tensor.detach().reshape(-1)
        sample = flat[:: max(1, flat.numel() // 64)].to(torch.float32).numpy()
        digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        digest.update(sample.tobytes())
    return digest.hexdigest()


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "model"
