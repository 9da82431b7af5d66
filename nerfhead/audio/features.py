"""One entry point: any audio file or script -> :class:`AudioFeatures` for training and render.

>>> feats = features_for("speech.wav")                           # doctest: +SKIP
>>> feats.features.shape, feats.windows.shape                    # doctest: +SKIP
((6000, 91), (1500, 16, 91))
>>> features_for(text="Hello there.", voice="en-us", rate=150)    # doctest: +SKIP
"""

from __future__ import annotations

import json
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from nerfhead.audio import cache as feature_cache
from nerfhead.audio import loading
from nerfhead.audio.extractors import FeatureExtractor, FeatureSpec, get_extractor
from nerfhead.audio.phones import AlignmentError, Segment, align
from nerfhead.audio.timeline import loudness_db
from nerfhead.audio.visemes import segments_to_frames
from nerfhead.audio.featurefile import FeatureFile, FeatureWriter
from nerfhead.audio.windows import FPS, WINDOW, FrameWindows, frame_windows, n_video_frames
from nerfhead.errors import InputError
from nerfhead.io.audio import load_audio, pcm16
from nerfhead.io.files import atomic_path
from nerfhead.log import get_logger

log = get_logger(__name__)

#: Bumped when the pipeline around the extractor changes what it produces (part of the cache key).
PIPELINE_VERSION = 2  # 2: features in a raw float32 file beside the entry


@dataclass
class AudioFeatures:
    """Features of one audio, all at 100 Hz, frame ``k`` at time ``k / 100`` s."""

    features: np.ndarray  # (T, D) float32
    spec: FeatureSpec
    duration: float  # seconds
    audio_path: Path  # the loudness-normalised 16 kHz mono wav the features were computed from
    source: str  # the input file, or "text" for a script
    viseme_ids: np.ndarray | None = None  # (T,) int8, see nerfhead.audio.visemes
    vad: np.ndarray | None = None  # (T,) float32 speech probability
    phones: list[Segment] = field(default_factory=list)  # the segments behind viseme_ids
    recognized: list[Segment] = field(default_factory=list)  # allphone segments (even when aligned)
    phone_source: str = "none"  # "allphone", "aligned", "aligned+allphone" or "none"
    gain_db: float = 0.0
    text: str | None = None
    cache_key: str = ""
    feature_file: FeatureFile | None = field(default=None, repr=False)  # where ``features`` lie on disk
    _samples: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_feature_frames(self) -> int:
        return int(self.features.shape[0])

    @property
    def n_video_frames(self) -> int:
        return n_video_frames(self.duration)

    @property
    def samples(self) -> np.ndarray:
        """The normalised 16 kHz mono samples (read from ``audio_path`` on first use)."""
        if self._samples is None:
            self._samples = load_audio(self.audio_path, loading.RATE)
        return self._samples

    def loudness(self, n_frames: int, chunk_frames: int = 1500) -> np.ndarray:
        """(n_frames,) RMS level in dB of each video frame of the normalised audio, read from
        ``audio_path`` a minute at a time (not all of it at once)."""
        if self._samples is not None:
            return loudness_db(self._samples, n_frames, loading.RATE)
        per = loading.RATE / FPS
        parts = []
        for a in range(0, n_frames, chunk_frames):
            b = min(n_frames, a + chunk_frames)
            piece = _read_samples(self.audio_path, int(round(a * per)), int(round(b * per)))
            parts.append(loudness_db(piece, b - a, loading.RATE, first_frame=a))
        return np.concatenate(parts) if parts else np.zeros(0)

    @property
    def windows(self) -> FrameWindows:
        """(n_video_frames, 16, D) window per 25 fps video frame (built as they are indexed)."""
        return self.windows_for(self.n_video_frames)

    def windows_for(self, n_frames: int, fps: float = FPS, size: int = WINDOW) -> FrameWindows:
        """Windows for exactly ``n_frames`` video frames at ``fps`` (edge-padded past the end),
        read from the feature file when there is one (nothing mapped: flat memory)."""
        source = self.feature_file if self.feature_file is not None else self.features
        return frame_windows(source, n_frames, fps=fps, size=size)

    def save(self, path: str | Path) -> Path:
        """Write features, visemes, VAD, windows and the spec to an ``.npz`` (atomically)."""
        path = Path(path)
        arrays = {"features": self.features, "windows": np.ascontiguousarray(self.windows),
                  "times": np.arange(self.n_feature_frames, dtype=np.float32) / self.spec.rate}
        if self.viseme_ids is not None:
            arrays["viseme_ids"] = self.viseme_ids
        if self.vad is not None:
            arrays["vad"] = self.vad
        meta = {"spec": self.spec.to_dict(), "duration": self.duration, "source": self.source,
                "phone_source": self.phone_source, "n_video_frames": self.n_video_frames, "fps": FPS,
                "text": self.text, "gain_db": self.gain_db, "phones": self.phones}
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, meta=np.array(json.dumps(meta)), **arrays)
        return path


