"""Files uploaded through the studio page: checked by type and content, then kept in the output folder."""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path

from nerfhead.capture.pipeline import probe_capture
from nerfhead.errors import InputError
from nerfhead.io.media import open_media
from nerfhead.render.driven import AUDIO_SUFFIXES as SPEECH_SUFFIXES

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v")
#: what a render takes as speech: audio files and the sound of video files
SPEECH = tuple(sorted(set(SPEECH_SUFFIXES) | set(VIDEO_SUFFIXES)))
#: the largest upload the page takes (a few minutes of 1080p capture fit)
MAX_UPLOAD_BYTES = 2 * 1024**3


def _shown(message: str, path: Path, name: str) -> str:
    """The error message with the server's temporary path replaced by the name the user uploaded."""
    return message.replace(str(path), name)


def check_upload(path: str | Path, name: str, kind: str) -> None:
    """Refuse anything but a readable video (``kind`` "video": with an audio track) or audio file."""
    path = Path(path)
    allowed = VIDEO_SUFFIXES if kind == "video" else SPEECH
    suffix = Path(name).suffix.lower()
    if suffix not in allowed:
        what = "a video" if kind == "video" else "an audio or video file"
        raise InputError(f"{name}: expected {what} ({', '.join(allowed)}), got '{suffix or 'no extension'}'")
    if path.stat().st_size > MAX_UPLOAD_BYTES:
        raise InputError(f"{name} is larger than {MAX_UPLOAD_BYTES // 1024**3} GiB")
    try:
        if kind == "video":
            probe_capture(path)
        else:
            with open_media(path) as container:
                if not container.streams.audio:
                    raise InputError(f"{path} has no audio track")
    except InputError as exc:
        raise InputError(_shown(str(exc), path, name)) from None


def keep_upload(path: str | Path, name: str, folder: Path, kind: str) -> Path:
    """Check an upload and copy it into ``folder`` under a fresh name; return the copy."""
    check_upload(path, name, kind)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(name).stem)[:40] or "upload"
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / f"{uuid.uuid4().hex[:8]}-{stem}{Path(name).suffix.lower()}"
    shutil.copyfile(path, dest)
    return dest
