"""The stage loop stops on time, on Ctrl-C after a whole step, and always saves."""

from __future__ import annotations

import os
import signal
import time

import pytest
import torch

from nerfhead.avatar.checkpoint import REQUIRED, load_checkpoint, save_checkpoint
from nerfhead.train.random_state import rng_state, set_rng_state
from nerfhead.train.loop import run_loop


def test_runs_to_the_end_and_saves():
    saved, seen = [], []
    r = run_loop("t", 0, 25, lambda s: seen.append(s) or {}, saved.append, checkpoint_every=10)
    assert r.finished and r.step == 25 and seen == list(range(25)) and saved == [10, 20, 25]


def test_resume_continues_from_step():
    seen = []
    r = run_loop("t", 7, 10, lambda s: seen.append(s) or {}, lambda s: None)
    assert seen == [7, 8, 9] and r.step == 10


def test_deadline_stops_early():
    r = run_loop("t", 0, 10_000, lambda s: time.sleep(0.01) or {}, lambda s: None, deadline=time.monotonic() + 0.2)
    assert r.out_of_time and not r.finished and 3 < r.step < 100


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_finishes_the_step_then_saves(sig):
    saved, done = [], []

    def step(s):
        if s == 3:
            os.kill(os.getpid(), sig)  # arrives mid-step
        time.sleep(0.01)
        done.append(s)
        return {}

    r = run_loop("t", 0, 100, step, saved.append)
    assert r.interrupted and r.step == 4 and done == [0, 1, 2, 3] and saved == [4]


def test_checkpoint_roundtrip_restores_rng(tmp_path):
    state = rng_state()
    a = torch.rand(3)
    save_checkpoint(tmp_path / "c.pt", {**dict.fromkeys(REQUIRED), "model": {}, "model_meta": {}, "rng": state,
                                        "w": torch.ones(2)})
    ck = load_checkpoint(tmp_path / "c.pt")
    set_rng_state(ck["rng"])
    assert torch.equal(torch.rand(3), a) and torch.equal(ck["w"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]
