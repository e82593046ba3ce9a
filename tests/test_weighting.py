"""Prompt weighting in A1111 syntax: the parse, the pixels of plain prompts unchanged, the weight's effect."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

import sdplay
from sdplay.engine import Job, run
from sdplay.errors import SdplayError
from sdplay.mini.dataset import PALETTE
from sdplay.models import load_model
from sdplay.weighting import Chunk, encode_weighted, parse_attention, parse_prompt

RED_PROMPT = "a {red} circle on a white background"


@pytest.mark.parametrize(
    "text, pieces",
    [
        ("(red:1.5) circle", [("red", 1.5), (" circle", 1.0)]),
        ("a (b) ((c)) [d]", [("a ", 1.0), ("b", 1.1), (" ", 1.0), ("c", 1.1**2), (" ", 1.0), ("d", 1 / 1.1)]),
        ("(a (b:2) c)", [("a ", 1.1), ("b", 2.2), (" c", 1.1)]),
        (r"\(literal\) [x]", [("(literal) ", 1.0), ("x", 1 / 1.1)]),
        ("plain words, no syntax", [("plain words, no syntax", 1.0)]),
        ("a: b", [("a: b", 1.0)]),
    ],
)
def test_attention_syntax(text, pieces) -> None:
    parsed = parse_attention(text)
    assert [p for p, _ in parsed] == [p for p, _ in pieces]
    assert [w for _, w in parsed] == pytest.approx([w for _, w in pieces])


@pytest.mark.parametrize("text", ["a (b", "a) b", "(word:1.3", "[a:1.2)", "a ] b"])
def test_unbalanced_brackets_are_literal_text_with_a_warning(text, caplog) -> None:
    assert parse_attention(text) == [(text, 1.0)]
    assert "unbalanced brackets" in caplog.text


def test_and_weights_and_break_chunks() -> None:
    assert parse_prompt("a cat :1.3 AND a (dog) :0.5") == [
        Chunk((("a cat", 1.0),), 1.3),
        Chunk((("a ", 1.0), ("dog", 1.1)), 0.5),
    ]
    assert parse_prompt("a castle BREAK a red sky") == [Chunk((("a castle", 1.0),)), Chunk((("a red sky", 1.0),))]
    assert parse_prompt("BREAKFAST AND SANDWICH") == [Chunk((("BREAKFAST", 1.0),)), Chunk((("SANDWICH", 1.0),))]


def test_plain_prompts_give_exactly_todays_pixels(tiny_model) -> None:
    """Plain prompts are not touched: the same pixels as the pipeline called directly with the text."""
    run = dict(model=str(tiny_model), steps=3, seed=4, device="cpu", negative="blurry")
    ours = sdplay.generate("a cat on a mat", **run).images[0]
    model = load_model(str(tiny_model), device="cpu")
    pipe = model.pipeline("txt2img")
    assert encode_weighted(pipe, "a cat on a mat", "blurry") is None
    direct = pipe(
        prompt=["a cat on a mat"],
        negative_prompt=["blurry"],
        num_inference_steps=3,
        guidance_scale=model.default_guidance,
        width=64,
        height=64,
        generator=[torch.Generator("cpu").manual_seed(4)],
    ).images[0]
    assert np.array_equal(np.asarray(ours), np.asarray(direct))


def test_plain_mini_prompts_give_exactly_todays_pixels() -> None:
    model = load_model("mini", device="cpu")
    pipe = model.pipeline("txt2img")
    assert encode_weighted(pipe, "a red circle on a white background", "", model.clean_prompt) is None
    a = sdplay.generate("a red circle on a white background", model="mini", seed=3, steps=4).images[0]
    direct = pipe(
        prompt=["a red circle on a white background"],
        negative_prompt=[""],
        num_inference_steps=4,
        guidance_scale=model.default_guidance,
        width=64,
        height=64,
        generator=[torch.Generator("cpu").manual_seed(3)],
    ).images[0]
    assert np.array_equal(np.asarray(a), np.asarray(direct))


def red_share(image) -> float:
    """Share of pixels whose nearest palette colour is red."""
    pixels = np.asarray(image, np.float32)
    names = list(PALETTE)
    distances = np.stack([np.linalg.norm(pixels - np.array(PALETTE[c], np.float32), axis=-1) for c in names])
    return float((distances.argmin(axis=0) == names.index("red")).mean())


def test_red_weight_moves_the_share_of_red_pixels_on_the_mini_model() -> None:
    """Measured: seeds 0-7 at 20 steps gave 0.25 (weight 1.5) vs 0.10 (weight 0.5) of the picture red."""
    strong, weak = [], []
    for seed in range(4):
        strong.append(red_share(sdplay.generate(RED_PROMPT.format(red="(red:1.5)"), model="mini", seed=seed).images[0]))
        weak.append(red_share(sdplay.generate(RED_PROMPT.format(red="(red:0.5)"), model="mini", seed=seed).images[0]))
    assert all(s > w for s, w in zip(strong, weak, strict=True)), (strong, weak)
    assert np.mean(strong) - np.mean(weak) > 0.05


def test_prompts_longer_than_the_window_are_chunked_not_cut(tiny_model) -> None:
    """The tiny model's tokenizer makes one token per letter and has a 77-token window."""
    run = dict(model=str(tiny_model), steps=2, seed=1, device="cpu")
    head = "a long prompt " * 6  # 66 tokens (one per letter); the ending passes the 77-token window
    one = sdplay.generate(head + "ending with a cat", **run).images[0]
    other = sdplay.generate(head + "ending with a dog", **run).images[0]
    assert not np.array_equal(np.asarray(one), np.asarray(other))  # the part after token 77 counts


