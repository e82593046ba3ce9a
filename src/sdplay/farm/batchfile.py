"""Batch files: a list of jobs (a mode and its settings, or settings files) with sweeps, expanded and
validated up front, so that a mistake anywhere is one error line before any model loads.

    jobs:
      - mode: txt2img
        settings: {prompt: a lighthouse at dusk, model: mini}
        product: {seed: [1, 2, 3], guidance: [4, 7.5]}   # every combination: 6 jobs
        zip: {prompt: [a cat, a dog], negative: [dog, cat]}  # side by side: times 2
        grid: [seed, guidance]                             # a labelled contact sheet, x then y (then z)
      - file: outputs/dream/20260101-120000-a-cat/settings.json   # a run's settings.json is a job
      - mode: animate
        files: deforum/*.txt                               # every file that matches, one job each
        settings: {model: mini, max_frames: 8}             # on top of each file
"""

from __future__ import annotations

import glob
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..downloads import is_url
from ..engine.modes import MODE_NAMES, settings_class
from ..errors import SdplayError
from ..settings import CONTROL_KEY, FILE_KEYS, read_config

IMAGE_MODES = ("txt2img", "img2img", "inpaint")
ENTRY_KEYS = {"mode", "settings", "file", "files", "product", "zip", "grid", "name"}
MAX_JOBS = 100_000  # a sweep past this is a typo, not a plan


@dataclass(frozen=True)
class BatchJob:
    """One expanded job: its mode, its settings as settings.json holds them, and where it came from."""

    mode: str
    settings: dict[str, Any]
    name: str
    entry: int  # index of the batch file entry it was expanded from
    axes: dict[str, Any] = field(default_factory=dict)  # the swept settings' values of this job


@dataclass(frozen=True)
class Grid:
    """A contact sheet of one entry's pictures: x across, y down, one sheet per z value."""

    entry: int
    axes: tuple[str, ...]


@dataclass(frozen=True)
class Batch:
    jobs: list[BatchJob]
    grids: list[Grid]


def read_batch(path: str | Path) -> Batch:
    """A batch file (YAML, JSON or TOML) -> its jobs, every one validated; SdplayError names what is wrong."""
    path = Path(path)
    data = read_config(path, "batch file")
    unknown = sorted(set(data) - {"jobs"})
    if unknown:
        raise SdplayError(f"{path}: unknown key(s) {', '.join(unknown)}; a batch file holds `jobs:`, a list")
    entries = data.get("jobs")
    if not isinstance(entries, list) or not entries:
        raise SdplayError(f"{path}: `jobs:` must be a non-empty list of jobs (mode + settings, or file)")
    jobs: list[BatchJob] = []
    grids: list[Grid] = []
    for number, entry in enumerate(entries):
        where = f"{path}: job {number + 1}"
        expanded, grid = _expand(entry, number, path.parent.absolute(), where)
        jobs.extend(expanded)
        if grid is not None:
            grids.append(grid)
        if len(jobs) > MAX_JOBS:
            raise SdplayError(f"{where}: the batch expands to more than {MAX_JOBS} jobs")
    return Batch(jobs, grids)


def _expand(entry: Any, number: int, base: Path, where: str) -> tuple[list[BatchJob], Grid | None]:
    if not isinstance(entry, Mapping):
        raise SdplayError(f"{where}: must be a mapping (mode, settings, file/files, product, zip, grid)")
    unknown = sorted(str(key) for key in set(entry) - ENTRY_KEYS)
    if unknown:
        raise SdplayError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(ENTRY_KEYS))}")
    overrides = entry.get("settings", {})
    if not isinstance(overrides, Mapping):
        raise SdplayError(f"{where}: settings must be a mapping of setting names to values")
    sources = _sources(entry, base, where)  # (label, mode or None, data) per settings file, or one inline
    jobs: list[BatchJob] = []
    grid = None
    for label, file_mode, data in sources:
        mode = _mode_of(entry.get("mode"), file_mode, data, where)
        known = settings_class(mode).known_keys()
        combos = _sweep(entry, known, where)
        grid = _grid(entry, mode, number, combos, where) if "grid" in entry else None
        for axes in combos:
            values = rebased({**data, **overrides, **axes}, base)
            name = (label + "".join(f" {key}={value}" for key, value in axes.items())).strip()
            jobs.append(BatchJob(mode, _validated(mode, values, f"{where} ({name})"), name, number, axes))
    return jobs, grid


def _sources(entry: Mapping[str, Any], base: Path, where: str) -> list[tuple[str, str | None, dict[str, Any]]]:
    if "file" in entry and "files" in entry:
        raise SdplayError(f"{where}: give `file` or `files`, not both")
    if "file" in entry or "files" in entry:
        pattern = entry.get("file", entry.get("files"))
        if not isinstance(pattern, str) or not pattern:
            raise SdplayError(f"{where}: file/files must be a path or a glob pattern")
        full = pattern if Path(pattern).is_absolute() else str(base / pattern)
        paths = sorted(glob.glob(full)) if "files" in entry else [full]
        if not paths:
            raise SdplayError(f"{where}: no file matches {pattern}")
        return [(Path(p).name, _mode_from_path(Path(p)), _read_settings_file(Path(p), where)) for p in paths]
    if "mode" not in entry:
        raise SdplayError(f"{where}: give a mode ({', '.join(MODE_NAMES)}) and its settings, or a settings file")
    return [("", None, {})]


