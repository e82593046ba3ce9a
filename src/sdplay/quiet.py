"""Keep stderr for sdplay's own messages: libraries' warnings and progress bars stay silent.

`--debug` turns them back on, so a bug report can still carry everything the libraries said.
"""

from __future__ import annotations

import logging
import os
import warnings


def silence_libraries(debug: bool = False) -> None:
    """Mute warnings, logging and foreign progress bars unless debugging."""
    if debug:
        return
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore")
    for name in ("diffusers", "transformers", "huggingface_hub", "accelerate", "torch", "PIL"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        import diffusers.utils.logging as dlog
        import transformers.utils.logging as tlog

        dlog.set_verbosity_error()
        dlog.disable_progress_bar()
        tlog.set_verbosity_error()
        tlog.disable_progress_bar()
    except ImportError:  # pragma: no cover - both are hard dependencies
        pass
