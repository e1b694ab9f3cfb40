"""Masked-autoencoder pretraining: normalised target, L1 on masked tokens, weights,
gradients (facts 2.5, 2.6)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from training.masking import MaskConfig, n_masked
from training.targets import masked_l1, normalise_patches, patchify_pixels

from .model_fixtures import small_batch, small_model


def _numpy_normalised(x, p, groups):
    """Direct loop: per (sample, date, patch, band group), (t - mean) / sqrt(var + 1e-6)
    with the unbiased variance over the patch's pixels and the group's bands."""
    b, t, c, h, w = x.shape
    out = np.zeros((b, t, (h // p) * (w // p), p, p, c))
    edges = np.cumsum([0] + groups)
    for bi in range(b):
        for ti in range(t):
            for i in range(h // p):
                for j in range(w // p):
                    for g0, g1 in zip(edges[:-1], edges[1:]):
                        patch = x[bi, ti, g0:g1, i * p:(i + 1) * p, j * p:(j + 1) * p]
                        norm = (patch - patch.mean()) / np.sqrt(patch.var(ddof=1) + 1e-6)
                        out[bi, ti, i * (w // p) + j, :, :, g0:g1] = norm.transpose(1, 2, 0)
    return out


def test_normalised_target_matches_a_direct_computation():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(2, 2, 10, 8, 8)).astype(np.float32)
    got = normalise_patches(patchify_pixels(torch.from_numpy(x), 4), [4, 4, 2]).numpy()
    np.testing.assert_allclose(got, _numpy_normalised(x.astype(np.float64), 4, [4, 4, 2]),
                               atol=1e-4)


def test_l1_counts_only_masked_tokens_and_is_zero_for_a_perfect_reconstruction():
    torch.manual_seed(0)
    target = torch.randn(2, 3, 4, 2, 2, 5)
    masked = torch.rand(2, 3, 4) < 0.75
    pred = target.clone()
    pred[~masked] += 10.0                       # wrong only where nothing is masked
    loss, count = masked_l1(pred, target, masked)
    assert loss.item() == 0.0 and count.item() == masked.sum().item()
    pred[masked] += 0.5
    loss, _ = masked_l1(pred, target, masked)
    assert loss.item() == pytest.approx(0.5, abs=1e-6)


def test_pretrain_loss_outputs_and_exact_mask_ratio():
    model = small_model(None)
    batch = small_batch(model.config, dates={"s2": 4, "s1_asc": 3, "s1_desc": 2})
    out = model.pretrain_loss(batch, MaskConfig(), torch.Generator().manual_seed(0),
                              return_details=True)
    assert set(out) >= {"loss", "loss_s2", "loss_s1_asc", "loss_s1_desc", "loss_dem",
                        "mask_ratio"}
    masked = out["details"]["masked"]
    groups = {"s2": ["s2"], "s1": ["s1_asc", "s1_desc"], "dem": ["dem"]}
    total = 0
    for mods in groups.values():
        flat = torch.cat([masked[m].flatten(1) for m in mods], dim=1)
        assert (flat.sum(1) == n_masked(flat.shape[1], 0.75)).all()
        total += flat.sum().item()
    n_tokens = sum(v.numel() for v in masked.values())
    assert out["mask_ratio"].item() == pytest.approx(total / n_tokens)
    # loss = sum_m w_m L_m / sum_m w_m with w_m = dates x tokens per date
    w = {"s2": 4 * 16, "s1_asc": 3 * 16, "s1_desc": 2 * 16, "dem": 1 * 4}
    want = sum(w[m] * out[f"loss_{m}"] for m in w) / sum(w.values())
    assert out["loss"].item() == pytest.approx(want.item(), rel=1e-6)
    # each modality loss is the masked L1 between the head's output and the target
    d = out["details"]
    for m in w:
        loss, _ = masked_l1(d["pred"][m], d["target"][m], masked[m])
        assert out[f"loss_{m}"].item() == pytest.approx(loss.item(), rel=1e-6)


def test_perfect_reconstruction_gives_zero_loss_through_the_model():
    """A DEM pixel head that outputs exactly the normalised target makes its loss term 0
    while the other modalities keep theirs."""
    model = small_model(None)
    batch = small_batch(model.config)
    mc = model.config.modality("dem")
    target = normalise_patches(patchify_pixels(model.pixels(batch, "dem"), mc.patch_px),
                               mc.band_groups)                     # [B, 1, 4, 4, 4, 2]
    perfect = target.flatten(3).flatten(1, 2)                      # [B, T*L, p*p*C]
    model.embed_to_rec["dem"].token_pixels = lambda x: perfect + 0 * x.sum()
    out = model.pretrain_loss(batch, generator=torch.Generator().manual_seed(3))
    assert out["loss_dem"].item() == 0.0
    assert out["loss_s2"].item() > 0.1
    wrong = perfect.clone()
    wrong[:, :, 0] += 1.0                                          # every token's first pixel
    model.embed_to_rec["dem"].token_pixels = lambda x: wrong + 0 * x.sum()
    out = model.pretrain_loss(batch, generator=torch.Generator().manual_seed(3))
    assert out["loss_dem"].item() == pytest.approx(1.0 / (4 * 4 * 2), rel=1e-5)


def test_gradients_reach_only_visible_tokens():
    """The loss gradient on the patch embeddings (the encoder's input tokens) is zero for
    every masked token and non-zero for every visible one. (On the pixels themselves it
    is not zero: GroupNorm couples all tokens of a date image, as officially.)"""
    model = small_model(None)
    batch = small_batch(model.config, dates={"s2": 3, "s1_asc": 2, "s1_desc": 2})
    batch["s2_mask"][1, 2] = True                                   # one padded date
    out = model.pretrain_loss(batch, generator=torch.Generator().manual_seed(0),
                              return_details=True)
    out["loss"].backward()
    d = out["details"]
    for m, tokens in d["tokens"].items():
        grad = tokens.grad.abs().sum(-1)                            # [B, T, L]
        hidden = d["masked"][m]
        assert (grad[hidden] == 0).all(), m
        visible = ~hidden
        if m == "s2":
            visible[1, 2] = False
            assert (grad[1, 2] == 0).all()                          # padded date: no gradient
        assert (grad[visible] > 0).all(), m
    # the task heads take no part in pretraining
    assert all(p.grad is None for p in model.head_parameters())
    assert model.encoder["s1"].layers[0][0].to_qkv.weight.grad.abs().sum() > 0


def test_absent_modality_is_skipped():
    model = small_model(None)
    batch = small_batch(model.config, skip=("dem", "s1_desc"))
    out = model.pretrain_loss(batch, generator=torch.Generator().manual_seed(0))
    assert "loss_dem" not in out and "loss_s1_desc" not in out
    assert torch.isfinite(out["loss"])
    out["loss"].backward()
    assert model.encoder["dem"].layers[0][0].to_qkv.weight.grad is None


def test_a_few_steps_fit_a_fixed_batch():
    """Trainability: AdamW on one batch with fixed masks lowers the loss clearly."""
    model = small_model(None, seed=1)
    batch = small_batch(model.config, batch=1)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
    losses = []
    for _ in range(15):
        out = model.pretrain_loss(batch, generator=torch.Generator().manual_seed(0))
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(out["loss"].item())
    assert losses[-1] < 0.85 * losses[0]
