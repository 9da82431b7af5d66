"""Words -> ARPAbet phones for forced alignment with the en-us acoustic model.

In order: pocketsphinx's bundled CMU dictionary (``cmudict-en-us.dict``, English only), then
espeak-ng's phonemes (``espeak-ng -q --ipa -v LANG``, any language espeak-ng speaks) mapped
from IPA to the nearest ARPAbet phone, then simple letter rules when espeak-ng is missing.
Non-English text skips the CMU dictionary (an English spelling would give the wrong sounds).

>>> words_of("Hello, World! It's 42.")
['hello', 'world', "it's", '42']
>>> ipa_to_arpabet("pˈiːɾɚ")
['P', 'IY', 'D', 'ER']
>>> letters_to_arpabet("shop")
['SH', 'AA', 'P']
"""

from __future__ import annotations

import re
import shutil
import subprocess

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")


def words_of(text: str) -> list[str]:
    """Lower-case words and numbers of ``text``, punctuation dropped."""
    return [w.replace("’", "'") for w in _WORD.findall(text.lower())]


def is_english(lang: str) -> bool:
    return lang.lower().split("+")[0].startswith("en")


# IPA symbol (longest first) -> ARPAbet phones. Vowel qualities outside English go to the
# nearest English vowel with the same lip shape, which is what the visemes care about.
_IPA = {
    "tʃ": "CH", "dʒ": "JH", "ts": "T S", "dz": "D Z", "tɕ": "CH", "dʑ": "JH", "tʂ": "CH", "ʈʂ": "CH",
    "eɪ": "EY", "aɪ": "AY", "ɔɪ": "OY", "aʊ": "AW", "oʊ": "OW", "əʊ": "OW", "ɔø": "OY", "aɪə": "AY ER",
    "ɪə": "IY ER", "eə": "EH R", "ʊə": "UH ER", "ɑː": "AA", "ɔː": "AO", "ɜː": "ER", "iː": "IY", "uː": "UW",
    "i": "IY", "ɪ": "IH", "e": "EY", "ɛ": "EH", "æ": "AE", "a": "AA", "ɑ": "AA", "ɒ": "AA", "ɔ": "AO",
    "o": "OW", "ʊ": "UH", "u": "UW", "ʌ": "AH", "ə": "AH", "ɐ": "AH", "ɚ": "ER", "ɜ": "ER", "ɝ": "ER",
    "y": "UW", "ʏ": "UH", "ø": "UW", "œ": "EH", "ɨ": "IH", "ʉ": "UW", "ɯ": "UW", "ɤ": "AH", "ɵ": "UH",
    "ɘ": "AH", "ɞ": "AH", "ɶ": "AA", "ᵻ": "IH",
    "p": "P", "b": "B", "t": "T", "d": "D", "k": "K", "g": "G", "ɡ": "G", "q": "K", "c": "K", "ɟ": "JH",
    "f": "F", "v": "V", "θ": "TH", "ð": "DH", "s": "S", "z": "Z", "ʃ": "SH", "ʒ": "ZH", "ɕ": "SH",
    "ʑ": "ZH", "ʂ": "SH", "ʐ": "ZH", "ç": "HH", "x": "HH", "χ": "HH", "ɣ": "G", "h": "HH", "ɦ": "HH",
    "ɸ": "F", "β": "V", "m": "M", "ɱ": "M", "n": "N", "ɲ": "N Y", "ŋ": "NG", "ɳ": "N", "l": "L",
    "ɫ": "L", "ʎ": "L Y", "ɭ": "L", "ɹ": "R", "r": "R", "ɾ": "D", "ʁ": "R", "ʀ": "R", "ɻ": "R", "j": "Y",
    "w": "W", "ʍ": "W", "ɥ": "Y", "ɰ": "W",
}
_IPA_KEYS = sorted(_IPA, key=len, reverse=True)
_IPA_DROP = re.compile(r"[ˈˌːˑ.‿̩̯̃͡ʰʲʷˤ̪̥̬̚0-9-]")


