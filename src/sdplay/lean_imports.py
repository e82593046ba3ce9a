"""Import only what the chosen path needs from libraries whose packages import every sibling.

diffusers' `models.unets`, `models.autoencoders`, `models.transformers` and `models.controlnets`
packages import every model class they know in their `__init__` (well over a hundred, a
third of a mini txt2img's import time), although a Stable Diffusion pipeline uses three. Their
`__init__` is deferred here until a name is looked up on the package itself; a submodule imported
by its full name (what diffusers' own lazy top level and its model files do) loads alone.
`scipy.stats` and `scipy.integrate` the same: diffusers' schedulers import them whenever scipy is
installed and use them only for beta-distributed sigmas and for the LMS sampler's coefficients.

Two more packages are deferred, with stand-ins for the one name each that libraries take from them at
import time (a name looked up on a deferred package would run its `__init__`):
- `torch._dynamo` (the compiler, with inductor: a sixth of the import time): diffusers and
  transformers mark functions and classes for torch.compile at import (`allow_in_graph`,
  `assume_constant_result`) and keep hooks out of compiled graphs (`disable`, through
  `torch.compiler.disable`; torch wraps some of its own ops the same way). The marking stand-ins give the
  callable back, as the real ones do, and have the real ones mark it when the compiler is first used;
  `disable`'s wraps the function, calling it as it is until the compiler has loaded; and diffusers asks
  `torch._dynamo.eval_frame.OptimizedModule` whether a component is compiled, which none can be before;
- `scipy.optimize`: transformers takes `linear_sum_assignment` for its object-detection losses;
  the stand-in imports the real function on its first call.

transformers rebuilds the index of its own modules at every start by reading every model file, and it and
diffusers each read every installed distribution's file list; the CLI's process reads both from disk instead
(`import_index`).

peft is imported by diffusers whenever it is installed, for LoRA; a process that knows it will
load no LoRA (one CLI job) can hide it, which spares the import of peft and everything it pulls in.
Such a process runs on one device, so transformers is also told that torch.distributed is not there:
it would otherwise import torch's tensor-parallel, FSDP and distributed-checkpoint packages to be ready
to load sharded weights (0.8 s of a mini txt2img on a slow 2-core CPU).
accelerate is hidden the same way from a job that neither offloads nor loads large weights: diffusers uses it
to offload and to build a model without random weights first, which for weights of a few megabytes costs less
than importing accelerate (and, where boto3 is installed, the AWS client accelerate imports with it).
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Callable, Sequence
from typing import Any

EAGER_PACKAGES = (
    "diffusers.models.unets",
    "diffusers.models.autoencoders",
    "diffusers.models.transformers",
    "diffusers.models.controlnets",
    "scipy.stats",
    "scipy.integrate",
    "scipy.optimize",
    "torch._dynamo",
)

# deferred packages whose submodules expect the package's `__init__` to have run (its import order), but these,
# which load alone: imported by full name, any other runs the `__init__` first
INIT_FIRST = {"torch._dynamo": frozenset({"torch._dynamo._trace_wrapped_higher_order_op"})}

_MARKED_LATER: list[tuple[str, Any]] = []  # (decorator, callable) marked before torch._dynamo ran


def _mark_later(decorator: str) -> Any:
    """Stand-in for one of torch._dynamo's marking decorators (`allow_in_graph`, `assume_constant_result`):
    gives the callable back unchanged, as they do, and has the real decorator mark it when the compiler loads."""

    def mark(fn: Any) -> Any:
        if isinstance(fn, (list, tuple)):
            return [mark(x) for x in fn]
        _MARKED_LATER.append((decorator, fn))
        return fn

    return mark


def _mark_now(dynamo: types.ModuleType) -> None:
    for decorator, fn in _MARKED_LATER:
        getattr(dynamo, decorator)(fn)
    _MARKED_LATER.clear()


def _disable_later(fn: Any = None, recursive: bool = True, **kwargs: Any) -> Any:
    """torch._dynamo.disable's stand-in. Until the compiler has loaded nothing can be compiling, so the function
    runs as it is (the real wrapper would only switch off a frame hook that is not there); from then on the call
    goes through the real disabled wrapper, made once. torch itself wraps some of its ops this way, which
    would otherwise load the compiler on their first call."""
    if fn is None:
        return lambda f: _disable_later(f, recursive, **kwargs)
    real: list[Any] = []

    @functools.wraps(fn)
    def call(*args: Any, **kw: Any) -> Any:
        if not real:
            dynamo = sys.modules["torch._dynamo"]
            if isinstance(dynamo, _DeferredPackage):
                return fn(*args, **kw)
            real.append(dynamo.disable(fn, recursive, **kwargs))
        return real[0](*args, **kw)

    return call


class _NeverCompiled:
    """What `torch._dynamo.eval_frame.OptimizedModule` is before the compiler has loaded: a class of which
    nothing is an instance, as no module can have been compiled yet."""


class _EvalFrameLater:
    """torch._dynamo.eval_frame's stand-in, for diffusers' `isinstance(m, torch._dynamo.eval_frame.OptimizedModule)`
    on every component it registers: the real module's names once the compiler has loaded (by anyone)."""

    def __getattr__(self, name: str) -> Any:
        dynamo = sys.modules["torch._dynamo"]
        if name == "OptimizedModule" and isinstance(dynamo, _DeferredPackage):
            return _NeverCompiled
        _run_init(dynamo)
        return getattr(dynamo.eval_frame, name)


