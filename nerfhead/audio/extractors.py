"""Feature extractors: a small interface and a registry (name -> class).

Every extractor turns 16 kHz mono samples into ``(T, D)`` float32 features at ``rate`` Hz, frame
``k`` centred on time ``k / rate``, with ``T = ceil(len(samples) / (16000 / rate))``. Its
:class:`FeatureSpec` (name, dim, version, rate, parts) is stored with a trained model; render
compares it with the features it is given and refuses a mismatch by name, not by a shape error.

Adding one (e.g. a local HuBERT checkpoint) touches nothing else::

    @register
    class Hubert(FeatureExtractor):
        name = "hubert-local"
        version = 1
        def __init__(self, checkpoint="~/models/hubert.pt"):
            self.model = torch.jit.load(os.path.expanduser(checkpoint)); self.feature_dim = 1024
        def extract(self, samples):
            ...  # run the model, resample its 50 Hz output to 100 Hz frames at k / 100 s

    features_for("speech.wav", extractor="hubert-local")

>>> sorted(available_extractors())
['default', 'mel80', 'whisper']
>>> get_extractor("default").spec().dim
91
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Iterable, Iterator

import numpy as np

from nerfhead.audio import melspec, vad, visemes
from nerfhead.audio.loading import HOP, Block
from nerfhead.errors import InputError


class FeatureMismatchError(InputError):
    """Features made by a different extractor than the one a model was trained with."""


@dataclass(frozen=True)
class FeatureSpec:
    """What a feature array is: stored with a model, compared before use."""

    name: str
    dim: int
    version: int
    rate: float = 100.0
    parts: dict[str, list[int]] = field(default_factory=dict)  # part -> [first column, end column]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FeatureSpec":
        try:
            return cls(name=str(data["name"]), dim=int(data["dim"]), version=int(data["version"]),
                       rate=float(data.get("rate", 100.0)),
                       parts={k: [int(a), int(b)] for k, (a, b) in dict(data.get("parts", {})).items()})
        except (KeyError, TypeError, ValueError):
            raise InputError(f"not a feature spec: {data!r}") from None

    def __str__(self) -> str:
        return f"{self.name} v{self.version} ({self.dim} values at {self.rate:g} Hz)"

    def require(self, expected: "FeatureSpec | dict", what: str = "the model") -> None:
        """Raise FeatureMismatchError unless these features are what ``expected`` describes."""
        if isinstance(expected, dict):
            expected = FeatureSpec.from_dict(expected)
        if (self.name, self.dim, self.version, self.rate) != (expected.name, expected.dim, expected.version,
                                                             expected.rate):
            raise FeatureMismatchError(
                f"audio features are {self} but {what} was trained with {expected}; "
                f"compute the audio's features with extractor '{expected.name}' or retrain")


class FeatureExtractor:
    """Base class. Subclasses set ``name``, ``version``, ``feature_dim`` and implement ``extract``."""

    name: ClassVar[str] = ""
    version: ClassVar[int] = 1
    rate: ClassVar[float] = 100.0
    uses_text: ClassVar[bool] = False  # True if known text (forced alignment) changes the features
    feature_dim: int = 0

    def parts(self) -> dict[str, list[int]]:
        return {"features": [0, self.feature_dim]}

    def spec(self) -> FeatureSpec:
        return FeatureSpec(name=self.name, dim=self.feature_dim, version=self.version, rate=self.rate,
                           parts=self.parts())

    def extract(self, samples: np.ndarray) -> np.ndarray:
        """(T, D) float32 features of 16 kHz mono ``samples``."""
        raise NotImplementedError

    def extract_blocks(self, blocks: Iterable[Block]) -> Iterator[dict[str, Any]]:
        """Features of a long audio given as :class:`Block` s; yields ``{"features": (n, D)}``
        per block, covering exactly the block's own frames. Override to add parallelism."""
        for block in blocks:
            feats = self.extract(block.samples)
            first = block.left // HOP
            yield {"features": feats[first:first + block.n_frames]}


_REGISTRY: dict[str, type[FeatureExtractor]] = {}


