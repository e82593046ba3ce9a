"""Indexes that libraries rebuild from the installed files at every start, kept on disk instead.

- transformers' lazy top level maps each public name to its module by reading and parsing every model
  file it ships (`define_import_structure`, about 1,100 folders and files), once for `transformers` and
  once more for `transformers.models`: 0.5-0.8 s each on a 2-core CPU.
- diffusers and transformers each ask `importlib.metadata.packages_distributions()` which distribution
  provides which import name, which reads the file list of every installed distribution: 0.3 s each
  with sdplay's extras installed, more in a big environment.

Each answer depends only on what is installed, so it is saved under sdplay's cache folder with a stamp
of the folders it was read from (their modification times change when a package is added, removed or
upgraded) and reused while the stamp holds.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .cache_dir import cache_dir

FORMAT = 1  # bump when a stored layout changes

Structure = dict[frozenset[str], dict[str, set[str]]]  # backends needed -> module -> names, as transformers has it


class DiskIndex:
    """One JSON file of answers, each kept with the stamp it was computed under; the `keep` latest keys stay."""

    def __init__(self, name: str, keep: int = 64) -> None:
        self.path = cache_dir() / "imports" / f"{name}-v{FORMAT}.json"
        self.stored = _read(self.path)
        self.keep = keep

    def answer(
        self,
        key: str,
        stamp: Any,
        compute: Callable[[], Any],
        encode: Callable[[Any], Any] = lambda value: value,
        decode: Callable[[Any], Any] = lambda stored: stored,
    ) -> Any:
        """The stored answer while its stamp holds and it reads back; else `compute()`'s, stored for next time."""
        entry = self.stored.get(key)
        if isinstance(entry, dict) and entry.get("stamp") == stamp and "answer" in entry:
            try:
                return decode(entry["answer"])
            except (TypeError, ValueError, AttributeError):
                pass  # a damaged entry: computed again and replaced
        value = compute()
        self.stored.pop(key, None)
        self.stored[key] = {"stamp": stamp, "answer": encode(value)}
        for old in list(self.stored)[: -self.keep]:
            del self.stored[old]
        _write(self.path, self.stored)
        return value


def cached_import_structure(define: Callable[..., Structure], version: str) -> Callable[..., Structure]:
    """transformers' `define_import_structure`, answered from disk for a folder that has not changed."""
    index = DiskIndex(f"transformers-{version}")

    @functools.wraps(define)
    def define_import_structure(module_path: str | os.PathLike, prefix: str | None = None) -> Structure:
        key, stamp = f"{os.fspath(module_path)}|{prefix or ''}", os.stat(module_path).st_mtime_ns
        return index.answer(key, stamp, lambda: define(module_path, prefix), _encode, _decode)

    return define_import_structure


def cached_packages_distributions(find: Callable[[], dict[str, list[str]]]) -> Callable[[], dict[str, list[str]]]:
    """`importlib.metadata.packages_distributions`, answered from disk while no folder on sys.path has changed."""
    # one entry per search path: `python -m` puts the working folder first, so each folder a user runs from has its own
    index = DiskIndex(f"distributions-python{sys.version_info[0]}.{sys.version_info[1]}", keep=8)

    @functools.wraps(find)
    def packages_distributions() -> dict[str, list[str]]:
        return index.answer(os.pathsep.join(sys.path), _path_stamp(), find, decode=_distributions)

    return packages_distributions


def _distributions(stored: Any) -> dict[str, list[str]]:
    if not isinstance(stored, dict) or not all(isinstance(names, list) for names in stored.values()):
        raise TypeError("not a map from import name to distributions")
    return stored


def _path_stamp() -> list[list[Any]]:
    stamp = []
    for entry in sys.path:
        with contextlib.suppress(OSError):
            stamp.append([os.path.abspath(entry or "."), os.stat(entry or ".").st_mtime_ns])
    return stamp


def _encode(structure: Structure) -> list[Any]:
    return [[sorted(needs), {m: sorted(names) for m, names in modules.items()}] for needs, modules in structure.items()]


def _decode(stored: list[Any]) -> Structure:
    return {frozenset(needs): {module: set(names) for module, names in modules.items()} for needs, modules in stored}


def _read(path: Path) -> dict[str, Any]:
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}  # none yet, unreadable or half written by a crash: rebuilt as it is used
    return stored if isinstance(stored, dict) else {}


def _write(path: Path, stored: dict[str, Any]) -> None:
    """Written whole under a temporary name, then renamed: a reader never sees half an index. A read-only
    cache folder only costs the next start the rebuild."""
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(json.dumps(stored))
        os.replace(partial, path)
    except OSError:
        with contextlib.suppress(OSError):
            partial.unlink()
