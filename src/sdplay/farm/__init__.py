"""Batches and the render farm: batch files with sweeps and grids, run here or on a Ray cluster.

from sdplay.farm import open_batch, run_batch
manifest = open_batch("sweep.yaml")
run_batch(manifest)              # or run_batch(manifest, ray="auto")
"""

from __future__ import annotations

from pathlib import Path

from ..engine import CancelToken
from ..errors import SdplayError
from .batchfile import read_batch
from .grid import write_grid
from .local import BatchListener, run_local
from .manifest import Manifest

__all__ = ["Manifest", "open_batch", "run_batch"]


def open_batch(file: str | Path | None = None, resume: str | Path | None = None, outdir: str | Path | None = None):
    """A new batch from a batch file (validated whole before anything runs), or one to continue."""
    if (file is None) == (resume is None):
        raise SdplayError("give a batch file, or --resume BATCH_FOLDER to continue one (not both)")
    if resume is not None:
        return Manifest.load(resume)
    from ..output import check_output_root

    batch = read_batch(file)  # type: ignore[arg-type]
    check_output_root(outdir)
    return Manifest.create(batch, Path(file), Path(outdir) if outdir else None)  # type: ignore[arg-type]


def run_batch(
    manifest: Manifest,
    listener: BatchListener | None = None,
    cancel: CancelToken | None = None,
    ray: str | None = None,
    workers: int | None = None,
    shared: bool = False,
) -> bool:
    """Run the unfinished jobs, here or on Ray, then the grids whose jobs are all done; False when cancelled.

    `shared` (Ray only): the output root is a filesystem every worker sees at the same path, so workers
    write their pictures there instead of sending them back.
    """
    if ray is None:
        if shared:
            raise SdplayError("--shared-outdir tells Ray workers they can write the outputs; add --ray")
        finished = run_local(manifest, listener, cancel)
    else:
        from .cluster import run_on_ray

        finished = run_on_ray(manifest, ray, workers, listener, cancel, shared=shared)
    for grid in manifest.grids:
        if grid.path is None:
            path = write_grid(manifest.folder, grid, manifest.jobs)
            grid.path = str(path) if path else None
    manifest.save()
    return finished
