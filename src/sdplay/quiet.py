"""Keep stderr for sdplay's own messages: libraries' warnings and progress bars stay silent.

`--debug` turns them back on, so a bug report can still carry everything the libraries said.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

_silenced = False


def silence_libraries(debug: bool = False) -> None:
    """Mute warnings, logging and foreign progress bars unless debugging.

    Nothing is imported here: transformers and huggingface_hub read the environment when they are
    imported, and diffusers' bars are turned off when sdplay first loads a pipeline
    (`mute_diffusers_bars`), so a mistyped path is reported without waiting 3-4 s for imports."""
    global _silenced
    if debug:
        return
    _silenced = True
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers' bars follow huggingface_hub's
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore")
    for name in ("diffusers", "transformers", "huggingface_hub", "accelerate", "torch", "PIL"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if "huggingface_hub" in sys.modules:  # imported before us: the environment came too late for them
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    if "transformers" in sys.modules:
        import transformers.utils.logging as tlog

        tlog.set_verbosity_error()
        tlog.disable_progress_bar()
    if "diffusers" in sys.modules:
        mute_diffusers_bars()


def mute_diffusers_bars() -> None:
    """diffusers' own bars ("Loading pipeline components...") have no environment switch: after
    `silence_libraries`, this turns them off; called before every pipeline load."""
    if _silenced:
        import diffusers.utils.logging as dlog

        dlog.set_verbosity_error()
        dlog.disable_progress_bar()
