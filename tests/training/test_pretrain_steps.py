"""``Maestro.pretrain_loss`` = forward_encoder -> forward_decoder -> forward_loss (the
reference MAE's steps); the split keeps the loss bit for bit."""
from __future__ import annotations

import pytest
import torch

from training.masking import MaskConfig, n_masked

from .model_fixtures import small_batch, small_model

#: Computed with the single-function ``pretrain_loss`` (before the split, commit 9b9b370's
#: training/models/maestro.py) on :func:`_seeded`, one thread: float32 values as hex.
BEFORE_SPLIT = {
    "loss_s2": "0x1.d364120000000p-1",
    "loss_s1_asc": "0x1.f28d840000000p-1",
    "loss_s1_desc": "0x1.d0eed20000000p-1",
    "loss_dem": "0x1.a532b00000000p-1",
    "loss": "0x1.db73aa0000000p-1",
    "mask_ratio": "0x1.8000000000000p-1",
}


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _seeded():
    """The seeded pretraining model, batch (with missing tokens) and mask generator."""
    model = small_model(task=None, seed=3)
    batch = small_batch(model.config, batch=3, seed=5)
    batch["s2_mask"] = torch.zeros(3, 3, 16, dtype=torch.bool)
    batch["s2_mask"][0, 1, :5] = True
    batch["s2_mask"][2, 2] = True
    return model, batch, torch.Generator().manual_seed(11)


def test_pretrain_loss_is_bit_identical_to_the_value_before_the_split(one_thread):
    model, batch, gen = _seeded()
    out = model.pretrain_loss(batch, MaskConfig(), generator=gen)
    got = {k: float(v.detach().double()).hex() for k, v in out.items()}
    assert got == {k: float.fromhex(v).hex() for k, v in BEFORE_SPLIT.items()}


def test_the_three_steps_compose_to_pretrain_loss(one_thread):
    model, batch, gen = _seeded()
    enc = model.forward_encoder(batch, MaskConfig(), generator=gen)
    # Encoder: exactly the visible tokens of each group, never a missing one.
    for g, mods in enc.groups.items():
        total = sum(enc.shapes[m][1] * enc.shapes[m][2] for m in mods)
        n_keep = total - n_masked(total, 0.75)
        assert enc.encoded[g].shape == (3, n_keep, model.config.embed_dim)
        hidden = torch.cat([enc.masked[m].flatten(1) for m in mods], dim=1)
        assert not torch.gather(hidden, 1, enc.keep_ids[g]).any()
    assert enc.masked["s2"][2, 2].all() and enc.masked["s2"][0, 1, :5].all()
    preds = model.forward_decoder(batch, enc)
    for m, (b, t, l) in enc.shapes.items():
        mc = model.config.modality(m)
        assert preds[m].shape == (b, t, l, mc.patch_px, mc.patch_px, mc.bands)
    out, targets = model.forward_loss(batch, enc, preds)
    assert set(targets) == set(preds)
    assert float(out["loss"].detach()).hex() == float.fromhex(BEFORE_SPLIT["loss"]).hex()
    # A perfect reconstruction has zero loss: the loss compares preds with the targets.
    zero, _ = model.forward_loss(batch, enc, targets)
    assert float(zero["loss"].detach()) == 0.0
