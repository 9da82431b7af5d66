"""Voice check: what each TTS voice does to the phones, the rendered lips and memory.

    .venv/bin/python tools/voice_check.py                          # phones only (no avatar needed)
    .venv/bin/python tools/voice_check.py --identity obama         # + lip-sync proxies of a render
    .venv/bin/python tools/voice_check.py --identity obama --memory   # + peak RSS, 200 / 2,000 words

Voices: ``--voice`` (repeatable; default: the default voice and espeak:en-us). For each:

1. Phones: the 18 held-out sentences of tools/train_bilabial.py spoken by the voice; phone
   recognition (allphone + lips-closed detector, what audio without a transcript gets) against
   forced alignment with the known text (what a script gets): viseme agreement on speech frames,
   /p b m/ found within 50 ms, sentences with every one; synthesis speed.
2. ``--identity``: the avatar driven by a script of four of them spoken by the voice (10 s), as
   ``nerfhead render --text`` does (aligned visemes), head over the plate; the lip-sync proxies
   (a)-(c) of docs/EVALUATION.md of the rendered mouth (and of the mouth input asked) beside the
   real capture's.
3. ``--memory``: peak RSS of ``nerfhead render --text-file`` in a child process for scripts of
   200 and 2,000 words (the whole script spoken and its features computed, ``--duration`` 2 s
   rendered): TTS and features go sentence by sentence and block by block, so the two peaks match.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))

from benchlib import cpu_name, run_measured  # noqa: E402
from train_bilabial import DEV, HELD, score  # noqa: E402


SENTENCES, SECONDS = 4, 10.0  # the script the avatar is driven with, and how much of it is rendered


def script_of(words: int) -> str:
    """A script of about ``words`` words: the development and held-out sentences, repeated."""
    out, n, k = [], 0, 0
    pool = DEV + HELD
    while n < words:
        out.append(pool[k % len(pool)])
        n += len(out[-1].split())
        k += 1
    return " ".join(out)


def phones_check(voice: str) -> str:
    from nerfhead.audio import bilabial, melspec, phones
    from nerfhead.audio.extractors import DefaultExtractor
    from nerfhead.audio.loading import load_normalized
    from nerfhead.audio.tts import synthesize

    ext = DefaultExtractor()
    agree = frames = every = 0
    errors: list[float] = []
    seconds = spoken = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for k, sentence in enumerate(HELD):
            t = time.perf_counter()
            speech = synthesize(text=sentence, voice=voice, out=Path(tmp) / f"{k}.wav", cache=False)
            seconds += time.perf_counter() - t
            x, _ = load_normalized(speech.path)
            spoken += x.size / 16000
            n = -(-x.size // 160)
            aligned = phones.align(x, speech.text, speech.language)
            mel = melspec.log_mel(x, first_centre=-bilabial.PAD * 160, n_frames=n + 2 * bilabial.PAD)
            ids = ext.recognised_visemes(phones.allphone(x), mel, ext.quiet_frames(x, 0, n))
            a, b, errs = score({"aligned": aligned, "n": n}, ids)
            agree, frames, every = agree + a, frames + b, every + int(all(e <= 50 for e in errs))
            errors += errs
    e = np.array(errors)
    return (f"{voice:26s} agreement {agree / frames:6.1%}  /p b m/ within 50 ms {np.mean(e <= 50):6.1%} "
            f"({int(np.sum(e <= 50))}/{e.size})  every one {every:2d}/{len(HELD)}  "
            f"synthesis {spoken:.1f} s of speech in {seconds:.1f} s ({spoken / seconds:.0f}x real time)")


def lips_check(identity: str, voice_names: list[str], root: str | None) -> None:
    from nerfhead.eval.crossdriven import capture_scores, driven_scores
    from nerfhead.render.driven import AvatarRenderer

    renderer = AvatarRenderer(identity, root, torso=False)
    text = " ".join(HELD[:SENTENCES])
    rows = [capture_scores(renderer)]
    for voice in voice_names:
        feats, _ = renderer.features(text=text, voice=voice)
        rows.append(driven_scores(renderer, voice, seconds=SECONDS, feats=feats))
    print(f"--- lip-sync proxies, {identity} driven by {SENTENCES} sentences (the first {SECONDS:g} s) "
          "((a) opening ~ loudness r, (b) /p b m/ closure margin, (c) opening in silence; asked = mouth input)")
    for r in rows:
        print(r.row())


def memory_check(identity: str, voice: str, root: str | None) -> None:
    from nerfhead.io.audio import load_audio

    print(f"--- peak RSS of `nerfhead render {identity} --text-file SCRIPT --voice {voice} --duration 2` "
          "(a child process each, empty cache)")
    with tempfile.TemporaryDirectory() as tmp:
        for words in (200, 2000):
            script = Path(tmp) / f"script{words}.txt"
            script.write_text(script_of(words))
            cmd = [sys.executable, "-m", "nerfhead", "render", identity, "--text-file", str(script), "--voice", voice,
                   "--duration", "2", "-o", str(Path(tmp) / f"r{words}.mp4")] + (["--root", root] if root else [])
            cache = Path(tmp) / f"cache{words}"
            env = dict(os.environ, NERFHEAD_CACHE=str(cache), NERFHEAD_PROGRESS="0")
            rss, wall = run_measured(cmd, env, Path(tmp) / f"r{words}.log", "render")
            spoken = sum(load_audio(w).size for w in (cache / "tts").glob("*.wav")) / 16000
            print(f"{len(script.read_text().split()):5d} words ({spoken:6.1f} s of speech): peak RSS {rss:7.1f} MiB, "
                  f"{wall:6.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--voice", action="append", help="voice name (repeatable)")
    ap.add_argument("--identity", help="a trained identity: also the lip-sync proxies of a render")
    ap.add_argument("--root", help="identities folder")
    ap.add_argument("--memory", action="store_true", help="also peak RSS for 200 and 2,000 words")
    ap.add_argument("--no-phones", action="store_true", help="skip the phones part")
    args = ap.parse_args()
    from nerfhead.audio.voices import default_voice

    names = args.voice or list(dict.fromkeys([default_voice().name, "espeak:en-us"]))
    print(f"processor: {cpu_name()}, {os.cpu_count()} cores")
    print(f"--- phones of the {len(HELD)} held-out sentences: recognition vs forced alignment")
    for voice in [] if args.no_phones else names:
        print(phones_check(voice), flush=True)
    if args.identity:
        lips_check(args.identity, names, args.root)
        if args.memory:
            memory_check(args.identity, names[0], args.root)


if __name__ == "__main__":
    main()
