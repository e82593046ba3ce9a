"""Shared fixtures: tiny random pipelines saved once per session and loaded like users' folders."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_models import (
    save_tiny_controlnet,
    save_tiny_inpaint_pipeline,
    save_tiny_pipeline,
    save_tiny_pipeline_with_safety_checker,
    write_ldm_checkpoint,
)

from sdplay.quiet import silence_libraries

silence_libraries()

# Small models run fastest on one thread, and a busy machine is then not oversubscribed;
# sdplay leaves the thread count alone when OMP_NUM_THREADS is set (subprocesses inherit it).
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_pipeline(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def tiny_inpaint_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_inpaint_pipeline(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def tiny_checked_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_pipeline_with_safety_checker(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def tiny_controlnet(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_controlnet(tiny_model, tmp_path_factory.mktemp("controlnet"))


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_ldm_checkpoint(tiny_model, tmp_path_factory.mktemp("ckpt") / "tiny.safetensors")


@pytest.fixture
def picture(tmp_path: Path) -> Path:
    """A 64x64 picture: a red square on blue."""
    pixels = np.zeros((64, 64, 3), np.uint8)
    pixels[:] = (30, 80, 220)
    pixels[16:48, 16:48] = (220, 30, 30)
    path = tmp_path / "picture.png"
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture
def mask(tmp_path: Path) -> Path:
    """White (repaint) right half, black (keep) left half."""
    pixels = np.zeros((64, 64), np.uint8)
    pixels[:, 32:] = 255
    path = tmp_path / "mask.png"
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture(autouse=True)
def _sdplay_log_propagates() -> None:
    """Let caplog see sdplay's warnings even after a CLI test installed its own handler."""
    logging.getLogger("sdplay").propagate = True
