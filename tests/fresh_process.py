"""Run the CLI in a fresh interpreter and see which modules it imported (what a process imported cannot be undone)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path


def cli_in_fresh_process(args: list[str], cwd: Path, watched: Iterable[str]) -> tuple[int, set[str], str]:
    """`sdplay ARGS` in a new interpreter: its exit code, which of `watched` it imported, and its stderr."""
    watched = sorted(watched)
    code = (
        "import json, sys\n"
        "from sdplay.cli import main\n"
        f"sys.argv = ['sdplay', *{args!r}]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exit:\n"
        f"    print(json.dumps([exit.code, [m for m in {watched!r} if sys.modules.get(m)]]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=cwd)
    exit_code, imported = json.loads(result.stdout.strip().splitlines()[-1])
    return exit_code, set(imported), result.stderr
