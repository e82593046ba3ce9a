"""Keyframe schedules: how often sdplay's values equal Deforum's on the corpus in tests/data; JSON out.

    python benchmarks/schedule_corpus.py

Each string of tests/data/deforum_schedules.json (Deforum's defaults, its documentation, strings from
its users' issues, and edge cases) carries the values Deforum's own parser gave for it, measured by
running that parser beside sdplay on a developer's machine. A string agrees when every frame is within
1e-6. Strings where sdplay differs on purpose say why (README, "Differences from Deforum").
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from sdplay.animate.schedule import schedule_values
from sdplay.errors import SdplayError

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "deforum_schedules.json"


def agrees(entry: dict) -> bool:
    """sdplay's values for the entry's string equal Deforum's within 1e-6 at every frame."""
    try:
        values = schedule_values(entry["schedule"], entry["max_frames"], entry["seed"], "schedule")
    except SdplayError:
        return False
    return bool(np.allclose(values, entry["deforum"], atol=1e-6, rtol=0))


def main() -> None:
    corpus = json.loads(CORPUS.read_text())
    total, same = Counter(), Counter()
    for entry in corpus:
        total[entry["source"]] += 1
        same[entry["source"]] += agrees(entry)
    report = {
        "strings": len(corpus),
        "same_as_deforum": sum(same.values()),
        "agreement": round(sum(same.values()) / len(corpus), 4),
        "deliberate_differences": sum("difference" in entry for entry in corpus),
        "by_source": {source: f"{same[source]}/{total[source]}" for source in total},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
