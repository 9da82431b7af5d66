"""nerfhead: per-identity audio-driven talking-head radiance fields."""

__version__ = "0.1.0"
