"""Files out of a zip archive held in memory, each bounded: the reports inside a CI artifact.

Read with :mod:`zipfile`, never extracted to disk. Names that could climb
out of a folder if extracted (absolute, ``..``, a drive letter), symbolic
links, folders and encrypted entries are not read. Each entry's size is
checked twice: the size its header declares, before reading, and the bytes
it really inflates to, read no further than the limit (a zip bomb stops
there; a header that lies fails zipfile's CRC check).
"""

from __future__ import annotations

import re
import stat
import time
import zipfile
import zlib
from collections.abc import Iterator
from io import BytesIO

from wcmatch import glob

from collectors.evidence import SourceFault
from collectors.gitrepo import GLOB_FLAGS

__all__ = ["zip_entries"]

_DRIVE = re.compile(r"^[A-Za-z]:")
# What a damaged or unsupported archive raises from zipfile and its decompressors.
_BROKEN = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError, OSError)


def _unsafe(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    return name.startswith(("/", "\\")) or ".." in parts or bool(_DRIVE.match(name)) or "\x00" in name


def zip_entries(data: bytes, pattern: str, *, max_entry_bytes: int, name: str,
                deadline: float | None = None) -> Iterator[tuple[str, bytes]]:
    """(entry name, bytes) of each file in the zip `data` whose name matches the glob `pattern`, in name order.

    `name` says which archive in messages. Raises SourceFault: ``malformed``
    (not a zip, damaged, encrypted), ``too_large`` (an entry over
    `max_entry_bytes`), ``timeout`` (past the monotonic `deadline`).
    """
    try:
        archive = zipfile.ZipFile(BytesIO(data))
    except _BROKEN as exc:
        raise SourceFault("malformed", f"{name}: not a readable zip archive ({exc})") from None
    with archive:
        chosen = sorted((info for info in archive.infolist()
                         if not info.is_dir() and not stat.S_ISLNK(info.external_attr >> 16)
                         and not _unsafe(info.filename) and glob.globmatch(info.filename, pattern, flags=GLOB_FLAGS)),
                        key=lambda info: info.filename)
        for info in chosen:
            if deadline is not None and time.monotonic() > deadline:
                raise SourceFault("timeout", f"{name}: not read within the deadline (at {info.filename})",
                                  retryable=True)
            yield info.filename, _read(archive, info, max_entry_bytes, name)


def _read(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, name: str) -> bytes:
    where = f"{info.filename} in {name}"
    if info.flag_bits & 0x1:
        raise SourceFault("malformed", f"{where}: encrypted")
    if info.file_size > limit:
        raise SourceFault("too_large", f"{where}: declares {info.file_size} bytes uncompressed, over max_bytes={limit}")
    try:
        with archive.open(info) as entry:
            body = entry.read(limit + 1)
    except _BROKEN as exc:
        raise SourceFault("malformed", f"{where}: cannot be read ({exc})") from None
    if len(body) > limit:
        raise SourceFault("too_large", f"{where}: inflates past max_bytes={limit}")
    return body
