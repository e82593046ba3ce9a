"""Warps on synthetic pictures, no diffusion: each motion moves content the way Deforum's does."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from animate_helpers import centroid, save_tiny_depth_model, shift_of, square, texture

from sdplay.animate.warp import Motion2D, Motion3D, perspective_flip, warp_2d, warp_3d
from sdplay.depth import DepthEstimator, equalise
from sdplay.errors import SdplayError

FLAT = torch.ones(1, 1, 96, 96)


def area(image: torch.Tensor) -> float:
    return float((image[0, 0] > 0.5).sum())


def test_2d_translation_x_moves_content_right_by_that_many_pixels() -> None:
    image = texture()
    moved = warp_2d(image, Motion2D(translation_x=10), border="wrap")
    assert shift_of(image, moved) == pytest.approx([0, 10], abs=0.2)
    down = warp_2d(image, Motion2D(translation_y=-6), border="wrap")
    assert shift_of(image, down) == pytest.approx([-6, 0], abs=0.2)


def test_2d_zoom_enlarges_and_angle_rotates_counter_clockwise() -> None:
    zoomed = warp_2d(square(), Motion2D(zoom=1.1))
    assert math.sqrt(area(zoomed) / area(square())) == pytest.approx(1.1, abs=0.03)
    marker = torch.zeros(1, 3, 96, 96)
    marker[..., 44:52, 70:80] = 1.0  # right of the centre
    y, x = centroid(warp_2d(marker, Motion2D(angle=90)))
    assert y == pytest.approx(48 - (75 - 48), abs=1.0) and x == pytest.approx(48, abs=1.0)  # now above it


def test_2d_negative_zoom_turns_the_picture_half_round() -> None:
    """As OpenCV's rotation matrix with a negative scale (Deforum's 2D): x -> W - x about the centre (W/2, H/2)."""
    image = texture(64, 64)
    turned = warp_2d(image, Motion2D(zoom=-1.0))
    assert torch.allclose(turned[..., 1:, 1:], image.flip(-1, -2)[..., :-1, :-1], atol=1e-5)


def test_2d_borders_replicate_or_wrap() -> None:
    image = texture()
    wrapped = warp_2d(image, Motion2D(translation_x=10), border="wrap")
    assert torch.allclose(wrapped[..., 20:30], image[..., 10:20], atol=1e-4)
    assert torch.allclose(wrapped[..., :10], image[..., -10:], atol=1e-4)
    replicated = warp_2d(image, Motion2D(translation_x=10), border="replicate")
    assert torch.allclose(replicated[..., :10], image[..., :1].expand_as(replicated[..., :10]), atol=1e-4)


def test_identity_motions_and_inverse_motions() -> None:
    image = texture()
    assert torch.allclose(warp_2d(image, Motion2D()), image, atol=1e-5)
    same, depth = warp_3d(image, FLAT, Motion3D(), sampling_mode="bilinear")
    assert torch.allclose(same, image, atol=1e-5) and torch.equal(depth, FLAT)
    inner = (..., slice(16, -16), slice(16, -16))
    motion = Motion2D(angle=5, zoom=1.05, translation_x=3)
    there = warp_2d(image, motion)
    back = warp_2d(there, motion, inverse=True)
    assert (back - image)[inner].abs().max() < 0.03 < (there - image)[inner].abs().max()
    motion3 = Motion3D(translation_x=4, translation_z=6, rotation_y=2, rotation_z=3)
    there, moved_depth = warp_3d(image, FLAT, motion3)
    back, _ = warp_3d(there, moved_depth, motion3, inverse=True)
    assert (back - image)[inner].abs().mean() < 0.2 * (there - image)[inner].abs().mean()


def edges(matrix: np.ndarray, width: int, height: int) -> dict[str, float]:
    """Lengths of the picture's four edges after a forward 3x3 pixel transform."""
    corners = np.array([[0, 0, 1], [width, 0, 1], [width, height, 1], [0, height, 1]], dtype=float) @ matrix.T
    a, b, c, d = corners[:, :2] / corners[:, 2:]
    length = lambda p, q: float(np.hypot(*(p - q)))  # noqa: E731
    return {"top": length(a, b), "right": length(b, c), "bottom": length(c, d), "left": length(d, a)}