def test_weighted_negative_break_and_and_run_and_differ(tiny_model) -> None:
    run = dict(model=str(tiny_model), steps=2, seed=1, device="cpu")
    plain = np.asarray(sdplay.generate("a red cat", **run).images[0])
    for prompt, extra in [
        ("a (red:1.4) cat", {}),
        ("a red BREAK cat", {}),
        ("a red :1.2 AND a cat :0.6", {}),
        ("a red cat", {"negative": "(blurry:1.3), [ugly]"}),
    ]:
        image = sdplay.generate(prompt, **run, **extra).images[0]
        assert not np.array_equal(np.asarray(image), plain), prompt


def test_batches_share_the_weighted_embeddings(tiny_model) -> None:
    run = dict(model=str(tiny_model), steps=2, seed=5, device="cpu")
    batched = sdplay.generate("a (red:1.3) cat", num=2, batch_size=2, **run).images
    single = sdplay.generate("a (red:1.3) cat", **run).images[0]
    assert np.abs(np.asarray(batched[0], np.int16) - np.asarray(single, np.int16)).max() <= 1


def test_unbalanced_prompt_still_draws_with_a_warning(tiny_model, caplog) -> None:
    sdplay.generate("a (red cat", model=str(tiny_model), steps=2, seed=1, device="cpu")
    assert "unbalanced brackets in the prompt 'a (red cat'" in caplog.text


def test_missing_weighting_extra_is_one_line(monkeypatch, tiny_model) -> None:
    monkeypatch.setitem(sys.modules, "compel", None)
    with pytest.raises(SdplayError, match=r"need compel: pip install 'sdplay\[weighting\]'"):
        sdplay.generate("a (red:1.2) cat", model=str(tiny_model), steps=2, device="cpu")
    sdplay.generate("a red cat", model=str(tiny_model), steps=2, device="cpu")  # plain prompts need no compel


@pytest.fixture(scope="module")
def tiny_sdxl(tmp_path_factory: pytest.TempPathFactory):
    """SDXL's layout at a toy size: two text encoders (the second with a projection), a text_time UNet."""
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from tiny_models import build_tokenizer
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    folder = tmp_path_factory.mktemp("sdxl")
    torch.manual_seed(0)
    tokenizer = build_tokenizer(folder / "_tokenizer_src")
    vocab = tokenizer.get_vocab()
    ids = {"bos_token_id": vocab["<|startoftext|>"], "eos_token_id": vocab["<|endoftext|>"]}
    config = CLIPTextConfig(
        vocab_size=len(vocab), hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=77, projection_dim=32, pad_token_id=ids["eos_token_id"], **ids,
    )  # fmt: skip
    unet = UNet2DConditionModel(
        sample_size=8, block_out_channels=(32, 64), layers_per_block=1, attention_head_dim=(2, 4),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=6 * 8 + 32, cross_attention_dim=64, norm_num_groups=32,
    )  # fmt: skip
    vae = AutoencoderKL(
        block_out_channels=(32,) * 4, down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=1, norm_num_groups=32,
    )  # fmt: skip
    pipe = StableDiffusionXLPipeline(
        vae=vae, text_encoder=CLIPTextModel(config), text_encoder_2=CLIPTextModelWithProjection(config),
        tokenizer=tokenizer, tokenizer_2=tokenizer, unet=unet, scheduler=EulerDiscreteScheduler(),
    )  # fmt: skip
    pipe.save_pretrained(folder / "tiny-sdxl")
    return folder / "tiny-sdxl"


def test_sdxl_both_encoders_and_the_pooled_embedding(tiny_sdxl) -> None:
    pipe = load_model(str(tiny_sdxl), device="cpu").pipeline("txt2img")
    assert encode_weighted(pipe, "a red cat", "") is None
    weighted = encode_weighted(pipe, "a (red:1.4) cat", "[blurry]")
    shapes = {name: tuple(tensor.shape) for name, tensor in weighted.kwargs.items()}
    assert shapes == {
        "prompt_embeds": (1, 77, 64),  # the two encoders' 32 features side by side
        "negative_prompt_embeds": (1, 77, 64),
        "pooled_prompt_embeds": (1, 32),
        "negative_pooled_prompt_embeds": (1, 32),
    }
    assert encode_weighted(pipe, "a red cat " * 12, "").kwargs["prompt_embeds"].shape[1] == 154  # two windows
    run = dict(model=str(tiny_sdxl), steps=2, seed=1, device="cpu")
    plain, strong = (sdplay.generate(p, **run).images[0] for p in ("a red cat", "a (red:1.4) cat"))
    assert strong.size == (64, 64) and not np.array_equal(np.asarray(plain), np.asarray(strong))


def test_dream_key_points_and_animate_frames_take_weighted_prompts_too() -> None:
    """The same red weights move the red share the same way in a walk's key points and in animate's frames."""
    walk = dict(model="mini", seeds=[4, 4], total_frames=2, write=False, device="cpu")
    strong = sdplay.dream(RED_PROMPT.format(red="(red:1.5)"), **walk).images[0]
    weak = sdplay.dream(RED_PROMPT.format(red="(red:0.5)"), **walk).images[0]
    assert red_share(strong) > red_share(weak)
    frames = {}
    for weight in ("1.5", "0.5"):
        prompt = RED_PROMPT.format(red=f"(red:{weight})")
        job = Job.from_dict(
            "animate",
            {
                "model": "mini",
                "animation_mode": "None",
                "max_frames": 1,
                "seed": 4,
                "prompts": {"0": prompt},
                "device": "cpu",
            },
            write=False,
        )
        frames[weight] = run(job).images[0]
    assert red_share(frames["1.5"]) > red_share(frames["0.5"])
