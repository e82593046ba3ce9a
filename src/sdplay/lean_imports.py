"""Import only what the chosen path needs from libraries whose packages import every sibling.

diffusers' `models.unets`, `models.autoencoders`, `models.transformers` and `models.controlnets`
packages import every model class they know in their `__init__` (well over a hundred, a
third of a mini txt2img's import time), although a Stable Diffusion pipeline uses three. Their
`__init__` is deferred here until a name is looked up on the package itself; a submodule imported
by its full name (what diffusers' own lazy top level and its model files do) loads alone.
`scipy.stats` the same: diffusers' schedulers import it whenever scipy is installed and use it
only for beta-distributed sigmas.

peft is imported by diffusers whenever it is installed, for LoRA; a process that knows it will
load no LoRA (one CLI job) can hide it, which spares the import of peft and everything it pulls in.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types
from collections.abc import Sequence
from typing import Any

EAGER_PACKAGES = (
    "diffusers.models.unets",
    "diffusers.models.autoencoders",
    "diffusers.models.transformers",
    "diffusers.models.controlnets",
    "scipy.stats",
)


class _DeferredPackage(types.ModuleType):
    """A package whose `__init__` runs on the first lookup of a name it does not have yet."""

    def __getattr__(self, name: str) -> Any:
        self.__class__ = types.ModuleType  # from here on an ordinary module: no second run
        self.__dict__.pop("_sdplay_init").exec_module(self)
        return getattr(self, name)


class _DeferInit(importlib.abc.Loader):
    """Creates the package module as its real loader would, and leaves its `__init__` for later."""

    def __init__(self, real: importlib.abc.Loader) -> None:
        self.real = real

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return None  # the default module object, as for the real (source file) loader

    def exec_module(self, module: types.ModuleType) -> None:
        module.__spec__.loader = self.real  # type: ignore[union-attr]
        module.__loader__ = self.real
        module._sdplay_init = self.real  # type: ignore[attr-defined]
        module.__class__ = _DeferredPackage


class _DeferredInitFinder(importlib.abc.MetaPathFinder):
    """Finds the eager packages where Python would, with their `__init__` deferred."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in EAGER_PACKAGES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or not spec.submodule_search_locations:
            return None
        spec.loader = _DeferInit(spec.loader)
        return spec


def defer_eager_packages() -> None:
    """Install the finder once, before diffusers is imported (the CLI's `main` does it; `import sdplay` does not,
    so a program that uses sdplay as a library keeps its libraries' own import behaviour)."""
    if not any(isinstance(finder, _DeferredInitFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _DeferredInitFinder())


def hide_unused(lora: bool) -> None:
    """Make peft look absent to the libraries when this process will load no LoRA.

    Only for a process that runs one known job (a CLI command), and only before diffusers is
    imported: diffusers decides once, at import, whether peft is there."""
    if not lora and "diffusers" not in sys.modules and "peft" not in sys.modules:
        sys.modules["peft"] = None  # type: ignore[assignment]  # the import system's "not installed"
