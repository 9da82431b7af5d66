"""What drives an avatar from the audio side, per video frame: feature windows, articulation
track and silences. The same for the capture's own audio (evaluation, rest codes) and for any
other clip (render)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from nerfhead.audio.articulation import articulation_track
from nerfhead.audio.features import AudioFeatures
from nerfhead.avatar.rest import silence_weights
from nerfhead.dataset import Identity


@dataclass
class DrivingAudio:
    """Per-video-frame audio inputs of one clip."""

    windows: np.ndarray  # (n, W, D) feature windows (a read-only strided view is fine)
    articulation: np.ndarray  # (n,) float32 mouth-opening score (nerfhead.audio.articulation)
    silence: np.ndarray  # (n,) float32 share of the capture's silence code (nerfhead.avatar.rest)

    @property
    def n_frames(self) -> int:
        return len(self.windows)

    @classmethod
    def of(cls, feats: AudioFeatures, n_frames: int | None = None) -> "DrivingAudio":
        """The inputs of ``feats`` for ``n_frames`` video frames (default: all of the audio)."""
        n = feats.n_video_frames if n_frames is None else n_frames
        return cls(feats.windows_for(n), articulation_track(feats, n), silence_weights(feats.vad, n))

    def permuted(self, frames: list[int], seed: int = 0) -> "DrivingAudio":
        """The same clip with the inputs of ``frames`` permuted among themselves (one derangement
        for all three): the audio of other frames of the same voice."""
        rng = np.random.default_rng(seed)
        frames = np.asarray(frames)
        perm = rng.permutation(len(frames))
        while len(frames) > 1 and (perm == np.arange(len(frames))).any():
            perm = rng.permutation(len(frames))
        out = replace(self, windows=np.array(self.windows), articulation=self.articulation.copy(),
                      silence=self.silence.copy())
        for name in ("windows", "articulation", "silence"):
            getattr(out, name)[frames] = getattr(self, name)[frames[perm]]
        return out


def capture_audio(ident: Identity) -> tuple[AudioFeatures, DrivingAudio]:
    """The capture's audio features (computed once, cached by content) and its driving inputs for
    each of its frames."""
    from nerfhead.audio import features_for

    feats = features_for(ident.audio_path)
    return feats, DrivingAudio.of(feats, ident.manifest()["n_frames"])
