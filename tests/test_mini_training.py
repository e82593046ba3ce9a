"""Training the mini model: the data it sees and a short run of the training script, offline."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

import sdplay
from sdplay.mini import MODEL_DIR
from sdplay.mini.dataset import CENTRED_SPREAD, FREE_RANGE, HELD_OUT, SIZE, draw, free_geometry, random_scene
from sdplay.mini.train import main as train


def test_free_geometry_keeps_the_caption_and_lets_the_shape_leave_the_frame() -> None:
    rng = np.random.default_rng(0)
    scenes = [random_scene(rng) for _ in range(200)]
    freed = [free_geometry(scene, rng) for scene in scenes]
    assert [s.caption for s in freed] == [s.caption for s in scenes]
    assert all(FREE_RANGE[0] <= s.side <= FREE_RANGE[1] and 0 <= s.cx <= SIZE and 0 <= s.cy <= SIZE for s in freed)
    touching = 0
    for scene in freed:
        pixels = np.asarray(draw(scene), float)
        border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
        touching += bool((np.abs(border - np.asarray(draw(scene).getpixel((0, 0)), float)).max(axis=-1) > 60).any())
    assert touching > 100  # most freed shapes reach an edge; drawn by the captions' rules, none does


def test_a_square_share_shows_squares_that_often_and_never_a_held_out_triple() -> None:
    rng = np.random.default_rng(0)
    scenes = [random_scene(rng, square_share=0.4) for _ in range(3000)]
    shares = {shape: sum(s.shape == shape for s in scenes) / len(scenes) for shape in ("square", "circle", "triangle")}
    assert shares["square"] == pytest.approx(0.4, abs=0.03)
    assert shares["circle"] == pytest.approx(0.3, abs=0.03) and shares["triangle"] == pytest.approx(0.3, abs=0.03)
    assert not {(s.color, s.shape, s.background) for s in scenes} & set(HELD_OUT)


@pytest.mark.parametrize("option", ["--free-geometry-share", "--square-share", "--ema"])
@pytest.mark.parametrize("bad", ["nan", "inf", "1.5", "-0.1"])
def test_a_share_outside_0_to_1_stops_before_training(option, bad, tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        train(["--out", str(tmp_path), option, bad])
    assert stop.value.code == 2 and not any(tmp_path.iterdir())
    last_line = capsys.readouterr().err.splitlines()[-1]
    assert last_line.endswith(f"{option}: '{bad}' is not a share from 0 to 1")


@pytest.mark.parametrize(
    ("option", "bad", "wanted"),
    [
        ("--unet-lr", "nan", "a number above 0"),
        ("--vae-lr", "0", "a number above 0"),
        ("--snr-gamma", "-5", "a number above 0"),
        ("--snr-gamma", "inf", "a number above 0"),
        ("--unet-steps", "0", "a whole number of at least 1"),
        ("--unet-batch", "-64", "a whole number of at least 1"),
        ("--vae-steps", "1e3", "a whole number of at least 1"),
        ("--threads", "two", "a whole number of at least 1"),
        ("--seed", "-1", "a whole number of at least 0"),
        ("--warmup", "-200", "a whole number of at least 0"),
        ("--free-geometry-largest", "10", "a whole number of at least 20"),
        ("--unet-channels", "40", "a whole number of at least 16 and a multiple of 16"),
        ("--vae-channels", "12", "a whole number of at least 8 and a multiple of 8"),
        ("--text-hidden", "66", "a whole number of at least 4 and a multiple of 4"),
    ],
)
def test_a_bad_rate_count_or_width_stops_before_training(option, bad, wanted, tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        train(["--out", str(tmp_path), option, bad])
    assert stop.value.code == 2 and not any(tmp_path.iterdir())
    assert capsys.readouterr().err.splitlines()[-1].endswith(f"{option}: '{bad}' is not {wanted}")


def test_a_missing_vae_or_pipeline_folder_stops_with_one_line(tmp_path, capsys) -> None:
    vae_only = tmp_path / "copied"
    shutil.copytree(MODEL_DIR / "vae", vae_only / "vae")  # a VAE without the gate scores its stage writes
    cases = [
        (["--out", str(tmp_path / "new"), "--stage", "unet"], "holds no VAE: train one with --stage vae"),
        (["--out", str(vae_only), "--stage", "unet"], "has no gate.json (its reconstruction scores)"),
        (["--out", str(tmp_path / "new"), "--stage", "unet", "--init", str(tmp_path)], "is not a pipeline folder"),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit) as stop:
            train(argv)
        assert stop.value.code == 2 and message in capsys.readouterr().err.splitlines()[-1]
    assert not (tmp_path / "new").exists()


def test_training_goes_on_from_a_pipeline_and_exports_one_that_generates(tmp_path) -> None:
    args = ["--out", str(tmp_path), "--stage", "unet", "--init", str(MODEL_DIR), "--unet-steps", "2"]
    train([*args, "--unet-batch", "4", "--save-every", "2", "--free-geometry-share", "1", "--threads", "1"])
    log = [json.loads(line) for line in (tmp_path / "unet_log.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in log] == [2] and log[0]["final"]
    run = sdplay.generate("a red circle on a blue background", model=str(tmp_path / "model"), steps=4, seed=0)
    assert run.images[0].size == (SIZE, SIZE)


def test_drawing_workers_hand_the_training_steps_the_same_pictures_in_order() -> None:
    from sdplay.mini.tokenizer import build_tokenizer
    from sdplay.mini.train import parse_args, pictures_drawn, step_inputs

    def steps(workers: int) -> list:
        args = parse_args(["--out", "unused", "--unet-steps", "5", "--unet-batch", "6", "--free-geometry-share", "1"])
        gen = torch.Generator("cpu").manual_seed(0)
        inputs = step_inputs(args, gen, build_tokenizer(), latent_shape=(4, 16, 16), timesteps=1000)
        with pictures_drawn(inputs, workers) as batches:
            return list(batches)

    alone, with_workers = steps(0), steps(2)
    assert len(alone) == len(with_workers) == 5
    for one, other in zip(alone, with_workers, strict=True):
        assert all(torch.equal(a, b) for a, b in zip(one[:3], other[:3], strict=True))
        assert one[3].shape == (6, SIZE, SIZE, 3) and np.array_equal(one[3], other[3])
    assert not all(np.array_equal(alone[0][3], later[3]) for later in alone[1:])


def test_centred_free_geometry_puts_shapes_in_the_middle_at_any_size() -> None:
    rng = np.random.default_rng(1)
    scenes = [random_scene(rng) for _ in range(200)]
    centred = [free_geometry(scene, rng, centred=1.0) for scene in scenes]
    assert all(abs(s.cx - SIZE / 2) <= CENTRED_SPREAD and abs(s.cy - SIZE / 2) <= CENTRED_SPREAD for s in centred)
    assert min(s.side for s in centred) < SIZE < max(s.side for s in centred)
    assert [s.caption for s in centred] == [s.caption for s in scenes]
    anywhere = [free_geometry(scene, rng) for scene in scenes]
    assert max(abs(s.cx - SIZE / 2) for s in anywhere) > SIZE / 4
