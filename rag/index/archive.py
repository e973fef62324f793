"""A guard against zip bombs, run before python-docx or ebooklib open a DOCX or EPUB (both are zip files)."""

from __future__ import annotations

import io
import zipfile

from ..errors import SourceError

MAX_ENTRIES = 10_000
MAX_UNZIPPED_BYTES = 512 * 1024 * 1024
# Text and XML compress about 3-10x, and images hardly at all; a ratio of 100 is compression of repeated bytes.
MAX_RATIO = 100
RATIO_FLOOR_BYTES = 10 * 1024 * 1024  # small archives can't hurt, whatever their ratio


def open_zip(data: bytes, *, name: str, kind: str) -> zipfile.ZipFile:
    """The archive, after checking its declared sizes; a SourceError when it is broken or a bomb.

    The declared sizes can be trusted as an upper bound: zipfile stops every entry at its declared size
    and checks its CRC, so an entry that lies about its size fails to read instead of expanding further.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError):
        raise SourceError(f"{name}: the {kind} file is damaged or truncated (not a valid zip archive).") from None
    total = sum(info.file_size for info in infos)
    packed = max(sum(info.compress_size for info in infos), 1)
    if (
        len(infos) > MAX_ENTRIES
        or total > MAX_UNZIPPED_BYTES
        or (total > RATIO_FLOOR_BYTES and total / packed > MAX_RATIO)
    ):
        raise SourceError(
            f"{name}: the {kind} file would expand to {total:,} bytes from {len(data):,} (a zip bomb?); it is not opened."
        )
    return archive
