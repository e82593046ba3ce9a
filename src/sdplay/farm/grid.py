"""X/Y(/Z) contact sheets of a sweep: each job's first picture in a cell, the axis values written
beside the rows and above the columns, one sheet per z value, side by side."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from ..output import save_png
from .manifest import GridRecord, JobRecord

BACKGROUND = (255, 255, 255)
INK = (0, 0, 0)


def label(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _values(records: Sequence[JobRecord], axis: str) -> list[Any]:
    """An axis' values in the order the sweep made them."""
    seen: list[Any] = []
    for record in records:
        if record.axes[axis] not in seen:
            seen.append(record.axes[axis])
    return seen


def contact_sheet(records: Sequence[JobRecord], axes: Sequence[str]) -> Image.Image:
    """The sheet of finished jobs' first pictures; the axes are 1 to 3 swept settings (x, y, z)."""
    axes3 = (list(axes) + [None, None])[:3]
    x_axis, y_axis, z_axis = axes3
    xs = _values(records, x_axis)
    ys = _values(records, y_axis) if y_axis else [None]
    zs = _values(records, z_axis) if z_axis else [None]
    cells = {}
    for record in records:
        key = tuple(repr(record.axes[a]) if a else None for a in (x_axis, y_axis, z_axis))
        with Image.open(record.paths[0]) as image:
            cells[key] = image.convert("RGB")
    width, height = next(iter(cells.values())).size
    font = ImageFont.load_default(size=max(12, height // 12))
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def text_size(text: str) -> tuple[int, int]:
        left, top, right, bottom = measure.textbbox((0, 0), text, font=font)
        return right - left, bottom - top

    pad = max(4, height // 32)
    line = text_size("Ag")[1] + 2 * pad
    row_labels = [f"{y_axis}: {label(y)}" for y in ys] if y_axis else []
    margin = max((text_size(text)[0] for text in row_labels), default=0) + 2 * pad if y_axis else 0
    top = line + (line if z_axis else 0)
    sheet_w, sheet_h = margin + width * len(xs), top + height * len(ys)
    sheet = Image.new("RGB", (sheet_w * len(zs) + pad * (len(zs) - 1), sheet_h), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for k, z in enumerate(zs):
        left = k * (sheet_w + pad)
        if z_axis:
            draw.text((left + margin + pad, pad), f"{z_axis}: {label(z)}", fill=INK, font=font)
        for i, x in enumerate(xs):
            draw.text((left + margin + i * width + pad, top - line + pad), f"{x_axis}: {label(x)}", fill=INK, font=font)
        for j, y in enumerate(ys):
            if y_axis:
                middle = top + j * height + height // 2 - line // 2 + pad
                draw.text((left + pad, middle), row_labels[j], fill=INK, font=font)
            for i, x in enumerate(xs):
                cell = cells.get(tuple(repr(v) if a else None for a, v in zip(axes3, (x, y, z), strict=True)))
                if cell is not None:
                    sheet.paste(cell.resize((width, height)), (left + margin + i * width, top + j * height))
    return sheet


def write_grid(folder: Path, grid: GridRecord, records: Sequence[JobRecord]) -> Path | None:
    """The entry's sheet as grid-<entry>.png in the batch folder, once every job of it is done."""
    mine = [record for record in records if record.entry == grid.entry]
    if not mine or any(record.state != "done" or not record.paths for record in mine):
        return None
    sheet = contact_sheet(mine, grid.axes)
    described = ", ".join(f"{name}: {', '.join(map(label, _values(mine, name)))}" for name in grid.axes)
    return save_png(sheet, lambda n: folder / f"grid-{grid.entry + 1}{'' if n == 0 else f'-{n}'}.png", 0, described)
