"""Procedural training data for the bundled mini model: one coloured shape on a plain background.

Pictures are drawn on the fly from a seed, so training needs no files and every run sees the same
stream. Caption grammar::

    a [small|large] COLOR SHAPE [in the center|on the left|on the right|at the top|at the bottom]
      on a BGCOLOR background

Bracketed parts are optional; when a caption leaves one out, that property is random in the picture.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageDraw

SIZE = 64
"""Native picture size of the mini model (pixels, square)."""

PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "orange": (245, 140, 20),
    "yellow": (240, 220, 30),
    "green": (40, 170, 60),
    "blue": (30, 80, 220),
    "purple": (140, 50, 180),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
}
COLORS: tuple[str, ...] = tuple(PALETTE)
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
SIZES: tuple[str, ...] = ("small", "large")
POSITIONS: dict[str, str] = {
    "center": "in the center",
    "left": "on the left",
    "right": "on the right",
    "top": "at the top",
    "bottom": "at the bottom",
}

# Bounding-box side in pixels (circle diameter, square side, triangle base = height).
# Generous on purpose: a factor-4 VAE and a fill-ratio classifier must see the shape clearly.
SMALL_RANGE = (24, 28)  # ~40% of the canvas
LARGE_RANGE = (38, 42)  # ~65% of the canvas
RANDOM_RANGE = (24, 42)  # size left out of the caption
FREE_RANGE = (20, 120)  # free geometry: from below "small" to twice the canvas
CENTRED_SPREAD = 4  # px either way: how far a "centred" free shape may sit from the middle
MARGIN = 2  # shapes keep this many pixels from the edge, so the border ring is always background
SUPERSAMPLE = 4  # draw at 4x and box-filter down: exact anti-aliased edges


def _held_out_rule() -> list[tuple[str, str, str]]:
    """The rule that produced HELD_OUT: each colour once per shape as foreground, and once per
    shape as background (background offset 1, 3, 5 places along the palette)."""
    out = []
    for i, color in enumerate(COLORS):
        for s, shape in enumerate(SHAPES):
            out.append((color, shape, COLORS[(i + 1 + 2 * s) % len(COLORS)]))
    return out


HELD_OUT: tuple[tuple[str, str, str], ...] = (
    # (foreground colour, shape, background colour) never drawn in training: 24 of 168 triples (14%),
    # every colour 3 times as foreground and 3 times as background, every shape 8 times.
    ("red", "circle", "orange"),
    ("red", "square", "green"),
    ("red", "triangle", "purple"),
    ("orange", "circle", "yellow"),
    ("orange", "square", "blue"),
    ("orange", "triangle", "white"),
    ("yellow", "circle", "green"),
    ("yellow", "square", "purple"),
    ("yellow", "triangle", "black"),
    ("green", "circle", "blue"),
    ("green", "square", "white"),
    ("green", "triangle", "red"),
    ("blue", "circle", "purple"),
    ("blue", "square", "black"),
    ("blue", "triangle", "orange"),
    ("purple", "circle", "white"),
    ("purple", "square", "red"),
    ("purple", "triangle", "yellow"),
    ("white", "circle", "black"),
    ("white", "square", "orange"),
    ("white", "triangle", "green"),
    ("black", "circle", "red"),
    ("black", "square", "yellow"),
    ("black", "triangle", "blue"),
)
_HELD_OUT_SET = frozenset(HELD_OUT)

ALL_TRIPLES: tuple[tuple[str, str, str], ...] = tuple(
    (c, s, b) for c in COLORS for s in SHAPES for b in COLORS if b != c
)
SEEN_TRIPLES: tuple[tuple[str, str, str], ...] = tuple(t for t in ALL_TRIPLES if t not in _HELD_OUT_SET)


@dataclass(frozen=True)
class Scene:
    """Everything needed to draw one picture and to write its caption."""

    color: str
    shape: str
    background: str
    size_word: str | None  # "small" / "large" / None (left out of the caption)
    position_word: str | None  # key of POSITIONS / None
    side: int  # bounding-box side in pixels
    cx: float  # bounding-box centre, pixels
    cy: float

    @property
    def caption(self) -> str:
        return make_caption(self.color, self.shape, self.background, self.size_word, self.position_word)


def make_caption(
    color: str, shape: str, background: str, size_word: str | None = None, position_word: str | None = None
) -> str:
    """Caption in the mini grammar; optional parts are skipped when None."""
    words = ["a"]
    if size_word:
        words.append(size_word)
    words += [color, shape]
    if position_word:
        words.append(POSITIONS[position_word])
    words += ["on a", background, "background"]
    return " ".join(words)


def vocabulary() -> list[str]:
    """Every word the grammar can produce, in a fixed order (the tokenizer is built from this)."""
    words: list[str] = []
    phrases = ["a", *SIZES, *COLORS, *SHAPES, *POSITIONS.values(), "on a", "background"]
    for phrase in phrases:
        for w in phrase.split():
            if w not in words:
                words.append(w)
    return words


def _centre_for(position_word: str | None, side: int, rng: np.random.Generator) -> tuple[float, float]:
    """Bounding-box centre: a phrase pushes the shape against that edge (with 0-2 px jitter); no phrase
    places it uniformly anywhere it fits."""
    lo = MARGIN + side / 2
    hi = SIZE - MARGIN - side / 2
    mid = SIZE / 2
    jitter = float(rng.uniform(-2, 2))
    along = float(rng.uniform(0, 2))
    if position_word is None:
        return float(rng.uniform(lo, hi)), float(rng.uniform(lo, hi))
    if position_word == "center":
        return mid + jitter, mid + float(rng.uniform(-2, 2))
    if position_word == "left":
        return lo + along, mid + jitter
    if position_word == "right":
        return hi - along, mid + jitter
    if position_word == "top":
        return mid + jitter, lo + along
    return mid + jitter, hi - along  # bottom


def random_scene(
    rng: np.random.Generator,
    triple: tuple[str, str, str] | None = None,
    p_size: float = 0.5,
    p_position: float = 0.5,
    allow_held_out: bool = False,
    square_share: float | None = None,
) -> Scene:
    """Draw scene parameters; training never gets a held-out triple unless allow_held_out.

    square_share: how often the shape is a square (the other shapes share the rest equally); None draws
    every triple equally often. Squares are the shape a small model rounds off, so training shows it more."""
    if triple is None:
        pool = ALL_TRIPLES if allow_held_out else SEEN_TRIPLES
        if square_share is not None:
            square = rng.random() < square_share
            pool = tuple(t for t in pool if (t[1] == "square") == square)
        triple = pool[int(rng.integers(len(pool)))]
    color, shape, background = triple
    size_word = SIZES[int(rng.integers(2))] if rng.random() < p_size else None
    position_word = list(POSITIONS)[int(rng.integers(len(POSITIONS)))] if rng.random() < p_position else None
    side_range = {"small": SMALL_RANGE, "large": LARGE_RANGE, None: RANDOM_RANGE}[size_word]
    side = int(rng.integers(side_range[0], side_range[1] + 1))
    cx, cy = _centre_for(position_word, side, rng)
    return Scene(color, shape, background, size_word, position_word, side, cx, cy)


def free_geometry(scene: Scene, rng: np.random.Generator, largest: int = FREE_RANGE[1], centred: float = 0.0) -> Scene:
    """The same caption with the shape at any size in FREE_RANGE (up to `largest`) and its centre anywhere on the
    canvas, so it may be cut by an edge or cover the picture: what a zoom, pan or warp makes of a picture. Shown to
    the UNet at low noise only, it teaches img2img to keep such a picture instead of pulling it back to the sizes
    and places the captions name, while generation from noise still settles size and place at high noise as named.
    A share `centred` of them sit within CENTRED_SPREAD of the middle instead: a zoom into a centred shape ends
    with it filling the picture but for a thin ring or the corners, which a centre anywhere rarely draws."""
    side = int(rng.integers(FREE_RANGE[0], largest + 1))
    if centred > 0 and rng.random() < centred:
        cx, cy = (SIZE / 2 + float(rng.uniform(-CENTRED_SPREAD, CENTRED_SPREAD)) for _ in range(2))
    else:
        cx, cy = float(rng.uniform(0, SIZE)), float(rng.uniform(0, SIZE))
    return replace(scene, side=side, cx=cx, cy=cy)


def draw(scene: Scene) -> Image.Image:
    """Render a scene as a 64x64 RGB picture with anti-aliased edges."""
    k = SUPERSAMPLE
    big = Image.new("RGB", (SIZE * k, SIZE * k), PALETTE[scene.background])
    pen = ImageDraw.Draw(big)
    half = scene.side * k / 2
    x0, y0 = scene.cx * k - half, scene.cy * k - half
    x1, y1 = scene.cx * k + half, scene.cy * k + half
    fill = PALETTE[scene.color]
    if scene.shape == "circle":
        pen.ellipse([x0, y0, x1, y1], fill=fill)
    elif scene.shape == "square":
        pen.rectangle([x0, y0, x1, y1], fill=fill)
    else:  # upward isosceles triangle filling its box
        pen.polygon([(scene.cx * k, y0), (x1, y1), (x0, y1)], fill=fill)
    return big.resize((SIZE, SIZE), Image.Resampling.BOX)


def sample_batch(rng: np.random.Generator, n: int, **scene_kwargs: object) -> tuple[np.ndarray, list[str], list[Scene]]:
    """n pictures as a uint8 array (n, 64, 64, 3), their captions and scenes."""
    scenes = [random_scene(rng, **scene_kwargs) for _ in range(n)]  # type: ignore[arg-type]
    return draw_all(scenes), [s.caption for s in scenes], scenes


def draw_all(scenes: list[Scene]) -> np.ndarray:
    """The scenes drawn as a uint8 array (n, 64, 64, 3)."""
    return np.stack([np.asarray(draw(s)) for s in scenes])


def to_tensor_range(pixels: np.ndarray) -> np.ndarray:
    """uint8 NHWC -> float32 NCHW in [-1, 1], the range diffusers' VAE expects."""
    return (pixels.astype(np.float32) / 127.5 - 1.0).transpose(0, 3, 1, 2)
