"""Settings are validated in one place, from declared types and bounds.

Whatever a hostile user writes in a settings file, a flag or a Python call, it ends in one
`key: must be <what is allowed>, got <value>` line before any model loads; files that are not
settings (binary, empty, not a mapping, a key given twice) are one line too.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from sdplay.animate.settings import AnimationSettings, load_settings_file, settings_from
from sdplay.dream.settings import DreamSettings
from sdplay.errors import SdplayError
from sdplay.settings import ImageSettings, read_config, round_size

NAN, INF = float("nan"), float("inf")


def error_of(make) -> str:
    with pytest.raises(SdplayError) as info:
        make()
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    "data, message",
    [
        # wrong types: each once reached a traceback inside a mode, or was silently accepted
        ({"prompt": 123}, "prompt: must be text, got 123"),
        ({"prompt": ["a", "b"]}, "prompt: must be text, got ['a', 'b']"),
        ({"scheduler": 123}, "scheduler: must be text, got 123"),
        ({"model": ["mini"]}, "model: must be text, got ['mini']"),
        ({"negative": None}, "negative: must be text, got None"),
        ({"seed": True}, "seed: must be a whole number from 0 to 2^64-1, got True"),
        ({"seed": 1.5}, "seed: must be a whole number from 0 to 2^64-1, got 1.5"),
        ({"seed": 2**64}, "seed: must be a whole number from 0 to 2^64-1, got 18446744073709551616"),
        ({"safety_checker": "no"}, "safety_checker: must be true or false, got 'no'"),
        ({"limit": 0}, "limit: must be true or false, got 0"),
        ({"guidance": NAN}, "guidance: must be a finite number from 0 to 100, got nan"),
        ({"guidance": INF}, "guidance: must be a finite number from 0 to 100, got inf"),
        ({"guidance": -1}, "guidance: must be a finite number from 0 to 100, got -1"),
        ({"lora_scale": NAN}, "lora_scale: must be a finite number, got nan"),
        ({"width": "512"}, "width: must be a whole number from 64 to 8192, got '512'"),
        ({"width": 512.0}, "width: must be a whole number from 64 to 8192, got 512.0"),
        ({"device": None}, "device: must be one of auto, cpu, cuda, cuda:N, gpu, mps, got None"),
        ({"device": "cuda:x"}, "device: must be one of auto, cpu, cuda, cuda:N, gpu, mps, got 'cuda:x'"),
        ({"dtype": "half"}, "dtype: must be one of auto, fp32, fp16, bf16, got 'half'"),
        ({"model_config": {"nested": ["junk"]}}, "model_config: must be text, got {'nested': ['junk']}"),
        ({"mode": "paint"}, "mode: must be one of txt2img, img2img, inpaint, got 'paint'"),
        # absurd sizes and counts
        ({"width": 0}, "width: must be a whole number from 64 to 8192, got 0"),
        ({"height": -512}, "height: must be a whole number from 64 to 8192, got -512"),
        ({"width": 10**30}, "width: must be a whole number from 64 to 8192, got 1000000000000000000000000000000"),
        ({"width": 8192, "height": 8192}, "width x height: 8192x8192 is more than 16777216 pixels (4096x4096)"),
        ({"steps": 0}, "steps: must be a whole number from 1 to 1000, got 0"),
        ({"steps": 1_000_000}, "steps: must be a whole number from 1 to 1000, got 1000000"),
        ({"num": 0}, "num: must be a whole number from 1 to 10000, got 0"),
        ({"batch_size": 10_000}, "batch_size: must be a whole number from 1 to 64, got 10000"),
        # what a mode needs
        (
            {"mode": "img2img", "init": "x.png", "strength": 1.5},
            "strength: must be a finite number from 0 to 1, got 1.5",
        ),
        ({"mode": "img2img"}, "init: img2img needs an init image"),
        ({"mode": "inpaint", "init": "x.png"}, "mask: inpaint needs a mask image"),
        ({"scheduler": "warp_drive"}, "scheduler: unknown scheduler 'warp_drive'"),
        ({"colour": "red"}, "unknown setting(s) colour; known: attention_slicing, backend, batch_size,"),
        (
            {"steps": 0, "num": 0, "guidance": NAN},
            "steps: must be a whole number from 1 to 1000, got 0 (and 2 more problems)",
        ),
    ],
)
def test_image_settings_refuse_hostile_values_in_one_line(data: dict, message: str) -> None:
    assert error_of(lambda: ImageSettings.from_dict({"prompt": "x", **data})).startswith(message)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"seeds": 1.5}, "seeds: must be whole numbers separated by commas, got 1.5"),
        ({"seeds": [True, 2]}, "seeds: must be whole numbers separated by commas, got True"),
        ({"seeds": "1,two"}, "seeds: must be whole numbers separated by commas, got 'two'"),
        ({"seeds": ""}, "seeds: is empty; give whole numbers separated by commas"),
        ({"seeds": [1, -2]}, "seeds: must be a list of whole numbers from 0 to 2^64-1, got -2 at seeds[1]"),
        ({"loop": "no"}, "loop: must be true or false, got 'no'"),
        ({"prompts": 123}, "prompts: must be a list of text, got 123"),
        ({"prompts": ["a", None]}, "prompts: must be a list of text, got None at prompts[1]"),
        ({"prompts": []}, "no prompt given"),
        ({"negative": None}, "negative: must be text, got None"),
        ({"images": [{"path": "a.png"}]}, "images: must be a list of text, got {'path': 'a.png'} at images[0]"),
        ({"fps": 0}, "fps: must be a finite number > 0 and <= 240, got 0"),
        ({"fps": NAN}, "fps: must be a finite number > 0 and <= 240, got nan"),
        ({"frames": 0}, "frames: must be a whole number from 1 to 100000, got 0"),
        ({"frames": 2.0}, "frames: must be a whole number from 1 to 100000, got 2.0"),
        (
            {"prompts": ["a", "b", "c"], "frames": 60_000},
            "frames: 60000 per key point x 2 segments is more than 100000",
        ),
        ({"total_frames": 10**9}, "total_frames: must be a whole number from 2 to 100000, got 1000000000"),
        ({"prompts": ["p"] * 5000}, "frames: 24 per key point x 4999 segments is more than 100000 frames"),
        ({"strength": 0}, "strength: must be a finite number > 0 and <= 1, got 0"),
        ({"formats": "avi"}, "formats: must be mp4, gif or frames (or a comma list), got 'avi'"),
        ({"formats": 5}, "formats: must be mp4, gif or frames (or a comma list), got 5"),
        ({"prompt_interp": "cubic"}, "prompt_interp: must be one of lerp, slerp, got 'cubic'"),
        ({"mode": "txt2img"}, "mode: must be dream, got 'txt2img'"),
        ({"frames": 5, "total_frames": 5}, "give --frames (per key point) or --total-frames, not both"),
        ({"prompts": ["a", "b", "c"], "seeds": [1, 2]}, "2 seeds for 3 key points"),
        ({"width": 4096, "height": 8192}, "width x height: 4096x8192 is more than 16777216 pixels"),
    ],
)
def test_dream_settings_refuse_hostile_values_in_one_line(data: dict, message: str) -> None:
    assert error_of(lambda: DreamSettings.from_dict({"prompts": ["a", "b"], **data})).startswith(message)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"max_frames": True}, "max_frames: must be a whole number from 1 to 100000, got True"),
        ({"max_frames": 1.5}, "max_frames: must be a whole number from 1 to 100000, got 1.5"),
        ({"max_frames": 10**9}, "max_frames: must be a whole number from 1 to 100000, got 1000000000"),
        ({"max_frames": None}, "max_frames: must be a whole number from 1 to 100000, got None"),
        ({"seed": 2**40}, "seed: must be a whole number from -1 to 2^32-1, got 1099511627776"),
        ({"seed": True}, "seed: must be a whole number from -1 to 2^32-1, got True"),
        ({"W": 0}, "W: must be a whole number from 64 to 8192, got 0"),
        ({"W": 5000, "H": 5000}, "W x H: 5000x5000 is more than 16777216 pixels"),
        ({"fps": "inf"}, "fps: must be a finite number > 0 and <= 240, got inf"),
        ({"scale": NAN}, "scale: must be a finite number from 0 to 100, got nan"),
        ({"strength": "nan"}, "strength: must be a finite number from 0 to 1, got nan"),
        ({"zoom": NAN}, 'zoom: must be a schedule such as "0: (1.0), 30: (1.05)", or a finite number, got nan'),
        ({"zoom": [1, 2]}, 'zoom: must be a schedule such as "0: (1.0), 30: (1.05)", or a finite number, got [1, 2]'),
        (
            {"prompts": {"0": None}},
            "prompts: must be a mapping of frame numbers to prompt text, got None at prompts['0']",
        ),
        ({"prompts": 5}, "prompts: must be a mapping of frame numbers to prompt text, got 5"),
        ({"prompts": "{not json"}, "prompts: cannot read the JSON mapping '{not json'"),
        ({"sampler": 5}, "sampler: must be text, got 5"),
        ({"animation_mode": None}, "animation_mode: must be one of None, 2D, 3D, Video Input, Interpolation, got None"),
        (
            {"color_coherence": ["LAB"]},
            "color_coherence: must be one of None, RGB, HSV, LAB, Image, Video Input, got ['LAB']",
        ),
        ({"use_init": "maybe"}, "use_init: must be true or false, got 'maybe'"),
        ({"positive_prompts": 5}, "positive_prompts: must be text, got 5"),
        ({"interpolate_x_frames": 10**9}, "interpolate_x_frames: must be a whole number from 0 to 100000"),
        ({"perlin_octaves": 40}, "perlin_octaves: must be a whole number from 1 to 10, got 40"),
        (
            {"noise_type": "perlin", "perlin_w": 4096},
            "perlin_w, perlin_h, perlin_octaves: the finest octave would have",
        ),
        ({"batch_size": "0"}, "batch_size: must be a whole number from 1 to 64, got 0"),
        ({"steps": 1001}, "steps: must be a whole number from 1 to 1000, got 1001"),
    ],
)
def test_animation_settings_refuse_hostile_values_in_one_line(data: dict, message: str) -> None:
    assert error_of(lambda: AnimationSettings.from_dict(data)).startswith(message)


def test_deforum_text_numbers_and_switches_are_still_read_and_unknown_keys_only_warned(caplog) -> None:
    with caplog.at_level(logging.DEBUG, "sdplay"):
        settings = AnimationSettings.from_dict(
            {"max_frames": "24", "steps": 25.0, "use_init": "no", "strength": "0.5", "zoom": 1.02, "hybrid_motion": "x"}
        )
    assert (settings.max_frames, settings.steps, settings.use_init, settings.strength) == (24, 25, False, 0.5)
    assert settings.zoom == "0: (1.02)"
    assert "1 key(s) have no meaning here and were ignored: hybrid_motion" in caplog.text  # at debug level
    assert "this file turns on hybrid video (hybrid_motion); sdplay does not do it" in caplog.text


def test_the_python_api_takes_paths_and_numpy_seeds() -> None:
    settings = ImageSettings(mode="img2img", prompt="x", init=Path("in.png"), seed=np.int64(7))
    assert (settings.init, settings.seed) == ("in.png", 7) and type(settings.seed) is int
    assert DreamSettings(prompts="a", seeds="4, 5", audio=Path("a.wav")).seeds == (4, 5)
    assert DreamSettings(prompts="a", seeds=[np.int64(3), np.uint32(4)]).seeds == (3, 4)


def model_like(size: int = 64) -> SimpleNamespace:
    """What `resolved` reads from a loaded model."""
    return SimpleNamespace(
        native_size=size,
        vae_scale_factor=8,
        default_steps=20,
        default_guidance=5.0,
        default_scheduler="euler",
        device=__import__("torch").device("cpu"),
        name="model",
    )


def test_resolved_settings_round_trip_through_settings_json_unchanged() -> None:
    model = model_like()
    image = ImageSettings(prompt="x", width=100, model_config="cfg", scheduler="Euler a").resolved(model)
    dream = DreamSettings(prompts=["a", "b"], formats="mp4,gif").resolved(model, None, None)
    animation = AnimationSettings.from_dict({"zoom": 1.02, "sampler": "DPM++ 2M Karras"}).resolved(model)
    for settings in (image, dream, animation):
        written = json.loads(json.dumps(settings.to_dict()))
        assert type(settings).from_dict(written) == settings
    assert image.to_dict()["model_config"] == "cfg" and (image.width, image.scheduler) == (96, "euler_a")


def test_filled_in_values_are_checked_too() -> None:
    too_big = ImageSettings(mode="img2img", prompt="x", init="big.png")
    assert error_of(lambda: too_big.resolved(model_like(), init_size=(9000, 512))).startswith(
        "width: must be a whole number from 64 to 8192, got 9000"
    )
    assert error_of(lambda: too_big.with_values(steps=0)).startswith("steps: must be a whole number from 1 to 1000")


def test_one_size_rule_for_every_mode(caplog) -> None:
    assert round_size("width", 100) == 96 and "width 100 rounded down to 96 (a multiple of 8)" in caplog.text
    assert round_size("W", 100, 16) == 96 and round_size("H", 64, 64) == 64 and round_size("H", 70, 16) == 64
    model = model_like()
    assert ImageSettings(prompt="x", width=100).resolved(model).width == 96
    assert AnimationSettings(W=100).resolved(model).W == 96


@pytest.mark.parametrize("cls", [ImageSettings, DreamSettings, AnimationSettings])
def test_each_settings_class_publishes_a_json_schema_with_every_field_described(cls) -> None:
    schema = cls.model_json_schema()
    json.dumps(schema)
    properties = schema["properties"]
    assert set(properties) == cls.known_keys() and "model_config" in properties
    assert all(p.get("description") for p in properties.values())
    assert properties["steps"]["anyOf"][0] == {"maximum": 1000, "minimum": 1, "type": "integer"}
    assert schema["additionalProperties"] is False


def test_schedules_are_marked_in_the_schema() -> None:
    zoom = AnimationSettings.model_json_schema()["properties"]["zoom"]
    assert zoom["x-schedule"] is True and zoom["default"] == "0: (1.0)"


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("list.json", b'["prompt", "x"]', "must hold a mapping of setting names to values, not ['prompt', 'x']"),
        ("scalar.yaml", b"just a prompt\n", "must hold a mapping of setting names to values, not 'just a prompt'"),
        ("list.yaml", b"- prompt: x\n", "must hold a mapping of setting names to values, not [{'prompt': 'x'}]"),
        ("null.json", b"null", "must hold a mapping of setting names to values, not None"),
        ("empty.yaml", b"", "is empty; it must hold a mapping"),
        ("blank.json", b"  \n\t\n", "is empty; it must hold a mapping"),
        ("binary.yaml", bytes(range(256)), "is a binary file, not JSON, YAML or TOML text"),
        ("image.json", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is a binary file"),
        ("latin1.yaml", "prompt: caf\xe9\n".encode("latin-1"), "is not UTF-8 text (byte 11 is 0xe9)"),
        ("twice.json", b'{"steps": 2, "steps": 3}', "cannot parse config file {path}: the key 'steps' is given twice"),
        ("twice.yaml", b"prompt: a\nsteps: 2\nsteps: 3\n", "the key 'steps' is given twice (line 3)"),
        ("nested.yaml", b"prompts:\n  0: a\n  0: b\n", "the key 0 is given twice (line 3)"),
        ("twice.toml", b"steps = 2\nsteps = 3\n", "cannot parse config file"),
        ("bad.json", b"{nope", "cannot parse config file"),
        ("tags.yaml", b"!!python/object/apply:os.system ['true']\n", "cannot parse config file"),
    ],
)
def test_settings_files_that_are_not_settings_are_one_line(tmp_path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert message.replace("{path}", str(path)) in error_of(lambda: read_config(path))


def test_a_byte_order_mark_is_fine_and_a_folder_is_one_line(tmp_path) -> None:
    (tmp_path / "bom.json").write_bytes(b'\xef\xbb\xbf{"prompt": "p"}')
    assert read_config(tmp_path / "bom.json") == {"prompt": "p"}
    assert error_of(lambda: read_config(tmp_path)).startswith(f"cannot read config file {tmp_path}: Is a directory")


@pytest.mark.parametrize(
    "content, message",
    [
        (b'["max_frames", 3]', "Deforum settings file {path} must hold a mapping of setting names to values"),
        (b'{"max_frames": 3, "max_frames": 4}', "cannot parse Deforum settings file {path}: the key 'max_frames'"),
        (b"", "Deforum settings file {path} is empty"),
        (b"\x00\x01\x02", "Deforum settings file {path} is a binary file"),
        (b'{"max_frames": "3", "W": "lots"}', "W: must be a whole number from 64 to 8192, got 'lots'"),
    ],
)
def test_deforum_files_get_the_same_treatment(tmp_path, content: bytes, message: str) -> None:
    path = tmp_path / "deforum.txt"
    path.write_bytes(content)
    assert error_of(lambda: settings_from(path, {})).startswith(message.format(path=path))
    if b"lots" not in content:
        assert error_of(lambda: load_settings_file(path)).startswith(message.format(path=path))


@pytest.mark.parametrize(
    "command, content",
    [
        (["txt2img"], "prompt: 123\n"),
        (["txt2img"], "prompt: a cat\nguidance: .nan\n"),
        (["txt2img"], "prompt: a cat\nsteps: 2\nsteps: 3\n"),
        (["txt2img", "a cat", "--width", "100000"], "seed: true\n"),
        (["dream"], "prompts: [a, b]\nseeds: 1.5\n"),
        (["animate"], "max_frames: 1e9\n"),
    ],
)
def test_the_cli_refuses_a_bad_settings_file_in_one_line_before_any_output(tmp_path, command, content) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(content)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sdplay",
            *command,
            "--config",
            str(config),
            "--model",
            "mini",
            "-o",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()
