"""The avatar layer: between the fields (``nerfhead.field``) and what trains, renders and evaluates.

- :mod:`~nerfhead.avatar.checkpoint`: the versioned checkpoint format (written by training only);
- :mod:`~nerfhead.avatar.load`: :func:`~nerfhead.avatar.load.load_avatar`, the trained avatar;
- :mod:`~nerfhead.avatar.drive`: the per-frame audio inputs of any clip, the capture's own included;
- :mod:`~nerfhead.avatar.rest`: the capture's silence and closed-lips codes;
- :mod:`~nerfhead.avatar.conditions`: the one function from audio, frames and eyes to ray conditions;
- :mod:`~nerfhead.avatar.frame` and :mod:`~nerfhead.avatar.sequence`: one frame (head over a
  backdrop, the torso backdrop) and a sequence of frames, as renders and evaluations make them.
"""
