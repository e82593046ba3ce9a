"""Model specs -> where the weights come from, without importing torch or diffusers.

A spec is an alias from ALIASES, a hub id (`org/name[@revision]`), a local diffusers folder or a
single `.safetensors`/`.ckpt` file. `sdplay models`, settings checks and input errors read specs
long before (or instead of) loading a model, so this module stays free of the heavy libraries.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import SdplayError
from .mini import DEFAULT_GUIDANCE as MINI_GUIDANCE
from .mini import DEFAULT_STEPS as MINI_STEPS
from .mini import MODEL_DIR as MINI_DIR

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
    "mini": Alias(
        str(MINI_DIR), "bundled 64x64 shapes model, offline, trained by sdplay.mini.train", MINI_STEPS, MINI_GUIDANCE
    ),
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

    def weight_bytes(self) -> int | None:
        """How large the weights are on disk; None for a hub model (its files may not be here yet)."""
        if self.kind == "hub":
            return None
        path = Path(self.location)
        files = [path] if path.is_file() else [f for f in path.rglob("*") if f.suffix.lower() in CHECKPOINT_SUFFIXES]
        return sum(f.stat().st_size for f in files)


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
