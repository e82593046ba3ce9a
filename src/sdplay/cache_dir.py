"""Where sdplay keeps what it can make again (converted models, import indexes): one folder per user."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """$SDPLAY_CACHE_DIR, else sdplay's folder in the user's cache folder ($XDG_CACHE_HOME or ~/.cache)."""
    explicit = os.environ.get("SDPLAY_CACHE_DIR")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sdplay"
