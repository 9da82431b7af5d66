"""Audio front end: any speech file or script -> 100 Hz features that drive the lips.

``features_for(path_or_None, text=..., ...) -> AudioFeatures`` is the entry point (see
docs/AUDIO.md). Submodules are imported lazily so that phone-recognition worker processes stay
light (they import only :mod:`nerfhead.audio.phones`, not torch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from nerfhead.audio.extractors import FeatureExtractor, FeatureSpec, get_extractor, register
    from nerfhead.audio.features import AudioFeatures, features_for, load_features
    from nerfhead.audio.tts import synthesize

_LAZY = {
    "AudioFeatures": "nerfhead.audio.features",
    "features_for": "nerfhead.audio.features",
    "load_features": "nerfhead.audio.features",
    "FeatureExtractor": "nerfhead.audio.extractors",
    "FeatureSpec": "nerfhead.audio.extractors",
    "FeatureMismatchError": "nerfhead.audio.extractors",
    "get_extractor": "nerfhead.audio.extractors",
    "register": "nerfhead.audio.extractors",
    "synthesize": "nerfhead.audio.tts",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