def _read_settings_file(path: Path, where: str) -> dict[str, Any]:
    from ..animate.settings import load_settings_file

    try:
        return load_settings_file(path)
    except SdplayError as exc:
        raise SdplayError(f"{where}: {exc}") from None


def _mode_from_path(path: Path) -> str | None:
    """A run's settings.json sits in outputs/<mode>/<run>/: its mode is the folder above the run."""
    parent = path.parent.parent.name
    return parent if path.name == "settings.json" and parent in MODE_NAMES else None


def _mode_of(given: Any, from_path: str | None, data: Mapping[str, Any], where: str) -> str:
    mode = given or data.get("mode") or from_path
    if mode is None:
        raise SdplayError(f"{where}: say which mode the settings file is for (mode: {' / '.join(MODE_NAMES)})")
    if mode not in MODE_NAMES:
        raise SdplayError(f"{where}: unknown mode {mode!r}; choose {', '.join(MODE_NAMES)}")
    return str(mode)


def _sweep(entry: Mapping[str, Any], known: set[str], where: str) -> list[dict[str, Any]]:
    """Every combination: the zip lists side by side, times the product of the product lists."""
    groups = {}
    for kind in ("product", "zip"):
        sweep = entry.get(kind, {})
        if not isinstance(sweep, Mapping):
            raise SdplayError(f"{where}: {kind} must map setting names to lists of values")
        for key, values in sweep.items():
            if key not in known:
                raise SdplayError(f"{where}: {kind} over unknown setting {key!r}; known: {', '.join(sorted(known))}")
            if not isinstance(values, list) or not values:
                raise SdplayError(f"{where}: {kind}.{key} must be a non-empty list of values, got {values!r}")
        groups[kind] = dict(sweep)
    both = sorted(set(groups["product"]) & set(groups["zip"]))
    if both:
        raise SdplayError(f"{where}: {', '.join(both)} swept by both product and zip; keep it in one")
    lengths = {key: len(values) for key, values in groups["zip"].items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{key} has {n}" for key, n in lengths.items())
        raise SdplayError(f"{where}: zip lists must be equally long: {listed}")
    zipped = [dict(zip(groups["zip"], row, strict=True)) for row in zip(*groups["zip"].values(), strict=True)] or [{}]
    product = [dict(zip(groups["product"], row, strict=True)) for row in itertools.product(*groups["product"].values())]
    return [{**a, **b} for b in product for a in zipped]


def _grid(entry: Mapping[str, Any], mode: str, number: int, combos: list[dict[str, Any]], where: str) -> Grid:
    swept = list(combos[0])
    axes = entry["grid"]
    if axes is True:
        axes = [key for key in (entry.get("product") or {})][:3]
    if not isinstance(axes, list) or not 1 <= len(axes) <= 3 or not all(isinstance(a, str) for a in axes):
        raise SdplayError(f"{where}: grid must be true or a list of 1 to 3 swept settings (x, y, z)")
    if mode not in IMAGE_MODES:
        raise SdplayError(f"{where}: a grid is made of pictures; {mode} makes videos")
    for axis in axes:
        if axis not in swept:
            raise SdplayError(f"{where}: grid axis {axis!r} is not swept; swept: {', '.join(swept) or 'nothing'}")
    cells = {tuple(repr(combo[a]) for a in axes) for combo in combos}
    if len(cells) != len(combos):
        rest = ", ".join(key for key in swept if key not in axes)
        raise SdplayError(f"{where}: several jobs fall in one grid cell; put {rest} on an axis too")
    return Grid(number, tuple(axes))


def rebased(values: dict[str, Any], base: Path) -> dict[str, Any]:
    """The settings with every relative file name made a path under `base` (the batch file's folder)."""

    def under_base(name: Any) -> Any:
        relative = isinstance(name, str) and name and not is_url(name) and not Path(name).is_absolute()
        return str(base / name) if relative else name  # a URL stays a URL (the engine downloads it)

    def control_under_base(item: Any) -> Any:
        from ..controlnet import CONTROL

        match = CONTROL.match(item.strip()) if isinstance(item, str) else None
        if match is None:
            return item  # malformed: the settings refuse it in their own words
        weight = match.group("weight")
        return f"{match.group('kind')}:{under_base(match.group('image'))}" + (f":{weight}" if weight else "")

    out = dict(values)
    for key in FILE_KEYS:
        if key in out:
            out[key] = [under_base(v) for v in out[key]] if isinstance(out[key], list) else under_base(out[key])
    control = out.get(CONTROL_KEY)
    if control is not None:
        many = isinstance(control, list)
        out[CONTROL_KEY] = [control_under_base(v) for v in control] if many else control_under_base(control)
    return out


def _validated(mode: str, values: dict[str, Any], where: str) -> dict[str, Any]:
    from ..engine import Job

    if mode in IMAGE_MODES and values.setdefault("mode", mode) != mode:
        raise SdplayError(f"{where}: the settings are for {values['mode']}, not {mode}")
    try:
        if mode == "animate":  # its unknown-keys warning names the job
            return settings_class(mode).from_dict(values, where).to_dict()
        return Job.from_dict(mode, values, write=False).settings.to_dict()
    except SdplayError as exc:
        raise SdplayError(f"{where}: {exc}") from None
