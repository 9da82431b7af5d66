"""Phone -> viseme classes: what the lips do for each ARPAbet phone of the en-us model.

Ten classes, chosen for what a camera sees of the mouth (not for what the ear hears).
Consonants made behind the teeth (t d n l s z k g ng hh y) look alike from the front and share
one class; the classes that matter most for lip sync are kept apart: lips closed (/p b m/),
lower lip to teeth (/f v/), tongue between teeth (/th dh/), protruded lips (/ch jh sh zh/),
rounded narrow lips (/r w er/), and the three vowel shapes open, spread and rounded.

====  ========  ===========================  ===========================================
 id   name      phones                       mouth
====  ========  ===========================  ===========================================
 0    SIL       SIL (+ noise fillers)        at rest, closed or slightly open
 1    PBM       P B M                        lips pressed together
 2    FV        F V                          lower lip under the upper teeth
 3    TH        TH DH                        tongue tip between the teeth
 4    ALV       T D N L S Z K G NG HH Y      jaw nearly closed, lips neutral, teeth visible
 5    CH        CH JH SH ZH                  lips pushed forward, teeth close
 6    RW        R W ER                       lips rounded and narrow
 7    AA        AA AE AH AY AW               jaw open
 8    EE        EH EY IH IY                  lips spread, jaw half open
 9    OO        AO OW OY UH UW               lips rounded, jaw half open
====  ========  ===========================  ===========================================

>>> viseme_of("B"), VISEME_NAMES[viseme_of("B")]
(1, 'PBM')
>>> viseme_of("+NSN+")
0
"""

from __future__ import annotations

import numpy as np

VISEME_NAMES: tuple[str, ...] = ("SIL", "PBM", "FV", "TH", "ALV", "CH", "RW", "AA", "EE", "OO")
N_VISEMES = len(VISEME_NAMES)
PBM = VISEME_NAMES.index("PBM")  # lips closed
VOWELS = tuple(VISEME_NAMES.index(v) for v in ("AA", "EE", "OO"))

_CLASSES = {
    "SIL": "SIL",
    "PBM": "P B M",
    "FV": "F V",
    "TH": "TH DH",
    "ALV": "T D N L S Z K G NG HH Y",
    "CH": "CH JH SH ZH",
    "RW": "R W ER",
    "AA": "AA AE AH AY AW",
    "EE": "EH EY IH IY",
    "OO": "AO OW OY UH UW",
}

PHONE_TO_VISEME: dict[str, int] = {
    phone: VISEME_NAMES.index(name) for name, phones in _CLASSES.items() for phone in phones.split()
}

#: The 39 ARPAbet phones of pocketsphinx's en-us model (plus SIL).
PHONES: tuple[str, ...] = tuple(sorted(PHONE_TO_VISEME))


def viseme_of(phone: str) -> int:
    """Viseme id of an ARPAbet phone; silence, fillers and unknown symbols map to SIL (0)."""
    return PHONE_TO_VISEME.get(phone.upper().rstrip("012"), 0)


def segments_to_frames(segments, n_frames: int) -> np.ndarray:
    """Per-frame viseme ids (int8, length ``n_frames``) from ``(phone, start, end)`` segments.

    ``start`` and ``end`` are inclusive 100 Hz frame indices; frames no segment covers are SIL.
    """
    out = np.zeros(n_frames, np.int8)
    for phone, start, end in segments:
        s, e = max(0, int(start)), min(n_frames, int(end) + 1)
        if e > s:
            out[s:e] = viseme_of(phone)
    return out


def one_hot(ids: np.ndarray) -> np.ndarray:
    """(T,) viseme ids -> (T, N_VISEMES) float32 one-hot."""
    return np.eye(N_VISEMES, dtype=np.float32)[np.asarray(ids, np.int64)]
