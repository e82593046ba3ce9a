"""Files clients send (init pictures, masks, audio, videos, settings files), kept under the output
root in `uploads/<id>/<name>` and named in settings as `upload:<id>`."""

from __future__ import annotations

import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..errors import SdplayError

UPLOADS = "uploads"
ID_PATTERN = re.compile(r"^[0-9a-f]{16}$")
CHUNK = 1 << 20


@dataclass(frozen=True)
class Upload:
    id: str
    name: str
    size: int
    path: Path

    @property
    def ref(self) -> str:
        return f"upload:{self.id}"

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "size": self.size, "ref": self.ref}


class Uploads:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.folder = root / UPLOADS
        self.max_bytes = max_bytes

    def save(self, filename: str | None, stream: BinaryIO) -> Upload:
        """Copy an uploaded file in, refusing it (and keeping nothing) past the size limit."""
        name = safe_name(filename)
        upload_id = uuid.uuid4().hex[:16]
        folder = self.folder / upload_id
        folder.mkdir(parents=True)
        path = folder / name
        size = 0
        try:
            with path.open("xb") as out:
                while chunk := stream.read(CHUNK):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise SdplayError(f"upload {name}: larger than this server allows ({self.max_mb:g} MiB)")
                    out.write(chunk)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return Upload(upload_id, name, size, path)

    def path(self, upload_id: str) -> Path:
        """The file of upload `upload_id`, or a one-line refusal."""
        folder = self.folder / upload_id
        files = sorted(folder.iterdir()) if ID_PATTERN.match(upload_id) and folder.is_dir() else []
        if len(files) != 1 or not files[0].is_file() or files[0].is_symlink():
            raise SdplayError(f"no upload {upload_id!r} on this server; send the file to POST /uploads first")
        return files[0]

    def discard(self, ref: str) -> None:
        upload_id = ref.removeprefix("upload:")
        if ID_PATTERN.match(upload_id):
            shutil.rmtree(self.folder / upload_id, ignore_errors=True)

    @property
    def max_mb(self) -> float:
        return self.max_bytes / 2**20


def safe_name(filename: str | None) -> str:
    """The last part of a client's file name, with only plain characters; its suffix says the file's kind."""
    base = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._") or "upload"
    return name[-100:]
