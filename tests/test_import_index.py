"""The libraries' import-time indexes, answered from disk: the same answers, recomputed when the files change."""

from __future__ import annotations

import importlib.metadata
import json
import os
from pathlib import Path

import pytest
import transformers
from transformers.utils import import_utils

from sdplay.import_index import cached_import_structure, cached_packages_distributions

MODELS = Path(transformers.__file__).parent / "models"


@pytest.fixture(autouse=True)
def cache_folder(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SDPLAY_CACHE_DIR", str(tmp_path))
    return tmp_path


def refuse(*args) -> None:
    raise AssertionError("computed again instead of read from disk")


def test_transformers_structure_from_disk_is_what_transformers_builds() -> None:
    define = import_utils.define_import_structure.__wrapped__  # computes; the lru-cached answer is amended by its users
    built = define(MODELS, prefix="models")
    assert cached_import_structure(define, "test")(MODELS, prefix="models") == built
    assert cached_import_structure(refuse, "test")(MODELS, prefix="models") == built  # a new process: from disk


def test_a_changed_folder_is_indexed_again(tmp_path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    answers = iter([{frozenset(): {"a": {"A"}}}, {frozenset(): {"a": {"A"}, "b": {"B"}}}])
    first = cached_import_structure(lambda path, prefix: next(answers), "test")(package)
    (package / "b.py").write_text("")
    os.utime(package, ns=(0, package.stat().st_mtime_ns + 10**9))  # a new file: the folder's time moves on
    again = cached_import_structure(lambda path, prefix: next(answers), "test")(package)
    assert (first, again) == ({frozenset(): {"a": {"A"}}}, {frozenset(): {"a": {"A"}, "b": {"B"}}})


def test_installed_distributions_from_disk_are_what_importlib_finds() -> None:
    found = importlib.metadata.packages_distributions()
    assert cached_packages_distributions(importlib.metadata.packages_distributions)() == found
    assert cached_packages_distributions(refuse)() == found


def test_an_unreadable_index_is_rebuilt(cache_folder) -> None:
    cached_packages_distributions(lambda: {"x": ["x-dist"]})()
    for stored in (cache_folder / "imports").iterdir():
        stored.write_text("{half written")
    assert cached_packages_distributions(lambda: {"y": ["y-dist"]})() == {"y": ["y-dist"]}


def test_a_damaged_entry_is_computed_again(cache_folder) -> None:
    cached_import_structure(lambda path, prefix: {frozenset(): {"a": {"A"}}}, "test")(cache_folder)
    stored = next((cache_folder / "imports").iterdir())
    entries = json.loads(stored.read_text())
    for entry in entries.values():
        entry["answer"] = {"x": "y"}  # valid JSON of the wrong shape
    stored.write_text(json.dumps(entries))
    again = cached_import_structure(lambda path, prefix: {frozenset(): {"b": {"B"}}}, "test")(cache_folder)
    assert again == {frozenset(): {"b": {"B"}}}
