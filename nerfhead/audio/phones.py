"""Phone segmentation with the en-us acoustic model that ships inside pocketsphinx.

Two ways, both at 100 Hz:

* :func:`allphone` - phone recognition with the bundled phone language model
  (``en-us-phone.lm.bin``); needs only the audio, works (as English phones) on any language.
* :func:`align` - forced alignment of known text (a TTS script or a transcript): the words are
  pronounced by :mod:`nerfhead.audio.g2p`, aligned word by word (first pass), then phone by phone
  (second pass, ``Decoder.set_alignment``).

Segments are ``(phone, first, last)`` with inclusive frame indices in *our* convention: frame
``k`` is centred on time ``k / 100`` s. pocketsphinx's frame ``j`` covers samples
``[160 j, 160 j + 410)``, centred 12.8 ms after ``j / 100``, so its frames are shifted by
``FRAME_OFFSET = 1`` (2.8 ms residual).

Two details make the model behave on synthetic speech: a constant -70 dBFS dither is added to
the 16-bit input (espeak-ng writes exact digital zeros between words, which breaks the
recogniser's cepstral normalisation), and the alignment search runs with ``bestpath=False``
(lattice rescoring may pick a word path the phone pass cannot follow). The phone language
model weight ``lw=1`` was chosen on 18 espeak-ng utterances (6 sentences x 3 voices), not on
the test sentence.

Phone recognition is the slow part (about 20 x real time per core), so :func:`allphone_many`
spreads blocks over ``min(2, cpu_count)`` worker processes (``NERFHEAD_AUDIO_WORKERS`` sets the
number; 0 decodes in this process).
"""

from __future__ import annotations

import atexit
import os
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import lru_cache
from typing import Iterable, Iterator

import numpy as np

from nerfhead.audio.g2p import is_english, pronounce, words_of
from nerfhead.errors import NerfheadError
from nerfhead.log import get_logger

log = get_logger(__name__)

FRAME_OFFSET = 1
DITHER_RMS = 3e-4  # -70 dBFS
LANGUAGE_WEIGHT = 1.0
Segment = tuple[str, int, int]


class AlignmentError(NerfheadError):
    """The text could not be aligned to the audio."""


def _ps():
    import pocketsphinx

    return pocketsphinx