def _linear_sum_assignment(*args: Any, **kwargs: Any) -> Any:
    """scipy.optimize.linear_sum_assignment's stand-in: the real one, imported on the first call."""
    optimize = sys.modules["scipy.optimize"]
    _run_init(optimize)
    return optimize.linear_sum_assignment(*args, **kwargs)


STAND_INS: dict[str, dict[str, Any]] = {
    "torch._dynamo": {
        "allow_in_graph": _mark_later("allow_in_graph"),
        "assume_constant_result": _mark_later("assume_constant_result"),
        "disable": _disable_later,
        "eval_frame": _EvalFrameLater(),
    },
    "scipy.optimize": {"linear_sum_assignment": _linear_sum_assignment},
}
_AFTER_INIT = {"torch._dynamo": _mark_now}


def _run_init(module: types.ModuleType) -> None:
    """Run a deferred package's `__init__` (once), then what waited for it."""
    if not isinstance(module, _DeferredPackage):
        return
    module.__class__ = types.ModuleType  # from here on an ordinary module: no second run
    module.__dict__.pop("_sdplay_init").exec_module(module)
    after = _AFTER_INIT.get(module.__name__)
    if after is not None:
        after(module)


class _DeferredPackage(types.ModuleType):
    """A package whose `__init__` runs on the first lookup of a name it does not have yet (other than a
    name with a stand-in)."""

    def __getattr__(self, name: str) -> Any:
        stand_in = STAND_INS.get(self.__name__, {}).get(name)
        if stand_in is not None:
            return stand_in
        _run_init(self)
        return getattr(self, name)


def _hand_back_loader(module: types.ModuleType, real: importlib.abc.Loader) -> None:
    """The module names its real loader, as if ours had never stood in between (reloads and tools ask it)."""
    module.__spec__.loader = real  # type: ignore[union-attr]
    module.__loader__ = real


class _DeferInit(importlib.abc.Loader):
    """Creates the package module as its real loader would, and leaves its `__init__` for later."""

    def __init__(self, real: importlib.abc.Loader) -> None:
        self.real = real

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return None  # the default module object, as for the real (source file) loader

    def exec_module(self, module: types.ModuleType) -> None:
        _hand_back_loader(module, self.real)
        module._sdplay_init = self.real  # type: ignore[attr-defined]
        module.__class__ = _DeferredPackage


class _AlreadyLoaded(importlib.abc.Loader):
    """Hands the import system a module that the package's `__init__` imported while the system looked for it."""

    def __init__(self, module: types.ModuleType) -> None:
        self.module, self.spec = module, module.__spec__

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return self.module

    def exec_module(self, module: types.ModuleType) -> None:
        module.__spec__ = self.spec  # the import system set ours; the module keeps its own


class _ThenPatch(importlib.abc.Loader):
    """Runs a module's real loader, then the patches waiting for it, before its importer gets the module."""

    def __init__(self, real: importlib.abc.Loader, patches: list[Callable[[types.ModuleType], None]]) -> None:
        self.real, self.patches = real, patches

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self.real.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        _hand_back_loader(module, self.real)
        self.real.exec_module(module)
        for patch in self.patches:
            patch(module)


def _structure_from_disk(import_utils: types.ModuleType) -> None:
    """transformers' index of its modules read from disk (`import_index`) instead of rebuilt by reading every
    model file; transformers' `__init__` has set its version before it imports its utils."""
    from .import_index import cached_import_structure

    version = getattr(sys.modules.get("transformers"), "__version__", None)
    if version is None:
        from importlib.metadata import version as installed_version

        version = installed_version("transformers")
    import_utils.define_import_structure = cached_import_structure(import_utils.define_import_structure, version)


