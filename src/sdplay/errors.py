"""User-facing errors: one line that says what was wrong and what to do.

Anything raised as SdplayError is a user mistake (bad input, missing file, no network, out of
memory); the CLI prints it as ``error: ...`` and exits with code 2. Everything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

EXIT_USER_ERROR = 2


class SdplayError(Exception):
    """A mistake the user can fix; the message is shown as one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


OOM_HINT = (
    "try a smaller --width/--height, --batch-size 1, fewer frames, or --limit (offloads weights, slices attention)"
)


def is_out_of_memory(exc: BaseException) -> bool:
    """True for the out-of-memory errors torch raises on CUDA, MPS and CPU."""
    text = str(exc).lower()
    return isinstance(exc, MemoryError) or "out of memory" in text or "can't allocate memory" in text


class out_of_memory_as_user_error:  # noqa: N801 - used as a context manager, reads like one
    """Turn the device running out of memory into a one-line error with a hint."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: object) -> bool:
        if exc is not None and not isinstance(exc, SdplayError) and is_out_of_memory(exc):
            raise SdplayError(f"out of memory: {OOM_HINT}") from exc
        return False


def import_extra(module: str, message: str) -> ModuleType:
    """An optional dependency, imported only when a feature needs it; missing, it is one line saying how to
    install it (`message`, e.g. "--ray needs Ray: pip install 'sdplay[farm]'")."""
    try:
        return import_module(module)
    except ImportError as exc:
        raise SdplayError(message) from exc