def ipa_to_arpabet(ipa: str) -> list[str]:
    """ARPAbet phones for one word of espeak-ng IPA output (unknown symbols are skipped)."""
    s = re.sub(r"\([a-z-]+\)", "", ipa)  # espeak's language-switch marks such as "(en)"
    out: list[str] = []
    i = 0
    while i < len(s):
        if _IPA_DROP.fullmatch(s[i]) or s[i].isspace():
            i += 1
            continue
        for key in _IPA_KEYS:
            if s.startswith(key, i):
                out.extend(_IPA[key].split())
                i += len(key)
                break
        else:
            i += 1
    return out


_LETTERS = [("tch", "CH"), ("sch", "SH"), ("th", "TH"), ("sh", "SH"), ("ch", "CH"), ("ph", "F"), ("ng", "NG"),
            ("ck", "K"), ("qu", "K W"), ("ee", "IY"), ("ea", "IY"), ("oo", "UW"), ("ou", "AW"), ("ai", "EY"),
            ("ay", "EY"), ("oa", "OW"), ("a", "AE"), ("b", "B"), ("c", "K"), ("d", "D"), ("e", "EH"), ("f", "F"),
            ("g", "G"), ("h", "HH"), ("i", "IH"), ("j", "JH"), ("k", "K"), ("l", "L"), ("m", "M"), ("n", "N"),
            ("o", "AA"), ("p", "P"), ("q", "K"), ("r", "R"), ("s", "S"), ("t", "T"), ("u", "AH"), ("v", "V"),
            ("w", "W"), ("x", "K S"), ("y", "Y"), ("z", "Z")]
_DIGITS = ["Z IY R OW", "W AH N", "T UW", "TH R IY", "F AO R", "F AY V", "S IH K S", "S EH V AH N", "EY T", "N AY N"]


def letters_to_arpabet(word: str) -> list[str]:
    """Crude spelling rules: the last resort when neither the dictionary nor espeak-ng knows a word."""
    out: list[str] = []
    i = 0
    w = word.lower()
    while i < len(w):
        if w[i].isdigit():
            out.extend(_DIGITS[int(w[i])].split())
            i += 1
            continue
        for key, phones in _LETTERS:
            if w.startswith(key, i):
                out.extend(phones.split())
                i += len(key)
                break
        else:
            i += 1
    return out


def espeak_ipa(words: list[str], lang: str) -> list[str] | None:
    """espeak-ng's IPA for each word (one clause per word), or None if espeak-ng is unavailable."""
    exe = shutil.which("espeak-ng")
    if exe is None or not words:
        return None
    voice = lang.split("+")[0] or "en-us"
    try:
        res = subprocess.run([exe, "-q", "--ipa", "-v", voice], input=".\n".join(words) + ".\n",
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = [ln.strip() for ln in res.stdout.splitlines() if ln.strip()]
    if res.returncode != 0 or len(lines) != len(words):
        if len(words) > 1:  # clauses merged or split: ask word by word
            single = [espeak_ipa([w], lang) for w in words]
            return None if any(s is None for s in single) else [s[0] for s in single]
        return None
    return lines


def pronounce(words: list[str], lang: str = "en-us", lookup=None) -> list[list[str]]:
    """ARPAbet phones for each word. ``lookup(word) -> "PH ON ES" | None`` is the dictionary."""
    result: list[list[str] | None] = [None] * len(words)
    if is_english(lang) and lookup is not None:
        for i, w in enumerate(words):
            phones = lookup(w)
            if phones:
                result[i] = phones.split()
    missing = [i for i, r in enumerate(result) if r is None]
    if missing:
        ipa = espeak_ipa([words[i] for i in missing], lang)
        for k, i in enumerate(missing):
            phones = ipa_to_arpabet(ipa[k]) if ipa is not None else []
            result[i] = phones or letters_to_arpabet(words[i])
    return [r or [] for r in result]
