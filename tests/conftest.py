"""Shared fixtures: tiny random pipelines saved once per session and loaded like users' folders."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_models import save_tiny_inpaint_pipeline, save_tiny_pipeline


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_pipeline(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def tiny_inpaint_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_inpaint_pipeline(tmp_path_factory.mktemp("models"))