def to_pcm(samples: np.ndarray) -> bytes:
    """16-bit little-endian PCM of ``samples`` with the fixed, seeded dither added."""
    x = np.asarray(samples, np.float32).reshape(-1)
    noise = np.random.default_rng(1234).normal(0.0, DITHER_RMS, x.size).astype(np.float32)
    return (np.clip(x + noise, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


@lru_cache(maxsize=1)
def _allphone_decoder():
    ps = _ps()
    return ps.Decoder(allphone=ps.get_model_path("en-us/en-us-phone.lm.bin"), lw=LANGUAGE_WEIGHT,
                      loglevel="FATAL")


def _shift(segs, offset: int) -> list[Segment]:
    return [(str(p), int(s) + offset, int(e) + offset) for p, s, e in segs]


def _allphone_pcm(pcm: bytes) -> list[tuple[str, int, int]]:
    dec = _allphone_decoder()
    dec.reinit_feat()  # forget the noise estimate of the last utterance: same audio, same phones
    dec.start_utt()
    dec.process_raw(pcm, full_utt=True)
    dec.end_utt()
    return [(s.word, s.start_frame, s.end_frame) for s in dec.seg()]


def allphone(samples: np.ndarray) -> list[Segment]:
    """Recognised phones of 16 kHz mono ``samples`` (frame 0 = the first sample's time)."""
    if np.asarray(samples).size < 1600:  # under 0.1 s: nothing to recognise
        return []
    return _shift(_allphone_pcm(to_pcm(samples)), FRAME_OFFSET)


# ---------------------------------------------------------------- parallel phone recognition

_POOL: ProcessPoolExecutor | None = None
_POOL_FAILED = False  # workers could not start here (e.g. a script read from stdin): stay in-process


def n_workers() -> int:
    env = os.environ.get("NERFHEAD_AUDIO_WORKERS")
    if env is not None:
        try:
            return max(0, int(env))
        except ValueError:
            raise NerfheadError(f"NERFHEAD_AUDIO_WORKERS must be a whole number, got {env!r}") from None
    return min(2, os.cpu_count() or 1) if (os.cpu_count() or 1) > 1 else 0


def _pool() -> ProcessPoolExecutor:
    global _POOL
    if _POOL is None:
        import multiprocessing

        # spawn, not fork: the parent may hold torch/OpenMP threads that do not survive a fork.
        _POOL = ProcessPoolExecutor(max_workers=n_workers(), mp_context=multiprocessing.get_context("spawn"))
        atexit.register(shutdown_pool)
    return _POOL


def _warm() -> int:
    _allphone_decoder()
    return os.getpid()


def prestart() -> None:
    """Start the worker processes now (they take ~0.5 s to load), e.g. while audio is decoded."""
    if n_workers() > 0 and not _POOL_FAILED:
        pool = _pool()
        for _ in range(n_workers()):
            pool.submit(_warm)


def shutdown_pool() -> None:
    global _POOL
    if _POOL is not None:
        _POOL.shutdown(wait=False, cancel_futures=True)
        _POOL = None


def allphone_many(blocks: Iterable[np.ndarray], max_pending: int = 6) -> Iterator[list[Segment]]:
    """:func:`allphone` of each block, in order; blocks are decoded by worker processes.

    At most ``max_pending`` blocks are in flight, so memory stays flat for long audio.
    """
    if n_workers() == 0 or _POOL_FAILED:
        for block in blocks:
            yield allphone(block)
        return
    pending: list[tuple[np.ndarray, Future | None]] = []

    def submit(block):
        if np.asarray(block).size < 1600 or _POOL_FAILED:
            return None
        try:
            return _pool().submit(_allphone_pcm, to_pcm(block))
        except (BrokenProcessPool, RuntimeError):
            shutdown_pool()
            return None

    def result(block, fut):
        if fut is None:
            return allphone(block)
        try:
            return _shift(fut.result(), FRAME_OFFSET)
        except BrokenProcessPool:
            global _POOL_FAILED
            if not _POOL_FAILED:
                log.warning("phone recognition workers stopped; decoding in this process from now on")
            _POOL_FAILED = True
            shutdown_pool()
            return allphone(block)

    for block in blocks:
        pending.append((block, submit(block)))
        if len(pending) >= max_pending:
            yield result(*pending.pop(0))
    for block, fut in pending:
        yield result(block, fut)


# ---------------------------------------------------------------- forced alignment

@lru_cache(maxsize=1)
def _align_decoder():
    return _ps().Decoder(bestpath=False, loglevel="FATAL")


def _word_entries(dec, words: list[str], lang: str) -> list[str]:
    """Dictionary names for ``words``, adding the ones the dictionary lacks."""
    english = is_english(lang)
    names: list[str] = []
    need: list[int] = []
    for i, w in enumerate(words):
        name = w if english else f"{w}@{lang.split('+')[0]}"
        names.append(name)
        if dec.lookup_word(name) is None:
            need.append(i)
    if need:
        unique = list(dict.fromkeys(names[i] for i in need))
        first = {names[i]: words[i] for i in reversed(need)}
        prons = pronounce([first[n] for n in unique], lang, lookup=None)
        for k, (name, phones) in enumerate(zip(unique, prons)):
            dec.add_word(name, " ".join(phones or ["AH"]), update=k == len(unique) - 1)
    return names


def align(samples: np.ndarray, text: str, lang: str = "en-us") -> list[Segment]:
    """Forced alignment of ``text`` to 16 kHz mono ``samples`` -> phone segments.

    Raises AlignmentError when the text has no words or the audio cannot be aligned to it.
    """
    words = words_of(text)
    if not words:
        raise AlignmentError("the text has no words to align")
    x = np.asarray(samples, np.float32).reshape(-1)
    if x.size < 1600:
        raise AlignmentError("the audio is too short to align text to")
    dec = _align_decoder()
    names = _word_entries(dec, words, lang)
    pcm = to_pcm(x)
    dec.reinit_feat()
    try:
        dec.set_align_text(" ".join(names))
        dec.start_utt()
        dec.process_raw(pcm, full_utt=True)
        dec.end_utt()
    except RuntimeError as exc:
        raise AlignmentError(f"the text could not be aligned to the audio ({exc})") from None
    if dec.hyp() is None:
        raise AlignmentError("the text could not be aligned to the audio (no path through all words)")
    word_segs = [(s.word, s.start_frame, s.end_frame) for s in dec.seg()]
    try:
        dec.set_alignment()
        dec.reinit_feat()
        dec.start_utt()
        dec.process_raw(pcm, full_utt=True)
        dec.end_utt()
        phones = [(p.name, p.start, p.start + p.duration - 1) for p in dec.get_alignment().phones()]
    except (RuntimeError, TypeError):
        log.debug("phone-level alignment failed; spreading each word's phones over its frames")
        phones = _spread_words(dec, word_segs)
    return _shift(phones, FRAME_OFFSET)


def _spread_words(dec, word_segs) -> list[tuple[str, int, int]]:
    out = []
    for word, start, end in word_segs:
        pron = dec.lookup_word(word) if not word.startswith(("<", "[")) else None
        if not pron:
            out.append(("SIL", start, end))
            continue
        phones = pron.split()
        edges = np.linspace(start, end + 1, len(phones) + 1).round().astype(int)
        out.extend((p, int(a), int(b) - 1) for p, a, b in zip(phones, edges[:-1], edges[1:]) if b > a)
    return out
