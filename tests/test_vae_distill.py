"""Distillation: a few steps reduce the loss on a tiny clip set; a killed run resumes where it left off."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch

from edgeprune.vae import CHECKPOINT_NAME, HISTORY_NAME, distill_model, redesign_model, zoo

TEACHER = "edgeprune.vae.zoo:cogvideox_small"
LATENT = (1, 4, 3, 4, 4)  # -> 9x32x32 video
OPTS = dict(batch_size=2, n_train_clips=6, n_heldout_clips=2, threads=1, align_stages=2)


@pytest.fixture(scope="module")
def teacher_weights(tmp_path_factory):
    """A fixed teacher (the spec alone is a fresh random init in every process)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("teacher") / "teacher.pt"
    torch.save(zoo.cogvideox_small().state_dict(), path)
    return str(path)


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)


def test_distillation_reduces_the_loss(tmp_path, teacher_weights):
    d = tmp_path / "s"
    redesign_model(TEACHER, LATENT, d, weights=teacher_weights, preset="small")
    r = distill_model(d, TEACHER, "skimage", 30, teacher_weights=teacher_weights, checkpoint_every=10, lr=3e-3, **OPTS)
    losses = [h["loss"] for h in r.history]
    assert len(losses) == 30 and r.step == 30
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.8 * first, (first, last)
    assert all(h["feat_loss"] > 0 for h in r.history)  # teacher stages were aligned
    # the model dir now holds the EMA student, the run's history and the checkpoint
    hist = json.loads((d / HISTORY_NAME).read_text())
    assert [e["step"] for e in hist["evals"]] == [10, 20, 30]
    assert (d / CHECKPOINT_NAME).exists()
    from edgeprune.models import load_model

    loaded = load_model(str(d))
    assert loaded.metadata["recipe"]["distill"]["steps"] == 30
    z = torch.randn(LATENT)
    with torch.no_grad():
        assert torch.allclose(loaded.module(z), r.student(z), atol=1e-6)


_KILLED_RUN = """
import os, signal, sys, torch
import edgeprune.vae.distill as D
calls = {{"n": 0}}
real = D.gradient_loss
def gradient_loss(a, b, *k):
    calls["n"] += 1
    if calls["n"] == 13:  # SIGKILL in the middle of step 13; the last checkpoint is step 10
        os.kill(os.getpid(), signal.SIGKILL)
    return real(a, b, *k)
D.gradient_loss = gradient_loss
from edgeprune.vae import distill_model
distill_model({dir!r}, {teacher!r}, "skimage", 20, teacher_weights={weights!r}, checkpoint_every=5, **{opts!r})
"""


def test_killed_run_resumes_and_matches_an_uninterrupted_run(tmp_path, teacher_weights):
    killed, straight = tmp_path / "killed", tmp_path / "straight"
    for d in (killed, straight):
        redesign_model(TEACHER, LATENT, d, weights=teacher_weights, preset="small")
    code = textwrap.dedent(_KILLED_RUN.format(dir=str(killed), teacher=TEACHER, weights=teacher_weights, opts=OPTS))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)
    assert proc.returncode == -9, proc.stderr[-2000:]
    ck = torch.load(killed / CHECKPOINT_NAME, weights_only=True)
    assert ck["step"] == 10  # lost steps 11-12 and part of 13: less than one interval

    # a second run without --resume refuses to overwrite the checkpoint
    from edgeprune.errors import EdgepruneError

    with pytest.raises(EdgepruneError, match="--resume"):
        distill_model(killed, TEACHER, "skimage", 20, teacher_weights=teacher_weights, checkpoint_every=5, **OPTS)

    resumed = distill_model(killed, TEACHER, "skimage", 20, teacher_weights=teacher_weights, checkpoint_every=5,
                            resume=True, **OPTS)
    full = distill_model(straight, TEACHER, "skimage", 20, teacher_weights=teacher_weights, checkpoint_every=5, **OPTS)
    assert resumed.step == full.step == 20
    assert [h["step"] for h in resumed.history] == list(range(1, 21))
    assert [e["step"] for e in resumed.evals] == [5, 10, 15, 20]
    # same batches, same optimizer state, same EMA: the resumed run ends where the uninterrupted one does
    for (name, a), b in zip(resumed.student.state_dict().items(), full.student.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-5), name
    assert resumed.history[-1]["loss"] == pytest.approx(full.history[-1]["loss"], rel=1e-3)