def test_perspective_flip_axes_and_tilt_directions() -> None:
    """Deforum's axes: theta turns the picture in its own plane (clockwise on screen), phi tilts it
    about the horizontal axis (top edge away), gamma about the vertical axis (right edge away)."""
    w, h = 96, 64
    theta = perspective_flip(w, h, 10, 0, 0, 53)
    assert abs(theta[2, 0]) + abs(theta[2, 1]) < 1e-9  # no foreshortening
    assert math.degrees(math.atan2(theta[1, 0], theta[0, 0])) == pytest.approx(10)  # x axis turns toward +y (down)
    phi, gamma = edges(perspective_flip(w, h, 0, 10, 0, 53), w, h), edges(perspective_flip(w, h, 0, 0, 10, 53), w, h)
    assert phi["top"] < 0.97 * phi["bottom"] and phi["left"] == pytest.approx(phi["right"], rel=0.01)
    assert gamma["right"] < 0.97 * gamma["left"] and gamma["top"] == pytest.approx(gamma["bottom"], rel=0.01)


def test_perspective_flip_pivots_where_deforum_does_and_drops_the_translation() -> None:
    w, h, fv = 96, 64, 53
    side = math.hypot(w, h) / math.cos(math.radians(fv / 2))  # the pivot is (side/2, side/2), not the centre
    turned = perspective_flip(w, h, 20, 0, 0, fv)
    pivot, centre = turned @ [side / 2, side / 2, 1], turned @ [w / 2, h / 2, 1]
    assert np.hypot(*(pivot[:2] / pivot[2] - side / 2)) < 0.7  # stays put (half a pixel: Deforum's projection)
    assert np.hypot(*(centre[:2] / centre[2] - (w / 2, h / 2))) > 10
    image = texture(h, w)
    flip = (4, 6, -5, fv)
    assert torch.equal(
        warp_2d(image, Motion2D(translation_x=20, translation_y=5, flip=flip)), warp_2d(image, Motion2D(flip=flip))
    )
    level = (warp_2d(image, Motion2D(flip=(0, 0, 0, fv))) - image)[..., 4:-4, 4:-4].abs().mean() * 255
    assert 0.5 < level < 5  # at zero angles Deforum's flip is 0.1% smaller and half a pixel over, not the identity


def test_perspective_flip_in_3d_turns_the_picture_before_the_camera_moves() -> None:
    image, flip = texture(), (0, 8, 5, 53)
    flipped, depth = warp_3d(image, FLAT, Motion3D(flip=flip), sampling_mode="bilinear")
    assert torch.allclose(flipped, warp_2d(image, Motion2D(flip=flip)), atol=1e-5) and torch.equal(depth, FLAT)
    motion = Motion3D(translation_x=4, rotation_y=2, flip=flip)
    there, moved_depth = warp_3d(image, FLAT, motion)
    back, _ = warp_3d(there, moved_depth, motion, inverse=True)
    inner = (..., slice(16, -16), slice(16, -16))
    assert (back - image)[inner].abs().mean() < 0.2 * (there - image)[inner].abs().mean()


def test_3d_aspect_ratio_schedule_sets_the_horizontal_motion_on_wide_frames() -> None:
    """Deforum's default aspect_ratio_schedule 1 moves a 16:9 frame 16/9 times as far sideways as
    its old formula (aspect = W/H); vertical motion and square frames are the same either way."""
    wide, depth = texture(54, 96), torch.ones(1, 1, 54, 96)
    default, _ = warp_3d(wide, depth, Motion3D(translation_x=30, aspect_ratio=1.0), sampling_mode="bilinear")
    old, _ = warp_3d(wide, depth, Motion3D(translation_x=30), sampling_mode="bilinear")
    pixels = 30 / 200 / math.tan(math.radians(35)) * 48  # grid units -> pixels at aspect 1
    assert shift_of(wide, default)[1] == pytest.approx(-pixels, abs=0.3)
    assert shift_of(wide, old)[1] == pytest.approx(-pixels * 54 / 96, abs=0.3)
    up, _ = warp_3d(wide, depth, Motion3D(translation_y=6, aspect_ratio=1.0), sampling_mode="bilinear")
    up_old, _ = warp_3d(wide, depth, Motion3D(translation_y=6), sampling_mode="bilinear")
    assert torch.equal(up, up_old)
    square_frame = texture()
    one, _ = warp_3d(square_frame, FLAT, Motion3D(translation_x=6, rotation_y=2, aspect_ratio=1.0))
    assert torch.equal(one, warp_3d(square_frame, FLAT, Motion3D(translation_x=6, rotation_y=2))[0])


