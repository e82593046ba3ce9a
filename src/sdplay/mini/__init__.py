"""The bundled mini model: 64x64 pictures of one coloured shape on a plain background.

Weights live in `model/` (a diffusers StableDiffusionPipeline folder); `train.py` reproduces them from a
seed, `dataset.py` draws the training pictures, `classify.py` reads pictures back for quality checks.
"""

from pathlib import Path

MODEL_DIR = Path(__file__).parent / "model"
NATIVE_SIZE = 64  # pixels; the UNet works on 16x16 latents (VAE factor 4)
DEFAULT_STEPS = 20  # DDIM, trailing spacing, v-prediction (scheduler config in model/)
DEFAULT_GUIDANCE = 3.0  # measured best of 3, 4 and 5 (README of this folder): low t is not over-steered
