"""Turn `sdplay bench --json` reports into the README's performance table (no hand-typed numbers)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def table(reports: list[dict[str, Any]]) -> str:
    lines = [
        "| machine | model | figure | sdplay | baseline | ratio | baseline is |",
        "|---|---|---|---|---|---|---|",
    ]
    for report in reports:
        where = report["machine"].get("gpu") or f"CPU, {report['machine']['cpu_threads']} threads"
        for row in report["figures"]:
            unit = row["unit"]
            baseline = f"{row['baseline']:.4g} {unit}" if "baseline" in row else ""
            ratio = f"{row['ratio']:.2f}x" if "ratio" in row else ""
            lines.append(
                f"| {where} | {report['model']} ({setup(report)}) | {row['figure']} | {row['ours']:.4g} {unit} "
                f"| {baseline} | {ratio} | {row.get('baseline_is', '')} |"
            )
    return "\n".join(lines)


def setup(report: dict[str, Any]) -> str:
    """The dtype and every non-default setting a report was measured with, e.g. `fp16, compiled, 4 steps`."""
    settings = report.get("settings", {})
    parts = [report["dtype"]]
    if settings.get("compile"):
        parts.append("compiled")
    if settings.get("tiny_vae"):
        parts.append(f"tiny VAE {settings['tiny_vae']}")
    if settings.get("steps"):
        parts.append(f"{settings['steps']} steps")
    if settings.get("size"):
        parts.append(f"{settings['size']} px")
    return ", ".join(parts)


def main(paths: list[str]) -> None:
    print(table([json.loads(Path(p).read_text(encoding="utf-8")) for p in paths]))


if __name__ == "__main__":
    main(sys.argv[1:])
