"""Open media files with PyAV and turn its errors into one-line user errors."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import av

from nerfhead.errors import InputError

# Demuxers that PyAV uses for single images; such a file is "an image given as video".
IMAGE_FORMATS = ("image2", "png_pipe", "jpeg_pipe", "bmp_pipe", "webp_pipe", "tiff_pipe", "gif", "jpegls_pipe")


@contextmanager
def open_media(path: str | Path) -> Iterator[av.container.InputContainer]:
    """Open ``path`` for reading, raising InputError for missing or unreadable files."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"file not found: {path}")
    if path.is_dir():
        raise InputError(f"expected a media file, got a folder: {path}")
    if path.stat().st_size == 0:
        raise InputError(f"file is empty: {path}")
    try:
        container = av.open(str(path), mode="r")
    except av.FFmpegError as exc:
        raise InputError(f"cannot read {path} as audio/video ({error_reason(exc)})") from None
    try:
        yield container
    finally:
        container.close()


def error_reason(exc: Exception) -> str:
    """The first clause of a decoder error, for a one-line message."""
    text = getattr(exc, "strerror", None) or str(exc)
    return text.split(";")[0].strip() or type(exc).__name__


def is_image_container(container: av.container.InputContainer) -> bool:
    names = container.format.name.split(",")
    return any(n in IMAGE_FORMATS for n in names)