def features_for(source: str | Path | None = None, *, text: str | None = None, text_file: str | Path | None = None,
                 voice: str | None = None, rate: int | None = None, extractor: str | FeatureExtractor = "default",
                 cache: bool = True) -> AudioFeatures:
    """Features of an audio/video file, or of a script spoken by a TTS voice.

    * ``features_for("speech.mp3")`` - any file PyAV reads (its first audio track).
    * ``features_for("speech.wav", text="what is said")`` - with a transcript: visemes come from
      forced alignment (falls back to phone recognition, with a warning, if alignment fails).
    * ``features_for(text="Hello.", voice="espeak:de", rate=150)`` or ``text_file=...`` - TTS
      (:mod:`nerfhead.audio.voices`; with a file, ``voice`` names the language the text is in).

    Results are cached by content (see :mod:`nerfhead.audio.cache`).
    """
    from nerfhead.audio import tts
    from nerfhead.audio.voices import language_of

    ext = get_extractor(extractor)
    if source is None:
        speech = tts.synthesize(text=text, text_file=text_file, voice=voice, rate=rate, cache=cache)
        path, script, lang = speech.path, speech.text, speech.language
        spans = [(a, b, s) for a, b, s in speech.sentences]
        label = "text"
    else:
        path = Path(source)
        script = tts.read_script(text, text_file) if (text is not None or text_file is not None) else None
        lang = language_of(voice)
        spans = [(0.0, float("inf"), script)] if script is not None else []
        label = str(source)

    scan = loading.scan_audio(path)
    spans = [(a, min(b, scan.duration), s) for a, b, s in spans]
    spec = ext.spec()
    extra = {"pipeline": PIPELINE_VERSION, "gain": round(scan.gain, 6),
             "align": [spans, lang] if (spans and ext.uses_text) else None}
    key = feature_cache.feature_key(scan.sha256, spec.to_dict(), extra)
    npz_path, wav_path = feature_cache.entry_paths(key)
    if cache:
        hit = feature_cache.load_entry(key)
        if hit is not None:
            log.debug("audio features from cache: %s", npz_path)
            return _from_entry(hit, spec, wav_path, label, key)

    if hasattr(ext, "prestart"):
        ext.prestart()
    arrays, meta = _compute(path, scan, ext, spans, lang, wav_path, feature_cache.features_path(key))
    meta.update({"source": label, "text": script})
    feature_cache.save_entry(key, arrays, meta)  # cache=False recomputes but still refreshes the entry
    rows = FeatureFile(feature_cache.features_path(key), meta["dim"])
    return _from_entry((arrays, meta, rows), spec, wav_path, label, key)


