"""What drives an avatar from the audio side, per video frame: feature windows, articulation
track and silences. The same for the capture's own audio (evaluation, rest codes) and for any
other clip (render)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from nerfhead.audio.articulation import articulation_track
from nerfhead.audio.features import AudioFeatures
from nerfhead.avatar.rest import silence_weights
from nerfhead.audio.windows import n_video_frames
from nerfhead.dataset import FPS, Identity


@dataclass
class DrivingAudio:
    """Per-video-frame audio inputs of one clip."""

    windows: np.ndarray  # (n, W, D) feature windows (a read-only strided view is fine)
    articulation: np.ndarray  # (n,) float32 mouth-opening score (nerfhead.audio.articulation)
    silence: np.ndarray  # (n,) float32 share of the capture's silence code (nerfhead.avatar.rest)
    # the presenter's own voice (the capture's audio, or a new recording of the person filmed): the mouth
    # follows the map learnt from the capture instead of the rule (nerfhead.field.lips)
    own_voice: bool = False

    @property
    def n_frames(self) -> int:
        return len(self.windows)

    @classmethod
    def of(cls, feats: AudioFeatures, n_frames: int | None = None, fps: float = FPS,
           own_voice: bool = False) -> "DrivingAudio":
        """The inputs of ``feats`` for ``n_frames`` video frames (default: all of the audio) at ``fps``
        (``own_voice``: the presenter is speaking).
        At another rate than the capture's, the windows are centred on each frame's own time and the
        articulation and silence tracks (made at the capture's rate) are interpolated to it."""
        if fps == FPS:
            n = feats.n_video_frames if n_frames is None else n_frames
            return cls(feats.windows_for(n), articulation_track(feats, n), silence_weights(feats.vad, n), own_voice)
        n = n_video_frames(feats.duration, fps) if n_frames is None else n_frames
        base = cls.of(feats)
        t = np.arange(n) * (FPS / fps)  # in frames of the capture's rate (held at the ends)
        grid = np.arange(base.n_frames)
        return cls(feats.windows_for(n, fps), np.interp(t, grid, base.articulation).astype(np.float32),
                   np.interp(t, grid, base.silence).astype(np.float32), own_voice)

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


def capture_audio(ident: Identity, extractor: str = "default") -> tuple[AudioFeatures, DrivingAudio]:
    """The capture's audio features by ``extractor`` (computed once, cached by content) and its
    driving inputs for each of its frames (the presenter's own voice)."""
    from nerfhead.audio import features_for

    feats = features_for(ident.audio_path, extractor=extractor)
    return feats, DrivingAudio.of(feats, ident.manifest()["n_frames"], own_voice=True)