def test_3d_translation_z_with_flat_depth_magnifies() -> None:
    moved, _ = warp_3d(square(), FLAT, Motion3D(translation_z=20), sampling_mode="bilinear")
    # Deforum's projection: the offset (1/(1 - tz/200) - 1) is scaled by 1/tan(fov/2) in grid units
    expected = 1 / (1 - (1 / (1 - 20 / 200) - 1) / math.tan(math.radians(35)))
    assert math.sqrt(area(moved) / area(square())) == pytest.approx(expected, abs=0.03)
    back, _ = warp_3d(square(), FLAT, Motion3D(translation_z=-20), sampling_mode="bilinear")
    assert area(back) < area(square())


def test_3d_translation_x_moves_content_left_and_rotation_y_pans() -> None:
    image = texture()
    moved, _ = warp_3d(image, FLAT, Motion3D(translation_x=10))
    dy, dx = shift_of(image, moved)
    expected = 10 / 200 / math.tan(math.radians(35)) * 48  # grid units -> pixels
    assert dx == pytest.approx(-expected, abs=0.4) and abs(dy) < 0.3
    panned, _ = warp_3d(image, FLAT, Motion3D(rotation_y=3))
    dy, dx = shift_of(image, panned)
    assert abs(dx) > 2 and abs(dy) < 0.3


def test_3d_near_pixels_move_more_than_far_ones() -> None:
    image = texture()
    depth = torch.full((1, 1, 96, 96), 2.0)
    depth[..., :, :48] = 1.0  # left half near
    moved, _ = warp_3d(image, depth, Motion3D(translation_x=10), sampling_mode="bilinear")
    pixels = 10 / 200 / math.tan(math.radians(35)) * 48  # the shift at depth 1, in pixels
    near, far = (..., slice(8, 88), slice(8, 40)), (..., slice(8, 88), slice(56, 88))
    for region, depth_value in ((near, 1.0), (far, 2.0)):
        right = warp_2d(image, Motion2D(translation_x=-pixels / depth_value))
        wrong = warp_2d(image, Motion2D(translation_x=-pixels / (3 - depth_value)))
        assert (moved - right)[region].abs().mean() < 0.3 * (moved - wrong)[region].abs().mean()


def test_depth_estimator_loads_lazily_and_maps_near_to_one(tmp_path) -> None:
    tiny_depth_model = save_tiny_depth_model(tmp_path)
    estimator = DepthEstimator(str(tiny_depth_model), torch.device("cpu"), local_only=True)  # as with --local-only
    assert estimator._loaded is None
    depth = estimator.depth(texture(64, 96))
    assert depth.shape == (1, 1, 64, 96) and float(depth.min()) == pytest.approx(1.0) and float(depth.max()) == 2.0
    half = DepthEstimator(str(tiny_depth_model), torch.device("cpu"), dtype=torch.bfloat16)  # the model's dtype
    assert (half.depth(texture(64, 96)) - depth).abs().mean() < 0.1 and half._loaded[0].dtype == torch.bfloat16
    flat = DepthEstimator("none", torch.device("cpu")).depth(texture(64, 64))
    assert torch.equal(flat, torch.ones(1, 1, 64, 64))
    with pytest.raises(SdplayError, match="could not load depth model .*: folder not found.*--depth-model none"):
        DepthEstimator(str(tiny_depth_model / "missing"), torch.device("cpu"))  # at once, not at the first 3D frame
    unreachable = DepthEstimator("nobody/no-such-depth-model", torch.device("cpu"), local_only=True)
    with pytest.raises(SdplayError, match="could not load depth model .*no network or a wrong id.*--depth-model none"):
        unreachable.depth(texture())


def test_compile_covers_the_depth_model_and_keeps_its_depth(tmp_path) -> None:
    tiny_depth_model = str(save_tiny_depth_model(tmp_path))
    frame = texture(64, 96)
    compiled = DepthEstimator(tiny_depth_model, torch.device("cpu"), compile=True)
    depth = compiled.depth(frame)
    assert type(compiled._loaded[0]).__name__ == "OptimizedModule"
    assert (depth - DepthEstimator(tiny_depth_model, torch.device("cpu")).depth(frame)).abs().max() < 1e-2


def test_equalised_depth_spreads_evenly() -> None:
    skewed = torch.linspace(0, 1, 10_000).pow(6).reshape(1, 1, 100, 100)
    flat_histogram = torch.histc(equalise(skewed), bins=4, min=0, max=1)
    assert flat_histogram.min() > 0.2 * skewed.numel()