def _compute(path: Path, scan: loading.AudioScan, ext: FeatureExtractor, spans, lang: str, wav_path: Path,
             feat_path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Features of ``path`` written block by block to ``feat_path`` (raw float32, published when
    complete) beside the normalised 16 kHz audio at ``wav_path``; -> the small per-frame arrays
    (visemes, voice activity) and the metadata."""
    ids, speech, recognized = [], [], []
    with atomic_path(feat_path) as tmp_feats:
        with atomic_path(wav_path) as tmp, wave.open(str(tmp), "wb") as writer, FeatureWriter(tmp_feats) as rows:
            writer.setnchannels(1)
            writer.setsampwidth(2)
            writer.setframerate(loading.RATE)
            chunks = _written(loading.iter_normalized(path, scan.gain), writer)
            for out in ext.extract_blocks(loading.iter_blocks(chunks)):
                rows.append(out["features"])
                if "visemes" in out:
                    ids.append(out["visemes"])
                    speech.append(out["vad"])
                    recognized.extend(out["phones"])
        if rows.dim is None:
            raise InputError(f"{path}: no audio frames to compute features of")
        viseme_ids = np.concatenate(ids).astype(np.int8) if ids else None
        phone_source = "allphone" if viseme_ids is not None else "none"
        used = list(recognized)
        if spans and ext.uses_text and viseme_ids is not None:
            used, n_ok = _aligned(spans, lang, wav_path, viseme_ids, recognized)
            if n_ok:
                _put_visemes(FeatureFile(tmp_feats, rows.dim), ext, viseme_ids)
                phone_source = "aligned" if n_ok == len(spans) else "aligned+allphone"
    arrays = {}
    if viseme_ids is not None:
        arrays["viseme_ids"] = viseme_ids
        arrays["vad"] = np.concatenate(speech).astype(np.float32)
    meta = {"duration": scan.duration, "gain_db": scan.gain_db, "phone_source": phone_source,
            "phones": used, "recognized": recognized, "dim": rows.dim}
    return arrays, meta


def _aligned(spans, lang: str, wav_path: Path, viseme_ids: np.ndarray, recognized: list[Segment]):
    """Forced alignment of each known sentence span; writes its visemes into ``viseme_ids`` ->
    (the phone segments used, sentences aligned). A span that fails keeps the recognised phones."""
    used, n_ok = [], 0
    for start, end, sentence in spans:
        first = int(round(start * 100))
        last = min(int(round(end * 100)), viseme_ids.size)
        try:
            segs = align(_read_span(wav_path, start, end), sentence, lang)
        except AlignmentError as exc:
            log.warning("text not aligned for %.1f-%.1f s (%s); using recognised phones there", start, end, exc)
            used.extend(seg for seg in recognized if first <= seg[1] < last)
            continue
        segs = [(p, s + first, min(e + first, last - 1)) for p, s, e in segs if s + first < last]
        viseme_ids[first:last] = segments_to_frames([(p, s - first, e - first) for p, s, e in segs], last - first)
        used.extend(segs)
        n_ok += 1
    return used, n_ok


def _put_visemes(feats: FeatureFile, ext: FeatureExtractor, viseme_ids: np.ndarray, chunk: int = 6000) -> None:
    """The aligned visemes into the features on disk, a minute of rows at a time (for extractors
    whose features hold a viseme part)."""
    try:
        for a in range(0, feats.n_rows, chunk):
            block = feats.rows(a, a + chunk)
            out = ext.with_visemes(block, viseme_ids[a:a + len(block)])
            if out is not block:
                feats.write_rows(a, out)
    finally:
        feats.close()


def _written(chunks: Iterable[np.ndarray], writer: wave.Wave_write) -> Iterator[np.ndarray]:
    for chunk in chunks:
        writer.writeframes(pcm16(chunk))
        yield chunk


def _read_span(wav_path: Path, start: float, end: float) -> np.ndarray:
    return _read_samples(wav_path, int(round(start * loading.RATE)), int(round(end * loading.RATE)))


def _read_samples(wav_path: Path, a: int, b: int) -> np.ndarray:
    """Samples ``a .. b - 1`` of the 16-bit mono wav (clipped to its length) as float32."""
    with wave.open(str(wav_path), "rb") as r:
        a = min(max(0, a), r.getnframes())
        b = min(r.getnframes(), max(a, b))
        r.setpos(a)
        data = r.readframes(b - a)
    return np.frombuffer(data, "<i2").astype(np.float32) / 32767.0


def _from_entry(entry, spec: FeatureSpec, wav_path: Path, label: str, key: str) -> AudioFeatures:
    arrays, meta, rows = entry
    as_segs = lambda segs: [(str(p), int(s), int(e)) for p, s, e in segs]  # noqa: E731
    return AudioFeatures(
        features=rows.array, feature_file=rows, spec=spec, duration=float(meta["duration"]), audio_path=wav_path,
        source=label, viseme_ids=arrays.get("viseme_ids"), vad=arrays.get("vad"),
        phones=as_segs(meta.get("phones", [])), recognized=as_segs(meta.get("recognized", [])),
        phone_source=meta.get("phone_source", "none"), gain_db=float(meta.get("gain_db", 0.0)),
        text=meta.get("text"), cache_key=key)


def load_features(path: str | Path) -> tuple[np.ndarray, FeatureSpec, dict[str, Any]]:
    """Read an ``.npz`` written by :meth:`AudioFeatures.save` -> (features, spec, metadata)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"features file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            feats = data["features"]
    except Exception:  # noqa: BLE001
        raise InputError(f"{path} is not a nerfhead features file") from None
    return feats, FeatureSpec.from_dict(meta["spec"]), meta


def write_features(source: str | Path | None = None, *, text: str | None = None, text_file: str | Path | None = None,
                   voice: str | None = None, rate: int | None = None, out: str | Path | None = None,
                   plot: str | Path | None = None, extractor: str = "default") -> tuple[AudioFeatures, Path]:
    """What ``nerfhead features`` does: compute, write ``.npz`` (and a PNG) -> (features, npz path).

    The default output is ``<audio stem>.features.npz`` beside the audio (``speech.features.npz``
    for a script).
    """
    from nerfhead.io.files import check_writable

    if source is None and text is None and text_file is None:
        raise InputError("give an audio file, or --text / --text-file to speak")
    if out is None:
        out = Path(source).with_suffix(".features.npz") if source is not None else Path("speech.features.npz")
    out = check_writable(out)
    if plot is not None:
        plot = check_writable(plot)
    feats = features_for(source, text=text, text_file=text_file, voice=voice, rate=rate, extractor=extractor)
    feats.save(out)
    if plot is not None:
        from nerfhead.audio.plot import plot_features

        plot_features(feats, plot)
    return feats, Path(out)