def register(cls: type[FeatureExtractor]) -> type[FeatureExtractor]:
    """Class decorator: make ``cls`` available as ``get_extractor(cls.name)``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} needs a name")
    _REGISTRY[cls.name] = cls
    return cls


def available_extractors() -> list[str]:
    return list(_REGISTRY)


def get_extractor(name: str | FeatureExtractor = "default", **kwargs) -> FeatureExtractor:
    if isinstance(name, FeatureExtractor):
        return name
    if name not in _REGISTRY:
        raise InputError(f"unknown feature extractor {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name](**kwargs)


@register
class MelExtractor(FeatureExtractor):
    """Log-mel only (80 values): no phone model, nothing language-specific."""

    name = "mel80"
    version = 1
    feature_dim = melspec.N_MELS

    def parts(self):
        return {"logmel": [0, melspec.N_MELS]}

    def extract(self, samples):
        return melspec.log_mel(samples)


@register
class DefaultExtractor(FeatureExtractor):
    """Log-mel (80) + viseme one-hot (10) + voice activity (1) = 91 values per 10 ms.

    Visemes come from phone recognition (allphone) corrected by the lips-closed detector
    (:mod:`nerfhead.audio.bilabial`), or from forced alignment where the text is known
    (:func:`nerfhead.audio.features_for` replaces them via :meth:`with_visemes`).
    """

    name = "default"
    version = 3  # v3: lips-closed events found by nerfhead.audio.bilabial (2 skipped: tests use it as "another version")
    uses_text = True
    feature_dim = melspec.N_MELS + visemes.N_VISEMES + 1

    def parts(self):
        m, v = melspec.N_MELS, visemes.N_VISEMES
        return {"logmel": [0, m], "viseme": [m, m + v], "vad": [m + v, m + v + 1]}

    #: Frames quieter than this (RMS over the 25 ms window, after loudness normalisation) are
    #: silence whatever the recogniser says: it hears phones in near-silence and in its dither.
    quiet_dbfs = -60.0

    def quiet_frames(self, samples: np.ndarray, first_centre: int, n_frames: int) -> np.ndarray:
        x = np.asarray(samples, np.float32).reshape(-1)
        half = melspec.WIN // 2
        sq = np.concatenate([[0.0], np.cumsum(x.astype(np.float64) ** 2)])
        centres = first_centre + HOP * np.arange(n_frames)
        lo, hi = np.clip(centres - half, 0, x.size), np.clip(centres + half, 0, x.size)
        ms = (sq[hi] - sq[lo]) / melspec.WIN
        return ms < 10 ** (self.quiet_dbfs / 10)

    def combine(self, mel: np.ndarray, viseme_ids: np.ndarray, speech: np.ndarray) -> np.ndarray:
        return np.concatenate([mel, visemes.one_hot(viseme_ids), speech[:, None].astype(np.float32)], axis=1)

    def with_visemes(self, features: np.ndarray, viseme_ids: np.ndarray) -> np.ndarray:
        a, b = self.parts()["viseme"]
        out = np.array(features, copy=True)
        out[:, a:b] = visemes.one_hot(viseme_ids)
        return out

    def prestart(self) -> None:
        """Start the phone-recognition workers early (called before the audio is decoded)."""
        from nerfhead.audio import phones

        phones.prestart()

    def recognised_visemes(self, segs, mel_padded: np.ndarray, quiet: np.ndarray) -> np.ndarray:
        """Viseme ids of recognised phone segments: silence where quiet, then the lips-closed
        events the detector finds (``mel_padded`` has ``bilabial.PAD`` context frames each side)."""
        from nerfhead.audio import bilabial

        ids = visemes.segments_to_frames(segs, quiet.size)
        ids[quiet] = 0
        return bilabial.refine(mel_padded, ids, ~quiet)

    def extract(self, samples):
        from nerfhead.audio import bilabial, phones

        x = np.asarray(samples, np.float32).reshape(-1)
        n = -(-x.size // HOP)
        pad = bilabial.PAD
        mel = melspec.log_mel(x, first_centre=-pad * HOP, n_frames=n + 2 * pad)
        ids = self.recognised_visemes(phones.allphone(x), mel, self.quiet_frames(x, 0, n))
        return self.combine(mel[pad:pad + n], ids, vad.vad_frames(x))

    def extract_blocks(self, blocks):
        from nerfhead.audio import bilabial, phones

        pad = bilabial.PAD

        queue: list[list] = []  # [block, mel, vad] in submission order

        def fill(entry):
            block = entry[0]
            if entry[1] is None:  # the core's frames are centred from its first sample on
                entry[1] = melspec.log_mel(block.samples, first_centre=block.left - pad * HOP,
                                           n_frames=block.n_frames + 2 * pad)  # with the detector's context
                entry[2] = vad.vad_frames(block.samples, first_centre=block.left, n_frames=block.n_frames)

        def cores():
            for block in blocks:
                entry = [block, None, None]
                queue.append(entry)
                yield block.core_samples  # phone recognition starts in a worker...
                fill(entry)  # ...while this process computes log-mel and voice activity

        for segs in phones.allphone_many(cores()):
            entry = queue.pop(0)
            fill(entry)
            block, mel, speech = entry
            ids = self.recognised_visemes(segs, mel, self.quiet_frames(block.samples, block.left, block.n_frames))
            yield {"features": self.combine(mel[pad:pad + block.n_frames], ids, speech), "visemes": ids, "vad": speech,
                   "phones": [(p, s + block.first_frame, e + block.first_frame) for p, s, e in segs]}


@register
class WhisperExtractor(DefaultExtractor):
    """Whisper tiny.en's encoder states (384 values per 10 ms, :mod:`nerfhead.audio.whisper`).

    Phone recognition, visemes and voice activity run as for ``default`` (the articulation track,
    silences and /p b m/ read them), but they are kept beside the features, not in them: the
    network's input is the encoder's representation alone.
    """

    name = "whisper"
    version = 1
    feature_dim = 384

    def parts(self):
        return {"whisper": [0, self.feature_dim]}

    def prestart(self) -> None:
        from nerfhead.audio import whisper

        whisper.load_encoder()  # the install is checked (one-line error) before any work starts
        super().prestart()

    def with_visemes(self, features: np.ndarray, viseme_ids: np.ndarray) -> np.ndarray:
        return features  # aligned visemes change the viseme track, not the encoder's states

    def extract(self, samples):
        from nerfhead.audio import whisper

        return whisper.encoder_states(samples)

    def extract_blocks(self, blocks):
        from nerfhead.audio import whisper

        held: list = []  # blocks handed to the phone recogniser, in order

        def tap():
            for block in blocks:
                held.append(block)
                yield block

        for out in super().extract_blocks(tap()):
            block = held.pop(0)
            states = whisper.encoder_states(block.samples, first_centre=block.left, n_frames=block.n_frames)
            yield {**out, "features": states}
