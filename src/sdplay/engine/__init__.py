"""One run engine for every mode: a Job (mode + validated settings) runs through `run`, which
writes its folder, frames and video, and tells listeners what happens (events.py).

    from sdplay.engine import Job, run
    result = run(Job.from_dict("txt2img", {"prompt": "a red circle", "model": "mini"}), on_event=print)
"""

from __future__ import annotations

from .control import CancelToken, JobCancelled
from .job import Job
from .runner import RunResult, run

__all__ = ["CancelToken", "Job", "JobCancelled", "RunResult", "run"]
