"""Input files named by an http(s) URL, as Deforum files often name their video or init picture: each URL is
downloaded once into a cache folder (the system's temporary folder) and read from there, so a resumed run
reads the same bytes. A download that fails is one line naming the key, the URL and why.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from .errors import SdplayError

CACHE = Path(tempfile.gettempdir()) / "sdplay-downloads"
TIMEOUT = 60  # seconds without a byte before a download is given up


def is_url(location: str | Path) -> bool:
    return isinstance(location, str) and location.strip().lower().startswith(("http://", "https://"))


def local_file(location: str | Path, key: str) -> Path:
    """A local path as it is; a URL -> its downloaded copy (downloaded now unless already cached)."""
    if not is_url(location):
        return Path(location)
    url = str(location).strip()
    try:
        suffix = PurePosixPath(urlsplit(url).path).suffix
    except ValueError as exc:  # a malformed address, such as an unclosed [IPv6 bracket
        raise SdplayError(f"{key}: cannot download {url}: {exc}") from None
    suffix = suffix if re.fullmatch(r"\.[A-Za-z0-9]{1,8}", suffix) else ""
    target = CACHE / (hashlib.sha256(url.encode()).hexdigest()[:24] + suffix)
    if target.is_file():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = tempfile.NamedTemporaryFile(dir=CACHE, prefix=".partial-", delete=False)  # noqa: SIM115 - renamed
    try:
        with partial, urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            shutil.copyfileobj(response, partial)
        os.replace(partial.name, target)  # whole, or not there at all
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise SdplayError(f"{key}: cannot download {url}: {_reason(exc)}") from None
    finally:
        Path(partial.name).unlink(missing_ok=True)
    return target


def _reason(exc: Exception) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        reason = exc.reason
        return getattr(reason, "strerror", None) or str(reason)
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
