"""The least a program can do to draw the mini model's picture with torch, diffusers and transformers.

    python benchmarks/startup_floor.py OUT.png

No sdplay: the three model classes imported by their module paths (no pipeline, no auto classes), loaded with
the libraries' own `from_pretrained`, 20 DDIM steps with guidance 5 at 64x64, decoded and saved as a PNG.
`benchmarks/startup.py` times it as a whole process beside `sdplay txt2img ... --model mini`, so the gap between
the two is what sdplay's own path adds and this script's time is what no CLI on these libraries can go under.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from diffusers.models.autoencoders.autoencoder_kl import AutoencoderKL
from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel
from diffusers.schedulers.scheduling_ddim import DDIMScheduler
from PIL import Image
from transformers.models.clip.modeling_clip import CLIPTextModel
from transformers.models.clip.tokenization_clip import CLIPTokenizer

MINI = Path(__file__).resolve().parent.parent / "src" / "sdplay" / "mini" / "model"
PROMPT = "a red circle on a blue background"
STEPS, GUIDANCE, SIZE = 20, 5.0, 64


@torch.inference_mode()
def draw(out: Path) -> None:
    tokenizer = CLIPTokenizer.from_pretrained(MINI / "tokenizer")
    text_encoder = CLIPTextModel.from_pretrained(MINI / "text_encoder").eval()
    unet = UNet2DConditionModel.from_pretrained(MINI / "unet").eval()
    vae = AutoencoderKL.from_pretrained(MINI / "vae").eval()
    scheduler = DDIMScheduler.from_pretrained(MINI / "scheduler")
    ids = tokenizer(["", PROMPT], padding="max_length", max_length=tokenizer.model_max_length, return_tensors="pt")
    context = text_encoder(ids.input_ids)[0]
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    shape = (1, unet.config.in_channels, SIZE // factor, SIZE // factor)
    latents = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    scheduler.set_timesteps(STEPS)
    for t in scheduler.timesteps:
        uncond, cond = unet(torch.cat([latents] * 2), t, encoder_hidden_states=context).sample.chunk(2)
        latents = scheduler.step(uncond + GUIDANCE * (cond - uncond), t, latents).prev_sample
    pixels = vae.decode(latents / vae.config.scaling_factor).sample
    array = ((pixels[0].clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    Image.fromarray(array).save(out)


if __name__ == "__main__":
    draw(Path(sys.argv[1]))
