"""Sampler names: every one of Deforum's (and the web UI's) 29 names loads a diffusers scheduler."""

from __future__ import annotations

import logging

import pytest
import torch

from sdplay import schedulers
from sdplay.errors import SdplayError
from sdplay.schedulers import canonical_sampler, make_scheduler, sampler_name_of

SD_CONFIG = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear"}
DEFORUM_NAMES = {  # Deforum's sampler list -> the scheduler here
    "Euler a": "euler_a",
    "Euler": "euler",
    "LMS": "lms",
    "Heun": "heun",
    "DPM2": "dpm2",
    "DPM2 a": "dpm2_a",
    "DPM++ 2M": "dpm++_2m",
    "DPM++ SDE": "dpm++_sde",
    "DPM++ 2M SDE Karras": "dpm++_2m_sde_karras",
    "DPM fast": "dpm_fast",
    "LMS Karras": "lms_karras",
    "DPM2 Karras": "dpm2_karras",
    "DPM2 a Karras": "dpm2_a_karras",
    "DPM++ 2M Karras": "dpm++_2m_karras",
    "DPM++ SDE Karras": "dpm++_sde_karras",
    "DPM++ 2M SDE Exponential": "dpm++_2m_sde_exponential",
    "DPM++ 2M SDE Heun": "dpm++_2m_sde_heun",
    "DPM++ 2M SDE Heun Karras": "dpm++_2m_sde_heun_karras",
    "dpm++ 2m sde Heun Exponential": "dpm++_2m_sde_heun_exponential",
    "DPM++ 3M SDE": "dpm++_3m_sde",
    "DPM++ 3M SDE Karras": "dpm++_3m_sde_karras",
    "DPM++ 3M SDE Exponential": "dpm++_3m_sde_exponential",
    "DDIM": "ddim",
    "PLMS": "pndm",
    "UniPC": "unipc",
}
SUBSTITUTED = {"DPM++ 2S a": "dpm++_sde", "DPM++ 2S a Karras": "dpm++_sde_karras", "DPM adaptive": "dpm_fast"}
SUBSTITUTED["Restart"] = "heun"


@pytest.mark.parametrize("name, key", DEFORUM_NAMES.items())
def test_deforum_sampler_names_load_without_a_warning(name: str, key: str, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="sdplay"):
        assert canonical_sampler(name) == key
        assert sampler_name_of(make_scheduler(name, SD_CONFIG)) == key
    assert not caplog.records


@pytest.mark.parametrize("name, key", SUBSTITUTED.items())
def test_samplers_diffusers_lacks_run_as_the_nearest_with_one_warning(name: str, key: str, caplog, monkeypatch) -> None:
    monkeypatch.setattr(schedulers, "WARNED", set())  # as in a fresh process
    with caplog.at_level(logging.WARNING, logger="sdplay"):
        assert canonical_sampler(name) == key
        assert canonical_sampler(name.lower()) == canonical_sampler(name.replace(" ", "_")) == key
    assert len(caplog.records) == 1  # once per sampler, whatever the spelling
    assert caplog.records[0].getMessage().startswith(f"sampler {name!r} is not in diffusers; using {key} instead (")
    assert len(DEFORUM_NAMES) + len(SUBSTITUTED) == 29


def test_karras_and_exponential_variants_change_the_sigmas() -> None:
    def sigmas(name: str) -> torch.Tensor:
        scheduler = make_scheduler(name, SD_CONFIG)
        scheduler.set_timesteps(10)
        return scheduler.sigmas[:-1]

    plain, karras, exponential = (sigmas(f"DPM++ 2M SDE{v}") for v in ("", " Karras", " Exponential"))
    assert float(plain[0]) == pytest.approx(float(karras[0]), rel=0.1)  # the same sigma range ...
    assert not torch.allclose(plain, karras) and not torch.allclose(plain, exponential)  # ... spaced differently
    assert not torch.allclose(karras, exponential)


def test_an_unknown_sampler_lists_the_known_ones() -> None:
    with pytest.raises(SdplayError, match="unknown scheduler 'warp drive'; choose one of ddim, ddpm"):
        canonical_sampler("warp drive")
