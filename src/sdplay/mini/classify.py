"""Quality classifier for mini-model pictures: what colour, shape and position is in this picture?

Used by training (to gate the VAE before the UNet starts), by benchmarks/mini_quality.py and by tests.
It reads pixels only, with fixed rules, so its own score on freshly drawn pictures must be 100%.

- background: the nearest palette colour most common on the 2-px border ring (more robust than the
  four corner pixels alone when a shape sits near a corner);
- foreground: nearest palette colour (other than the background) of the median of the pixels that are
  clearly not background; the shape mask is then every pixel closer to that colour than to the background,
  keeping its largest connected piece;
- shape: fill ratio of the mask inside its bounding box (circle ~0.79, square ~1.0, triangle ~0.5);
- position: the centre of the mask's bounding box against the picture centre (the triangle's area
  centroid sits low in its box, the box centre does not).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from sdplay.mini.dataset import COLORS, PALETTE, SIZE

_PALETTE_ARRAY = np.array([PALETTE[c] for c in COLORS], dtype=np.float32)
_NOT_BACKGROUND = 60.0  # RGB distance from the background that surely belongs to the shape
_MIN_PIXELS = 20  # fewer foreground pixels than this: no shape at all
_SQUARE_MIN_FILL = 0.89  # midway between square 1.0 and circle 0.785
_CIRCLE_MIN_FILL = 0.64  # midway between circle 0.785 and triangle 0.5
_CENTER_TOLERANCE = 5.0  # px; the position phrases put the shape >= 8 px off centre


@dataclass(frozen=True)
class Reading:
    """What the classifier sees; None where nothing could be read."""

    background: str
    color: str | None
    shape: str | None
    position: str | None
    fill: float | None


def nearest_color(rgb: np.ndarray, exclude: str | None = None) -> str:
    """Palette name nearest (Euclidean RGB) to one colour, optionally never `exclude`."""
    d = np.linalg.norm(_PALETTE_ARRAY - np.asarray(rgb, dtype=np.float32), axis=1)
    if exclude is not None:
        d[COLORS.index(exclude)] = np.inf
    return COLORS[int(np.argmin(d))]


def nearest_indices(pixels: np.ndarray) -> np.ndarray:
    """Index in COLORS of the nearest palette colour of each pixel (..., 3)."""
    d = np.linalg.norm(pixels[..., None, :] - _PALETTE_ARRAY, axis=-1)
    return np.argmin(d, axis=-1)


def _background(img: np.ndarray) -> str:
    ring = np.concatenate(
        [img[:2].reshape(-1, 3), img[-2:].reshape(-1, 3), img[:, :2].reshape(-1, 3), img[:, -2:].reshape(-1, 3)]
    )
    votes = np.bincount(nearest_indices(ring), minlength=len(COLORS))
    return COLORS[int(np.argmax(votes))]


def _largest_component(mask: np.ndarray) -> np.ndarray:
    labels, n = ndimage.label(mask)
    if n <= 1:
        return mask
    sizes = ndimage.sum(mask, labels, index=range(1, n + 1))
    return labels == (int(np.argmax(sizes)) + 1)


def shape_from_fill(fill: float) -> str:
    if fill >= _SQUARE_MIN_FILL:
        return "square"
    return "circle" if fill >= _CIRCLE_MIN_FILL else "triangle"


def position_from_centre(cx: float, cy: float, size: int = SIZE) -> str:
    dx, dy = cx - size / 2, cy - size / 2
    if max(abs(dx), abs(dy)) < _CENTER_TOLERANCE:
        return "center"
    if abs(dx) >= abs(dy):
        return "left" if dx < 0 else "right"
    return "top" if dy < 0 else "bottom"


def classify(image: object) -> Reading:
    """Read one picture (PIL image or HxWx3 array, 0-255)."""
    img = np.asarray(image, dtype=np.float32)[..., :3]
    background = _background(img)
    bg_rgb = np.array(PALETTE[background], dtype=np.float32)
    rough = np.linalg.norm(img - bg_rgb, axis=-1) > _NOT_BACKGROUND
    if rough.sum() < _MIN_PIXELS:
        return Reading(background, None, None, None, None)
    color = nearest_color(np.median(img[rough], axis=0), exclude=background)
    fg_rgb = np.array(PALETTE[color], dtype=np.float32)
    closer = np.linalg.norm(img - fg_rgb, axis=-1) < np.linalg.norm(img - bg_rgb, axis=-1)
    mask = _largest_component(closer)
    if mask.sum() < _MIN_PIXELS:
        return Reading(background, color, None, None, None)
    rows, cols = np.nonzero(mask)
    y0, y1, x0, x1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    fill = float(mask.sum()) / float((y1 - y0) * (x1 - x0))
    position = position_from_centre((x0 + x1) / 2, (y0 + y1) / 2, size=img.shape[1])
    return Reading(background, color, shape_from_fill(fill), position, fill)


def score(images: list, truths: list[tuple[str, str, str, str | None]]) -> dict[str, float]:
    """Accuracy of foreground colour, background, shape (and position where the truth has one).

    truths: (colour, shape, background, position-or-None) per picture.
    """
    hits = {"foreground": 0, "background": 0, "shape": 0, "position": 0}
    n_pos = 0
    for image, (color, shape, background, position) in zip(images, truths, strict=True):
        r = classify(image)
        hits["foreground"] += r.color == color
        hits["background"] += r.background == background
        hits["shape"] += r.shape == shape
        if position is not None:
            n_pos += 1
            hits["position"] += r.position == position
    n = max(len(truths), 1)
    out = {k: hits[k] / n for k in ("foreground", "background", "shape")}
    out["position"] = hits["position"] / n_pos if n_pos else float("nan")
    return out


def self_check(n: int = 500, seed: int = 0) -> dict[str, float]:
    """The classifier's score on freshly drawn pictures (all triples, with and without phrases)."""
    from sdplay.mini.dataset import draw, random_scene

    rng = np.random.default_rng(seed)
    scenes = [random_scene(rng, allow_held_out=True) for _ in range(n)]
    return score([draw(s) for s in scenes], [(s.color, s.shape, s.background, s.position_word) for s in scenes])


if __name__ == "__main__":
    result = self_check(2000)
    print(result)
    raise SystemExit(0 if all(v == 1.0 for v in result.values()) else 1)
