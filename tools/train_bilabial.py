"""Train and measure the lips-closed detector (nerfhead/audio/bilabial.py).

    .venv/bin/python tools/train_bilabial.py generate   # espeak-ng speech + labels -> WORK/*.pkl
    .venv/bin/python tools/train_bilabial.py train      # -> nerfhead/audio/bilabial.npz
    .venv/bin/python tools/train_bilabial.py evaluate   # held-out figures, before/after

Labels are forced alignments (pocketsphinx, known text) of espeak-ng speech. Training text: the
DEV sentences and seeded random word strings, spoken by TRAIN_VOICES, half of them again with
added noise. Measured on the HELD sentences (never trained on; tests/audio/test_phones.py uses
two of them) with the TRAIN voices at other rates and two voices never trained on.
"""

from __future__ import annotations

import argparse
import os
import pickle
import random
import sys
import tempfile
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
WORK = Path(os.environ.get("BILABIAL_WORK", Path(tempfile.gettempdir()) / "nerfhead-bilabial"))

DEV = [
    "Peter picked a bunch of purple plums from the maple tree.",
    "The big brown bear ambled up the bumpy path.",
    "Mary made a map of the empire before lunch.",
    "Please bring me a cup of hot soup and a sandwich.",
    "My mom baked a blueberry pie for the bishop.",
    "Ben dropped the pipe into the deep muddy pool.",
    "Bobby bought twelve apples at the market yesterday.",
    "A member of the committee promised to improve the budget.",
    "The puppy jumped over the bamboo basket.",
    "Maybe the problem is simply a bad number.",
    "Paul moved his boat up the river in the morning.",
    "The lamp above the bench began to blink.",
    "Emma combed her hair and climbed the steps.",
    "We hope the baby will sleep by the time mom comes home.",
    "Bill played the trumpet at the big parade.",
    "The mob broke the window of the bookshop.",
    "Pam mumbled something about the broken pump.",
    "Imagine a world where people help the poor.",
]
HELD = [
    "Bob put the maple syrup by the small pan, and Mum bought a map of Paris.",
    "My brother keeps a bamboo lamp beside his bed in the empty cabin.",
    "Bring the pumpkin pie to the picnic by the bay.",
    "Members of the public may submit a complaint by email.",
    "The plumber grabbed a rubber mop from the bucket.",
    "Please remember to buy bread, milk and butter.",
    "A humble man sat upon the bamboo mat and hummed.",
    "The ambulance stopped beside the bus stop at midnight.",
    "Barbara mapped the bumpy road up the mountain.",
    "Tom parked his blue bike behind the gym.",
    "My neighbour's puppy barks at the postman every morning.",
    "The prime minister promised more jobs and better pay.",
    "Beneath the palm tree the tiny lamb lay perfectly calm.",
    "Put the empty bottles in the bin by the pump.",
    "Sam observed a bumblebee above the pink blossom.",
    "Maps, books and pens were piled up on the table.",
    "The boy will probably swim in the pool before supper.",
    "Maybe a bubble bath will help me unwind.",
]
WORDS = """about above after again air all also always animal answer any apple around ask away back
ball band bank base bath beach bean beat became bed beer before begin behind believe bell below
best better big bird black blood blow blue board body book born both bottom box boy brain bread
break bright bring broad brother brown build bus busy but buy by cab cake call camp can car care
case cat chair change check child city class clean climb clock close cloud coat cold come common
cook cool corn could country cover cup cut dark day deep dim dog door down draw dream dress drop
dust each early earth east eat egg end enough even every eye face fact fall family far farm fast
father feel few field fill find fine fire first fish five floor fly food foot form four free
friend from front fruit full game garden gas girl give glass go gold good grass great green
ground group grow hair half hand happy hard hat have head hear heavy help here high hill hold
home hope horse hot hour house how hump ice idea inch iron island job jump just keep key kind
king lamb lamp land large last late laugh lay lead leave left leg less letter light like line
lip little live long look lot love low lump machine mad made mail main make man many map mark
market matter may mean meat meet men metal middle might mile milk mind mine miss moment money
month moon more most mother mountain mouth move much music must my name near neck need never new
next nice night nine noise north nose note number ocean odd off often oil old once open orange
other our out over page paint pair paper park part party pass past path pay pen people perhaps
person pick picture piece pig pin pink place plan plane plant play please plenty pocket point
pole pool poor power press pretty print problem pull pump push put queen quick quiet rain ran
reach read ready red remember rest rich ride right ring river road rock roof room rope rose round
row rub rule run safe sail salt same sand save say school sea seat see seem sell send seven shape
sharp she ship shop short show side sign simple sing sit six sky sleep slow small smell smile
snow soap soft some son song soon sound soup south space speak spell spend spoon spring stamp
stand star start step stick still stone stop storm story street strong such sugar summer sun
supper sure swim table tail take talk tall team tell ten than that then there thick thin thing
think three through time tiny today top tomb town tree trip true try tube turn two under up upon
use very voice wait walk warm wash watch water wave way we wear web week well west what wheel
when white why wide wild will wind window winter wise with woman wood word work world year yes
young zebra zoom""".split()
# espeak-ng voices (the "espeak:" prefix: a bare "en-us" is piper's voice where piper is installed)
TRAIN_VOICES = [("espeak:en-us", 150), ("espeak:en-us", 180), ("espeak:en-gb", 160), ("espeak:en-us+f3", 170),
                ("espeak:en-us+m3", 150), ("espeak:en-gb+f3", 190), ("espeak:en-us+f1", 160),
                ("espeak:en-gb-scotland", 170), ("espeak:en-us+m1", 200)]
