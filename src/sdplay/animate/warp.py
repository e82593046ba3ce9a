"""Frame warps on the device: Deforum's 2D affine/perspective motion and its depth-based 3D camera.

Both are one `grid_sample` over a (1, C, H, W) tensor in [0, 1]; no OpenCV, no pytorch3d.
Conventions are Deforum's, so imported settings move the same way:

- 2D: translate by (`translation_x`, `translation_y`) pixels, then rotate by `angle` degrees
  (positive = counter-clockwise on screen) and scale by `zoom` (> 1 magnifies) about the transform
  centre; with the perspective flip on, the flip follows and the translation is left out (as in Deforum).
- 3D: world points (x, y in [-1, 1], z = depth) are seen by two perspective cameras of `fov`
  degrees and aspect ratio `aspect_ratio_schedule` (Deforum's default 1; W/H with its old formula):
  the old one at the origin and one moved by (-tx, +ty, -tz)/200 and rotated by XYZ Euler
  angles. Each pixel samples from where it lay before, shifted by the difference between the two
  projections. Positive `translation_z` moves forward; positive 3D `translation_x` moves content
  left (the opposite of 2D). The perspective flip, when on, turns the picture first.

`inverse=True` undoes a motion, so a later keyframe can be warped back to an earlier frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

TRANSLATION_SCALE = 1.0 / 200.0  # Deforum's (and Disco Diffusion's) 3D translation unit


@dataclass(frozen=True)
class Motion2D:
    angle: float = 0.0
    zoom: float = 1.0
    translation_x: float = 0.0
    translation_y: float = 0.0
    center_x: float = 0.5
    center_y: float = 0.5
    flip: tuple[float, float, float, float] | None = None  # theta, phi, gamma, fv (degrees)


@dataclass(frozen=True)
class Motion3D:
    translation_x: float = 0.0
    translation_y: float = 0.0
    translation_z: float = 0.0
    rotation_x: float = 0.0
    rotation_y: float = 0.0
    rotation_z: float = 0.0
    fov: float = 70.0
    aspect_ratio: float | None = None  # Deforum's aspect_ratio_schedule; None: W/H (its old formula)
    flip: tuple[float, float, float, float] | None = None  # the perspective flip, done before the 3D motion


def matrix_2d(width: int, height: int, motion: Motion2D) -> np.ndarray:
    """The forward 3x3 pixel transform (x right, y down, pixel centres at integers).

    Without the flip: translate, then rotate and zoom about the centre. With it, as in Deforum, the
    flip follows the rotation and zoom and the translation is left out.
    """
    theta = math.radians(motion.angle)
    a, b = motion.zoom * math.cos(theta), motion.zoom * math.sin(theta)
    cx, cy = width * motion.center_x, height * motion.center_y
    rotate = np.array([[a, b, (1 - a) * cx - b * cy], [-b, a, b * cx + (1 - a) * cy], [0, 0, 1]])
    if motion.flip is not None:
        return perspective_flip(width, height, *motion.flip) @ rotate
    translate = np.array([[1, 0, motion.translation_x], [0, 1, motion.translation_y], [0, 0, 1.0]])
    return rotate @ translate


def perspective_flip(width: int, height: int, theta: float, phi: float, gamma: float, fv: float) -> np.ndarray:
    """Deforum's perspective flip: the picture plane turned by `phi` about x, `gamma` about y and
    `theta` about z (in the picture plane), seen by a camera of field of view `fv`.

    The plane is the picture centred on the origin with y counted downward, at distance
    h = d / (2 sin(fv/2)) (d the picture's diagonal) from the camera; its projection is scaled so an
    unturned picture keeps its size, and, as in Deforum, the turn pivots about the point
    (s/2, s/2) (s = d / cos(fv/2)), below and right of the picture's centre.
    """
    half = math.radians(fv) / 2
    diagonal = math.hypot(width, height)
    side = diagonal / math.cos(half)
    distance = diagonal / (2 * math.sin(half))
    rotation = _rot("x", math.radians(phi)) @ _rot("y", math.radians(gamma)) @ _rot("z", math.radians(theta))
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=float)
    turned = np.c_[corners - (width / 2, height / 2), np.zeros(4)] @ rotation.T
    # w = distance - z + 1: Deforum's projection matrix keeps a 1 in its corner (0.1% smaller, half a pixel over)
    projected = turned[:, :2] / (math.tan(half) * (distance - turned[:, 2:3] + 1))
    shift = np.array([[1, 0, (width - side) / 2], [0, 1, (height - side) / 2], [0, 0, 1]])
    return homography(corners, (projected + 1) * side / 2) @ shift


def homography(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 3x3 matrix mapping four source points onto four target points."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(source, target, strict=True):
        rows += [[x, y, 1, 0, 0, 0, -u * x, -u * y], [0, 0, 0, x, y, 1, -v * x, -v * y]]
        rhs += [u, v]
    h = np.linalg.solve(np.array(rows), np.array(rhs))
    return np.append(h, 1.0).reshape(3, 3)


def _rot(axis: str, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return {
        "x": np.array([[1, 0, 0], [0, c, -s], [0, s, c]]),
        "y": np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]),
        "z": np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]),
    }[axis]


def _pixel_grid(height: int, width: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    ys, xs = torch.meshgrid(
        torch.arange(height, device=device, dtype=torch.float32),
        torch.arange(width, device=device, dtype=torch.float32),
        indexing="ij",
    )
    return xs, ys


def warp_2d(image: torch.Tensor, motion: Motion2D, border: str = "replicate", inverse: bool = False) -> torch.Tensor:
    """Resample a (1, C, H, W) frame under a 2D motion; `border` is `replicate` or `wrap`."""
    _, _, height, width = image.shape
    forward = matrix_2d(width, height, motion)
    # grid_sample pulls: each output pixel reads the source point the forward map sends to it
    pull = forward if inverse else np.linalg.inv(forward)
    m = torch.tensor(pull, dtype=torch.float32, device=image.device)
    xs, ys = _pixel_grid(height, width, image.device)
    w = m[2, 0] * xs + m[2, 1] * ys + m[2, 2]
    sx = (m[0, 0] * xs + m[0, 1] * ys + m[0, 2]) / w
    sy = (m[1, 0] * xs + m[1, 1] * ys + m[1, 2]) / w
    if border == "wrap":
        pad = 2  # wrapped neighbours for the interpolation at the seams
        source = F.pad(image, (pad, pad, pad, pad), mode="circular")
        sx, sy = torch.remainder(sx, width) + pad, torch.remainder(sy, height) + pad
        size = (width + 2 * pad, height + 2 * pad)
    else:
        source, size = image, (width, height)
    grid = torch.stack(((2 * sx + 1) / size[0] - 1, (2 * sy + 1) / size[1] - 1), dim=-1)[None]
    out = F.grid_sample(source, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.clamp_(0, 1)


def rotation_matrix(rx: float, ry: float, rz: float) -> torch.Tensor:
    """XYZ Euler angles (degrees) -> Rx @ Ry @ Rz, the matrix Deforum hands its cameras."""
    r = _rot("x", math.radians(rx)) @ _rot("y", math.radians(ry)) @ _rot("z", math.radians(rz))
    return torch.tensor(r, dtype=torch.float32)


def flow_3d(depth: torch.Tensor, motion: Motion3D, inverse: bool = False) -> torch.Tensor:
    """The (1, H, W, 2) grid_sample grid that moves the camera by `motion` over a (1, 1, H, W) depth."""
    _, _, height, width = depth.shape
    device = depth.device
    rotation = rotation_matrix(motion.rotation_x, motion.rotation_y, motion.rotation_z).to(device)
    translation = (
        torch.tensor(
            [-motion.translation_x, motion.translation_y, -motion.translation_z], dtype=torch.float32, device=device
        )
        * TRANSLATION_SCALE
    )
    if inverse:  # x -> x R + T undone: x -> x R^T - T R^T
        rotation = rotation.T
        translation = -translation @ rotation
    ys, xs = torch.meshgrid(
        torch.linspace(-1, 1, height, device=device), torch.linspace(-1, 1, width, device=device), indexing="ij"
    )
    points = torch.stack((xs, ys, depth[0, 0].float()), dim=-1).reshape(-1, 3)
    moved = points @ rotation + translation
    tan_half = math.tan(math.radians(motion.fov) / 2)
    aspect = width / height if motion.aspect_ratio is None else motion.aspect_ratio
    scale = torch.tensor([1 / (tan_half * aspect), 1 / tan_half], device=device)
    before = points[:, :2] / points[:, 2:3] * scale
    after = moved[:, :2] / moved[:, 2:3] * scale
    offset = (after - before).reshape(1, height, width, 2)
    gx = (2 * torch.arange(width, device=device) + 1) / width - 1
    gy = (2 * torch.arange(height, device=device) + 1) / height - 1
    identity = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), dim=-1)[None]
    return identity - offset


def warp_3d(
    image: torch.Tensor,
    depth: torch.Tensor,
    motion: Motion3D,
    padding_mode: str = "border",
    sampling_mode: str = "bicubic",
    inverse: bool = False,
    border: str = "replicate",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Move the camera over a frame and its depth; the depth moves with the picture it belongs to.

    A perspective flip turns the picture first (with `border`, as Deforum's 2D warp); the depth,
    measured on the unturned picture, is not turned.
    """
    flip = Motion2D(flip=motion.flip) if motion.flip is not None else None
    if flip is not None and not inverse:
        image = warp_2d(image, flip, border)
    grid = flow_3d(depth, motion, inverse)
    out = F.grid_sample(image, grid, mode=sampling_mode, padding_mode=padding_mode, align_corners=False)
    moved_depth = F.grid_sample(depth, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if flip is not None and inverse:
        out = warp_2d(out, flip, border, inverse=True)
    return out.clamp_(0, 1), moved_depth
