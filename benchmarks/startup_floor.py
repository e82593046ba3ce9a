"""The least a program can do to draw the mini model's picture with torch, diffusers and transformers.

    python benchmarks/startup_floor.py OUT.png [--lean]

No sdplay: the three model classes imported by their module paths (no pipeline, no auto classes), loaded with
the libraries' own `from_pretrained`, 20 DDIM steps with guidance 5 at 64x64, decoded and saved as a PNG.
With `--lean` the imports first go through what sdplay's CLI does to them (`sdplay.lean_imports`: deferred
packages, import indexes on disk, peft, accelerate and torch.distributed hidden), and nothing else of sdplay runs.
`benchmarks/startup.py` times both as whole processes beside `sdplay txt2img ... --model mini`: the gap to the
lean one is what sdplay's own path (CLI, settings, engine, pipeline, writer) adds, and the lean one's time is
about what no command on these libraries goes under.
"""

from __future__ import annotations

import sys
from pathlib import Path

if "--lean" in sys.argv:
    from sdplay.lean_imports import hide_unused, make_imports_lean

    make_imports_lean()
    hide_unused(lora=False, accelerate=False)

import torch  # after the import hooks, as in the CLI
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
