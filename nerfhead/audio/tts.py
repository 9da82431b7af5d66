"""Text to speech for scripts, through espeak-ng (a Debian package that `make install` adds).

:func:`synthesize` speaks ``text`` (or the contents of ``text_file``) sentence by sentence and
returns a 16 kHz mono wav with each sentence's time span, which forced alignment then uses
sentence by sentence. Results are cached by (text, voice, rate, espeak-ng version), so
re-rendering the same script does not speak it again.

Voice: any espeak-ng voice name (``espeak-ng --voices``), e.g. ``en-us``, ``en-gb``, ``de``,
``fr``, ``es``, ``cmn``; a ``+variant`` picks the voice quality (``de+f3``). Without a variant
``+klatt`` is used: espeak-ng's Klatt synthesiser, whose speech pocketsphinx's acoustic model
follows best (phone recognition agrees with forced alignment on 78 % of speech frames at viseme
level, against 53-64 % for the default, f3 and en-gb variants; 18 sentences). Rate: words per
minute, 80-450 (espeak-ng's range), default 160.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from nerfhead.audio.cache import cache_root
from nerfhead.audio.g2p import words_of
from nerfhead.errors import InputError
from nerfhead.io.audio import load_audio, save_wav
from nerfhead.io.files import atomic_path

DEFAULT_VOICE = "en-us"
DEFAULT_VARIANT = "klatt"
DEFAULT_RATE = 160
RATE_RANGE = (80, 450)
SAMPLE_RATE = 16000
MAX_CHARS = 200_000


@dataclass
class Speech:
    """A synthesised script: the wav and, per sentence, its text and time span in seconds."""

    path: Path
    text: str
    voice: str
    rate: int
    sentences: list[tuple[float, float, str]] = field(default_factory=list)

    @property
    def language(self) -> str:
        return self.voice.split("+")[0]


def espeak_path() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise InputError("espeak-ng is not installed, so --text cannot be spoken: run `make install` "
                         "(or `apt-get install espeak-ng`), or give an audio file instead")
    return exe


@lru_cache(maxsize=1)
def espeak_version() -> str:
    try:
        out = subprocess.run([espeak_path(), "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.strip().split("Data at")[0].strip()


def read_script(text: str | None = None, text_file: str | Path | None = None) -> str:
    """The script from ``--text`` or ``--text-file`` (exactly one), checked to have words."""
    if text is not None and text_file is not None:
        raise InputError("give either --text or --text-file, not both")
    if text_file is not None:
        path = Path(text_file)
        if not path.is_file():
            raise InputError(f"text file not found: {path}")
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            raise InputError(f"{path} is not UTF-8 text") from None
        where = str(path)
    else:
        where = "--text"
    if text is None:
        raise InputError("no text given: use --text \"...\" or --text-file script.txt")
    if len(text) > MAX_CHARS:
        raise InputError(f"{where} has {len(text):,} characters; split scripts longer than {MAX_CHARS:,}")
    if not words_of(text):
        raise InputError(f"{where} is empty: give the words to speak")
    return text


def resolve_voice(voice: str | None) -> str:
    voice = (voice or DEFAULT_VOICE).strip()
    if not re.fullmatch(r"[A-Za-z0-9_\-/]+(\+[A-Za-z0-9_\-]+)?", voice):
        raise InputError(f"voice {voice!r} is not an espeak-ng voice name (e.g. en-us, de, fr+f3)")
    return voice if "+" in voice else f"{voice}+{DEFAULT_VARIANT}"


def resolve_rate(rate: int | None) -> int:
    rate = DEFAULT_RATE if rate is None else int(rate)
    lo, hi = RATE_RANGE
    if not lo <= rate <= hi:
        raise InputError(f"speech rate {rate} words/minute is outside {lo}-{hi}")
    return rate


def split_sentences(text: str) -> list[str]:
    """Sentences (and lines) of ``text`` that contain words."""
    parts = re.split(r"(?<=[.!?;。！？；])\s+|\n+", text)
    return [p.strip() for p in parts if words_of(p)]


def synthesize(text: str | None = None, text_file: str | Path | None = None, voice: str | None = None,
               rate: int | None = None, out: str | Path | None = None, cache: bool = True) -> Speech:
    """Speak a script with espeak-ng -> :class:`Speech` (16 kHz mono wav + sentence spans).

    The wav goes to ``out`` if given, else into the cache (``<cache>/tts``).
    """
    script = read_script(text, text_file)
    voice, rate = resolve_voice(voice), resolve_rate(rate)
    exe = espeak_path()
    key = hashlib.sha256(json.dumps([script, voice, rate, espeak_version()]).encode()).hexdigest()[:32]
    cached_wav = cache_root() / "tts" / f"{key}.wav"
    cached_meta = cached_wav.with_suffix(".json")
    target = Path(out) if out is not None else cached_wav
    if cache and cached_wav.is_file() and cached_meta.is_file():
        try:
            spans = [tuple(s) for s in json.loads(cached_meta.read_text())["sentences"]]
            if out is not None:
                shutil.copyfile(cached_wav, target)
            return Speech(path=target, text=script, voice=voice, rate=rate, sentences=spans)
        except (ValueError, KeyError, OSError):
            pass  # a damaged cache entry: speak again

    pieces: list[np.ndarray] = []
    spans: list[tuple[float, float, str]] = []
    t = 0
    with tempfile.TemporaryDirectory(prefix="nerfhead-tts-") as tmp:
        wav = Path(tmp) / "s.wav"
        for sentence in split_sentences(script):
            try:
                res = subprocess.run([exe, "-v", voice, "-s", str(rate), "-w", str(wav), "--stdin"],
                                     input=sentence, capture_output=True, text=True, timeout=600)
            except (OSError, subprocess.SubprocessError) as exc:
                raise InputError(f"espeak-ng failed: {exc}") from None
            if res.returncode != 0 or not wav.is_file() or wav.stat().st_size <= 44:
                detail = (res.stderr or res.stdout).strip().splitlines()
                why = detail[-1] if detail else f"exit code {res.returncode}"
                raise InputError(f"espeak-ng could not speak with voice {voice!r} ({why}); "
                                 "see `espeak-ng --voices` for names")
            samples = load_audio(wav, SAMPLE_RATE)
            pieces.append(samples)
            spans.append((t / SAMPLE_RATE, (t + samples.size) / SAMPLE_RATE, sentence))
            t += samples.size
            wav.unlink()
    samples = np.concatenate(pieces)
    save_wav(target, samples, SAMPLE_RATE)
    if cache:
        if target != cached_wav:
            save_wav(cached_wav, samples, SAMPLE_RATE)
        with atomic_path(cached_meta) as tmp_meta:
            tmp_meta.write_text(json.dumps({"voice": voice, "rate": rate, "sentences": spans}))
    return Speech(path=target, text=script, voice=voice, rate=rate, sentences=spans)