@functools.cache  # once per process, when the first model library is about to be imported
def _distributions_from_disk() -> None:
    """Which distribution provides which import name, read from disk (`import_index`): diffusers asks as it is
    imported, transformers soon after."""
    import importlib.metadata

    from .import_index import cached_packages_distributions

    importlib.metadata.packages_distributions = cached_packages_distributions(importlib.metadata.packages_distributions)


def _torch_distributed_absent() -> bool:
    return False


def _no_torch_distributed(import_utils: types.ModuleType) -> None:
    import_utils.is_torch_distributed_available = _torch_distributed_absent


# modules patched as they load: name -> patches, run in order
AFTER_LOAD: dict[str, list[Callable[[types.ModuleType], None]]] = {}
MODEL_LIBRARIES = frozenset({"diffusers", "transformers"})


def _patch_when_loaded(module: str, patch: Callable[[types.ModuleType], None]) -> None:
    patches = AFTER_LOAD.setdefault(module, [])
    if patch not in patches:
        patches.append(patch)


class _DeferredInitFinder(importlib.abc.MetaPathFinder):
    """Finds the eager packages where Python would, with their `__init__` deferred (a submodule that needs its
    package's `__init__` runs it first), and the modules to patch, with their patches."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname in MODEL_LIBRARIES:
            _distributions_from_disk()
        if AFTER_LOAD.get(fullname):
            spec = importlib.machinery.PathFinder.find_spec(fullname, path)
            if spec is not None and spec.loader is not None:
                spec.loader = _ThenPatch(spec.loader, AFTER_LOAD[fullname])
            return spec
        parent = fullname.rpartition(".")[0]
        if parent in INIT_FIRST and fullname not in INIT_FIRST[parent]:
            return self._after_package_init(fullname, parent)
        if fullname not in EAGER_PACKAGES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or not spec.submodule_search_locations:
            return None
        spec.loader = _DeferInit(spec.loader)
        return spec

    @staticmethod
    def _after_package_init(fullname: str, parent: str) -> importlib.machinery.ModuleSpec | None:
        package = sys.modules.get(parent)
        if not isinstance(package, _DeferredPackage):
            return None
        _run_init(package)
        loaded = sys.modules.get(fullname)
        return None if loaded is None else importlib.util.spec_from_loader(fullname, _AlreadyLoaded(loaded))


def make_imports_lean() -> None:
    """Install the finder once, before diffusers is imported (the CLI's `main` does it; `import sdplay` does not,
    so a program that uses sdplay as a library keeps its libraries' own import behaviour)."""
    _patch_when_loaded("transformers.utils.import_utils", _structure_from_disk)
    if not any(isinstance(finder, _DeferredInitFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _DeferredInitFinder())


def hide_unused(lora: bool, accelerate: bool) -> None:
    """Make peft look absent to the libraries when this process will load no LoRA, and torch.distributed
    to transformers (which peft would read); accelerate too when the job does not need it (`needs_accelerate`).

    Only for a process that runs one known job (a CLI command) on one device, and only before diffusers
    and transformers are imported: they decide once, at import, whether these packages are there."""
    if not accelerate:
        _hide_before_libraries("accelerate")
    if lora:
        return  # peft reads torch.distributed.tensor as transformers has imported it
    _hide_before_libraries("peft")
    if "transformers" not in sys.modules:
        _patch_when_loaded("transformers.utils.import_utils", _no_torch_distributed)


def _hide_before_libraries(package: str) -> None:
    if not MODEL_LIBRARIES & sys.modules.keys() and package not in sys.modules:
        sys.modules[package] = None  # type: ignore[assignment]  # the import system's "not installed"


SMALL_WEIGHTS = 100 * 2**20  # bytes on disk under which random weights first cost less than importing accelerate


def needs_accelerate(settings: Any) -> bool:
    """Whether a job's model settings (`settings.ModelSettings`, maybe with ControlNets) call for accelerate:
    offloading, a LoRA (peft needs it), or weights that are large or not on disk yet (a ControlNet's among them)."""
    from .specs import resolve_spec

    if settings.limit or settings.cpu_offload or settings.sequential_offload or settings.lora:
        return True
    if getattr(settings, "control", ()):
        return True
    size = resolve_spec(settings.model).weight_bytes()
    return size is None or size > SMALL_WEIGHTS