EVAL_VOICES = [("espeak:en-us", 160), ("espeak:en-us", 190), ("espeak:en-gb", 180), ("espeak:en-us+f3", 140),
               ("espeak:en-us+m3", 200), ("espeak:en-gb+f3", 170)]
UNSEEN_VOICES = [("espeak:en-029", 170), ("espeak:en-gb-x-rp+f2", 150)]


def random_strings(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 11))).capitalize() + "."
            for _ in range(n)]


def _utterance(job):
    from nerfhead.audio import melspec, phones
    from nerfhead.audio.loading import load_normalized
    from nerfhead.audio.tts import synthesize

    split, text, voice, rate, noise_db = job
    with tempfile.TemporaryDirectory() as tmp:
        speech = synthesize(text=text, voice=voice, rate=rate, out=Path(tmp) / "s.wav", cache=False)
        x, _ = load_normalized(speech.path)
    try:
        aligned = phones.align(x, text, "en-us")
    except phones.AlignmentError:
        return None
    if noise_db is not None:  # noise at a level below the speech (-23 dBFS RMS): room, hiss
        # seeded by the voice's espeak-ng name, as when the shipped detector was trained
        rng = np.random.default_rng(zlib.crc32(f"{text}|{voice.removeprefix('espeak:')}|{rate}".encode()))
        noise = rng.normal(size=x.size).astype(np.float32)
        if rng.random() < 0.5:  # pink-ish
            noise = np.cumsum(noise) * 0.02
            noise -= np.convolve(noise, np.ones(200) / 200, mode="same")
        noise *= 10 ** (noise_db / 20) / (np.sqrt(np.mean(noise ** 2)) + 1e-9)
        x = (x + noise).astype(np.float32)
    n = -(-x.size // 160)
    from nerfhead.audio.bilabial import PAD

    return dict(split=split, text=text, voice=voice, rate=rate, noise_db=noise_db, n=n,
                mel=melspec.log_mel(x, first_centre=-PAD * 160, n_frames=n + 2 * PAD),
                quiet=_quiet(x, n), aligned=aligned, allphone=phones.allphone(x))


def _quiet(x, n):
    from nerfhead.audio.extractors import DefaultExtractor

    return DefaultExtractor().quiet_frames(x, 0, n)


def generate(args) -> None:
    os.environ["NERFHEAD_AUDIO_WORKERS"] = "0"
    WORK.mkdir(parents=True, exist_ok=True)
    train_text = DEV + random_strings(args.n_random)
    rng = random.Random(3)
    jobs = []
    for text in train_text:
        for voice, rate in TRAIN_VOICES:
            jobs.append(("train", text, voice, rate, None))
            if rng.random() < 0.5:
                jobs.append(("train", text, voice, rate + 10, rng.uniform(-65, -40)))
    for text in HELD:
        for voice, rate in EVAL_VOICES:
            jobs.append(("held", text, voice, rate, None))
        for voice, rate in UNSEEN_VOICES:
            jobs.append(("unseen", text, voice, rate, None))
    with ProcessPoolExecutor(args.jobs) as ex:
        data = [d for d in ex.map(_utterance, jobs, chunksize=4) if d is not None]
    print(f"{len(data)} of {len(jobs)} utterances aligned")
    with open(WORK / "data.pkl", "wb") as f:
        pickle.dump(data, f)


def _load():
    with open(WORK / "data.pkl", "rb") as f:
        return pickle.load(f)


def _ids(d):
    from nerfhead.audio import visemes

    ids = visemes.segments_to_frames(d["allphone"], d["n"])
    ids[d["quiet"]] = 0
    return ids


def train(args) -> None:
    import torch

    from nerfhead.audio import bilabial, visemes

    data = [d for d in _load() if d["split"] == "train"]
    X, Y = [], []
    for d in data:
        X.append(bilabial.inputs(d["mel"], _ids(d)))
        Y.append((visemes.segments_to_frames(d["aligned"], d["n"]) == 1).astype(np.float32))
    X, Y = np.concatenate(X), np.concatenate(Y)
    mean, std = X.mean(0), X.std(0) + 1e-3
    print(f"{len(data)} utterances, {len(X)} frames, {Y.mean():.1%} lips closed, {X.shape[1]} inputs")
    torch.manual_seed(0)
    h = args.hidden
    net = torch.nn.Sequential(torch.nn.Linear(X.shape[1], h), torch.nn.ReLU(), torch.nn.Linear(h, h // 2),
                              torch.nn.ReLU(), torch.nn.Linear(h // 2, 1))
    xt, yt = torch.from_numpy((X - mean) / std), torch.from_numpy(Y)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3, weight_decay=1e-4)
    for epoch in range(args.epochs):
        perm = torch.randperm(len(xt))
        total = 0.0
        for i in range(0, len(xt), 512):
            idx = perm[i:i + 512]
            xb = xt[idx] + 0.1 * torch.randn(len(idx), xt.shape[1])  # input noise: smoother, more general
            loss = torch.nn.functional.binary_cross_entropy_with_logits(net(xb)[:, 0], yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss) * len(idx)
        if epoch % 5 == 4 or epoch == args.epochs - 1:
            print(f"epoch {epoch + 1}: loss {total / len(xt):.4f}")
    l1, l2, l3 = net[0], net[2], net[4]
    w = {"mean": mean, "std": std, "w1": l1.weight.T, "b1": l1.bias, "w2": l2.weight.T, "b2": l2.bias,
         "w3": l3.weight.T, "b3": l3.bias}
    w = {k: (v.detach().numpy() if hasattr(v, "detach") else v).astype(np.float16 if k[0] == "w" else np.float32)
         for k, v in w.items()}
    np.savez_compressed(bilabial.WEIGHTS, **w)
    print(f"wrote {bilabial.WEIGHTS} ({bilabial.WEIGHTS.stat().st_size} bytes, "
          f"{sum(v.size for v in w.values())} numbers)")


def score(d, ids):
    from nerfhead.audio import visemes

    fa = visemes.segments_to_frames(d["aligned"], d["n"])
    spoken = fa != 0
    v1 = np.diff(np.concatenate([[0], (ids == 1).astype(np.int8), [0]]))
    found = (np.where(v1 == 1)[0] + np.where(v1 == -1)[0] - 1) / 2
    errors = [np.min(np.abs(found - (s + e) / 2)) * 10 if found.size else np.inf
              for p, s, e in d["aligned"] if visemes.viseme_of(p) == 1]
    return int(np.sum(fa[spoken] == ids[spoken])), int(spoken.sum()), errors


def evaluate(args) -> None:
    from nerfhead.audio import bilabial

    data = _load()
    for split in ("held", "unseen"):
        rows = {}
        for d in data:
            if d["split"] != split:
                continue
            before = _ids(d)
            after = bilabial.refine(d["mel"], before, ~d["quiet"])
            for key in ("all", f"{d['voice']}@{d['rate']}"):
                r = rows.setdefault(key, {"before": [0, 0, [], 0], "after": [0, 0, [], 0]})
                for name, ids in (("before", before), ("after", after)):
                    a, b, errs = score(d, ids)
                    r[name][0] += a
                    r[name][1] += b
                    r[name][2] += errs
                    r[name][3] += int(all(e <= 50 for e in errs))
        print(f"--- {split} sentences ({len(HELD)}), speech-frame agreement / /p b m/ within 50 ms / "
              "utterances with every /p b m/")
        for key, r in rows.items():
            line = f"{key:22s}"
            for name in ("before", "after"):
                a, b, errs, ok = r[name]
                errs = np.array(errs)
                line += f"  {name} {a / b:6.1%} {np.mean(errs <= 50):6.1%} ({np.sum(errs <= 50)}/{errs.size}) {ok:3d}"
            print(line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["generate", "train", "evaluate"])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--n-random", type=int, default=40)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=30)
    args = ap.parse_args()
    {"generate": generate, "train": train, "evaluate": evaluate}[args.command](args)


if __name__ == "__main__":
    main()
