"""Outputs: never overwrite, and PNG metadata other tools can read back."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PIL import Image

from sdplay.errors import SdplayError
from sdplay.output import (
    BackgroundWriter,
    ClassicFolder,
    Picture,
    RunFolder,
    finished_frames,
    format_parameters,
    new_run_dir,
    parse_parameters,
    read_parameters,
)


def test_parameters_round_trip() -> None:
    text = format_parameters(
        "a red circle", "blurry", {"Steps": 20, "Sampler": "ddim", "CFG scale": 5.0, "Seed": 7, "Size": "64x64"}
    )
    assert text.splitlines()[1] == "Negative prompt: blurry"
    parsed = parse_parameters(text)
    assert parsed["prompt"] == "a red circle" and parsed["negative"] == "blurry"
    assert (parsed["Steps"], parsed["Sampler"], parsed["Seed"], parsed["Size"]) == ("20", "ddim", "7", "64x64")


def test_run_folders_and_frames_never_overwrite(tmp_path) -> None:
    first = new_run_dir(tmp_path, "txt2img", "A Red Circle!")
    second = new_run_dir(tmp_path, "txt2img", "A Red Circle!")
    assert first != second and first.name.endswith("a-red-circle")
    folder = RunFolder.create(tmp_path, "txt2img", "x")
    folder.write_settings({"prompt": "x"})
    (folder.path / "0001.png").write_bytes(b"someone else's file")
    image = Image.new("RGB", (8, 8), "red")
    assert folder.save(Picture.of(0, "x\nNegative prompt: \nSeed: 1", image)).name == "0000.png"
    with pytest.raises(SdplayError, match="already exists"):
        folder.save(Picture.of(1, "x", image))
    with pytest.raises(SdplayError, match="already exists"):
        folder.write_settings({"prompt": "y"})
    assert (folder.path / "0001.png").read_bytes() == b"someone else's file"
    assert read_parameters(folder.path / "0000.png")["Seed"] == "1"


def test_classic_images_folder_takes_the_next_free_number(tmp_path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "image_0.png").write_bytes(b"old")
    path = ClassicFolder(folder).save(Picture.of(0, "x", Image.new("RGB", (8, 8))))
    assert path.name == "image_1.png" and (folder / "image_0.png").read_bytes() == b"old"


def test_background_writes_come_back_in_order_and_all_finish(tmp_path) -> None:
    def write(n: int) -> Path:
        time.sleep(0.05 if n in (0, 3) else 0)  # slow writes: later ones overtake them
        if n == 3:
            raise OSError("disk full")
        path = tmp_path / f"{n}.txt"
        path.write_text(str(n))
        return path

    handed: list[int] = []
    with pytest.raises(OSError, match="disk full"), BackgroundWriter(write, workers=2, depth=2) as writer:
        for n in range(6):
            handed += [item for item, _ in writer.submit(n)]
        handed += [item for item, _ in writer.finish()]
    assert handed == [0, 1, 2]  # in order, up to the failed write, which raises in the caller
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0.txt", "1.txt", "2.txt", "4.txt", "5.txt"]  # all queued


def test_an_interrupted_run_keeps_the_frames_finished_in_a_row(tmp_path) -> None:
    for n in (0, 1, 3, 4):
        Image.new("RGB", (8, 8), "red").save(tmp_path / f"{n:04d}.png")
    (tmp_path / "0004.png").write_bytes((tmp_path / "0004.png").read_bytes()[:20])  # cut off mid-write
    (tmp_path / "settings.json").write_text("{}")
    assert finished_frames(tmp_path) == 2  # 0002.png was never written: 0003 and 0004 are made again
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0000.png", "0001.png", "settings.json"]


def test_a_frame_on_disk_has_its_extras_even_when_the_run_is_killed_in_between(tmp_path) -> None:
    folder = RunFolder(tmp_path)
    red, depth = Image.new("RGB", (8, 8), (255, 0, 0)), Image.new("L", (8, 8), 128)

    def killed() -> Image.Image:
        raise KeyboardInterrupt  # the run stops after the depth map, before the frame

    with pytest.raises(KeyboardInterrupt):
        folder.save(Picture(0, "red", killed, lambda: {"depth": depth}))
    assert folder.finished() == 0  # no frame: the resumed run makes frame 0 again
    (tmp_path / "depth" / "0000.png").write_bytes(b"\x89PNG cut")  # as if the kill came mid-write
    assert folder.save(Picture(0, "red", lambda: red, lambda: {"depth": depth})) == tmp_path / "0000.png"
    assert folder.finished() == 1 and Image.open(tmp_path / "depth" / "0000.png").getpixel((0, 0)) == 128


def test_a_frame_made_again_is_saved_once_and_a_cut_off_one_is_replaced(tmp_path) -> None:
    folder = RunFolder(tmp_path)
    red, blue = Image.new("RGB", (8, 8), (255, 0, 0)), Image.new("RGB", (8, 8), (0, 0, 255))
    depth = Image.new("L", (8, 8), 128)
    first = folder.save_once(Picture(0, "red", lambda: red, lambda: {"depth": depth}))
    assert first == tmp_path / "0000.png" and (tmp_path / "depth" / "0000.png").is_file()
    assert folder.save_once(Picture.of(0, "blue", blue)) is None  # a whole frame stays as it is
    assert Image.open(first).getpixel((0, 0)) == (255, 0, 0)
    (tmp_path / "0001.png").write_bytes(first.read_bytes()[:40])  # cut off mid-write by a kill
    assert folder.save_once(Picture.of(1, "blue", blue)) == tmp_path / "0001.png"
    assert Image.open(tmp_path / "0001.png").getpixel((0, 0)) == (0, 0, 255)
    folder.write_settings({"prompt": "red"})
    copy = folder.files()  # what a farm worker gets to continue the run from
    assert sorted(copy) == ["0000.png", "0001.png", "depth/0000.png", "settings.json"]
    assert copy["depth/0000.png"] == (tmp_path / "depth" / "0000.png").read_bytes()
