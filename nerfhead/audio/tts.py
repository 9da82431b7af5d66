"""Text to speech for scripts: a script in, a 16 kHz wav with each sentence's time span out.

:func:`synthesize` speaks ``text`` (or the contents of ``text_file``) sentence by sentence with a
voice of :mod:`nerfhead.audio.voices` (piper's natural English voice when installed, espeak-ng for
every other language), writing the sentences to the wav as they come (memory stays flat for long
scripts), and returns the sentences' spans, which forced alignment then uses sentence by sentence.
English scripts are first put in words (:mod:`nerfhead.audio.normalize`: "3.5 %" -> "three point
five percent"), so the voice and the aligner read the same words. Results are cached by (text,
voice, rate, engine version), so re-rendering the same script does not speak it again.

espeak-ng voices default to the Klatt variant, whose speech pocketsphinx's acoustic model follows
best (phone recognition agrees with forced alignment on 78 % of speech frames at viseme level,
against 53-64 % for the default, f3 and en-gb variants; 18 sentences). Rate: words per minute,
80-450 (espeak-ng's range), default 160 (piper: the voice's own pace).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
import wave
from dataclasses import dataclass, field
from pathlib import Path


from nerfhead.audio.cache import cache_root
from nerfhead.audio.g2p import words_of
from nerfhead.audio.normalize import normalize_english
from nerfhead.audio.voices import NORMAL_RATE, Voice, resolve_voice
from nerfhead.errors import InputError
from nerfhead.io.audio import load_audio, pcm16
from nerfhead.io.files import atomic_path

DEFAULT_RATE = NORMAL_RATE
RATE_RANGE = (80, 450)
SAMPLE_RATE = 16000
MAX_CHARS = 200_000


@dataclass
class Speech:
    """A synthesised script: the wav, the words spoken (after normalisation), the voice's name
    (``engine:voice``) and language, and per sentence its text and time span in seconds."""

    path: Path
    text: str
    voice: str
    rate: int
    language: str
    sentences: list[tuple[float, float, str]] = field(default_factory=list)


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


def spoken_text(script: str, voice: Voice) -> str:
    """The words ``voice`` is given for ``script``: English put in words, other languages as written."""
    return normalize_english(script) if voice.english else script


def synthesize(text: str | None = None, text_file: str | Path | None = None, voice: str | None = None,
               rate: int | None = None, out: str | Path | None = None, cache: bool = True) -> Speech:
    """Speak a script -> :class:`Speech` (16 kHz mono wav + sentence spans).

    The wav goes to ``out`` if given, else into the cache (``<cache>/tts``).
    """
    script = read_script(text, text_file)
    speaker, rate = resolve_voice(voice), resolve_rate(rate)
    script = spoken_text(script, speaker)
    key = hashlib.sha256(json.dumps([script, speaker.name, rate, speaker.version()]).encode()).hexdigest()[:32]
    cached_wav = cache_root() / "tts" / f"{key}.wav"
    cached_meta = cached_wav.with_suffix(".json")
    target = Path(out) if out is not None else cached_wav
    result = dict(text=script, voice=speaker.name, rate=rate, language=speaker.language)
    if cache and cached_wav.is_file() and cached_meta.is_file():
        try:
            spans = [tuple(s) for s in json.loads(cached_meta.read_text())["sentences"]]
            if out is not None:
                _copy_atomic(cached_wav, target)
            return Speech(path=target, sentences=spans, **result)
        except (ValueError, KeyError, OSError):
            pass  # a damaged cache entry: speak again

    written = cached_wav if cache else target
    spans = _speak_to(written, speaker, split_sentences(script), rate)
    if cache:
        with atomic_path(cached_meta) as tmp_meta:
            tmp_meta.write_text(json.dumps({"voice": speaker.name, "rate": rate, "sentences": spans}))
        if target != cached_wav:
            _copy_atomic(cached_wav, target)
    return Speech(path=target, sentences=spans, **result)


def _copy_atomic(source: Path, target: Path) -> None:
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)


def _speak_to(path: Path, voice: Voice, sentences: list[str], rate: int) -> list[tuple[float, float, str]]:
    """Speak ``sentences`` one after another into the 16 kHz wav ``path`` (atomically); their spans."""
    spans: list[tuple[float, float, str]] = []
    t = 0
    with tempfile.TemporaryDirectory(prefix="nerfhead-tts-") as tmp, atomic_path(path) as part:
        one = Path(tmp) / "s.wav"
        with wave.open(str(part), "wb") as writer:
            writer.setnchannels(1)
            writer.setsampwidth(2)
            writer.setframerate(SAMPLE_RATE)
            for sentence in sentences:
                voice.speak(sentence, rate, one)
                samples = load_audio(one, SAMPLE_RATE)
                one.unlink()
                writer.writeframes(pcm16(samples))
                spans.append((t / SAMPLE_RATE, (t + samples.size) / SAMPLE_RATE, sentence))
                t += samples.size
    return spans
