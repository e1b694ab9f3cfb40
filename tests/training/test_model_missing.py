"""Token-level missing data in the Maestro network (contract schema version 2): masked
GroupNorm, missing tokens never used as keys, their values never matter, no NaN anywhere,
mask-aware grid resizing, the present-token embedding average."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from training.models.embed import PatchifyBands, masked_group_norm
from training.models.maestro import resize_tokens

from .model_fixtures import small_batch, small_model

TASKS = ("segmentation", "classification", "embedding")


def random_missing(model, batch, p=0.3, seed=0):
    """A [B, T, L] mask per modality, about ``p`` of the tokens missing, never all of a
    sample's tokens."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for m in model.config.modalities:
        b, t = batch[m.name].shape[:2]
        mask = torch.rand(b, t, m.tokens, generator=gen) < p
        mask[:, 0, 0] = False
        out[m.name] = mask
    return out


def pixel_mask(mask: torch.Tensor, patch_px: int) -> torch.Tensor:
    """Token mask [B, T, L] -> pixel mask [B, T, 1, H, W]."""
    b, t, l = mask.shape
    g = int(round(l ** 0.5))
    px = mask.reshape(b, t, g, g).repeat_interleave(patch_px, 2).repeat_interleave(patch_px, 3)
    return px[:, :, None]


def with_garbage(model, batch, masks, seed=1):
    """``batch`` with every pixel of every missing token replaced by garbage (NaN, +-1e30,
    large random values)."""
    gen = torch.Generator().manual_seed(seed)
    out = dict(batch)
    for m in model.config.modalities:
        x = batch[m.name].clone()
        junk = torch.randn(x.shape, generator=gen) * 1e4
        junk.view(-1)[::7] = float("nan")
        junk.view(-1)[1::11] = 1e30
        junk.view(-1)[2::13] = -1e30
        px = pixel_mask(masks[m.name], m.patch_px).expand_as(x)
        out[m.name] = torch.where(px, junk, x)
    return out


def masked(batch, masks):
    out = dict(batch)
    for name, mask in masks.items():
        out[f"{name}_mask"] = mask
    return out


def test_masked_group_norm_is_group_norm_when_nothing_is_missing():
    torch.manual_seed(0)
    layer = PatchifyBands(10, 24, 4)
    with torch.no_grad():
        layer.norm.weight.normal_()
        layer.norm.bias.normal_()
    x = torch.randn(3, 2, 10, 16, 16) * 3 + 1
    none = torch.zeros(3, 2, 16, dtype=torch.bool)
    with torch.no_grad():
        plain = layer(x)
        masked_out = layer(x, none)
    assert masked_out.shape == plain.shape == (3, 2, 16, 24)
    torch.testing.assert_close(masked_out, plain, atol=2e-6, rtol=1e-5)


def test_masked_group_norm_statistics_use_only_present_tokens():
    torch.manual_seed(1)
    norm = torch.nn.GroupNorm(1, 8)
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    y = torch.randn(2, 9, 8)
    missing = torch.zeros(2, 9, dtype=torch.bool)
    missing[0, [1, 4, 5]] = True
    missing[1, :] = True                       # a date without any present token
    poisoned = y.clone()
    poisoned[0, 1] = float("nan")
    poisoned[0, 4] = 1e30
    out = masked_group_norm(poisoned, missing, norm)
    keep = ~missing[0]
    present = y[0, keep]                       # [6, 8]
    want = norm(present.T[None])[0].T          # GroupNorm over the present tokens alone
    torch.testing.assert_close(out[0, keep], want, atol=1e-5, rtol=1e-5)
    assert torch.equal(out[0, ~keep], torch.zeros(3, 8))
    assert torch.equal(out[1], torch.zeros(9, 8))


@pytest.mark.parametrize("task", TASKS)
def test_values_of_missing_tokens_never_matter(task):
    """The same tokens marked missing, their pixels replaced by NaN / +-1e30 / noise: every
    output value is unchanged (present locations and missing ones alike)."""
    model = small_model(task).eval()
    batch = small_batch(model.config, dates={"s2": 4, "s1_asc": 3, "s1_desc": 2})
    masks = random_missing(model, batch)
    with torch.no_grad():
        clean = model.contract_outputs(masked(batch, masks))
        dirty = model.contract_outputs(masked(with_garbage(model, batch, masks), masks))
    for name in clean:
        assert torch.isfinite(dirty[name]).all(), name
        torch.testing.assert_close(dirty[name], clean[name], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("task", TASKS)
def test_every_token_of_a_location_missing_gives_no_nan(task):
    """Location (0, 0) of the reference grid (and the DEM token over it) missing in every
    date of every modality; in a second sample every token of every modality is missing."""
    model = small_model(task).eval()
    batch = small_batch(model.config)
    masks = {}
    for m in model.config.modalities:
        b, t = batch[m.name].shape[:2]
        mask = torch.zeros(b, t, m.tokens, dtype=torch.bool)
        mask[0, :, 0] = True
        mask[1] = True
        masks[m.name] = mask
    with torch.no_grad():
        out = model.contract_outputs(masked(with_garbage(model, batch, masks), masks))
    for name, value in out.items():
        assert torch.isfinite(value).all(), name
    # The embedding is 0 where the reference modality has no present token.
    emb = out["embeddings"]
    assert torch.equal(emb[0, :, 0, 0], torch.zeros(emb.shape[1]))
    assert torch.equal(emb[1], torch.zeros_like(emb[1]))


def test_date_mask_is_the_token_mask_broadcast():
    model = small_model("segmentation").eval()
    batch = small_batch(model.config, dates={"s2": 4})
    batch["s2_mask"][0, 2:] = True
    tokens = dict(batch)
    tokens["s2_mask"] = batch["s2_mask"][:, :, None].expand(-1, -1, 16).clone()
    with torch.no_grad():
        torch.testing.assert_close(model(batch), model(tokens), atol=0, rtol=0)


def test_a_mask_of_the_wrong_size_is_refused():
    model = small_model("segmentation")
    batch = small_batch(model.config)
    batch["s2_mask"] = torch.zeros(2, 3, 15, dtype=torch.bool)
    with pytest.raises(ValueError, match="s2_mask"):
        model(batch)


def test_missing_tokens_are_not_keys_in_the_encoder():
    """A present token's encoder output depends on the other tokens only through those
    that are present: changing the set of present tokens changes it, changing only
    missing ones (values) does not (checked above); and marking every other token of the
    group missing gives the same output as a sequence holding that token alone."""
    model = small_model(None, inter_depth=0).eval()
    batch = small_batch(model.config, batch=1, dates={"s2": 2}, skip=("s1_asc", "s1_desc", "dem"))
    mask = torch.ones(1, 2, 16, dtype=torch.bool)
    mask[0, 1, 5] = False
    alone = dict(batch, s2_mask=mask)
    with torch.no_grad():
        enc = model.encode(alone)["s2"][0, 1, 5]
        # Direct computation: that single token through the group encoder.
        tok = model.embed(alone, "s2")[:, 1, 5:6]
        want = model.encoder["s2"](tok)[0, 0]
    torch.testing.assert_close(enc, want, atol=1e-5, rtol=1e-5)


def test_resize_tokens_is_bilinear_when_nothing_is_missing():
    tok = torch.randn(2, 3, 4, 5)                     # grid 2, D 5
    none = torch.zeros(2, 3, 4, dtype=torch.bool)
    out, miss = resize_tokens(tok, none, 2, 4)
    grid = tok.reshape(6, 2, 2, 5).permute(0, 3, 1, 2)
    want = F.interpolate(grid, size=(4, 4), mode="bilinear", align_corners=False)
    torch.testing.assert_close(out, want.permute(0, 2, 3, 1).reshape(2, 3, 16, 5),
                               atol=1e-6, rtol=1e-6)
    assert not miss.any()


def test_resize_tokens_skips_missing_tokens():
    tok = torch.randn(1, 1, 4, 3)
    missing = torch.tensor([[[True, False, False, False]]])
    dirty = tok.clone()
    dirty[0, 0, 0] = float("nan")
    a, miss_a = resize_tokens(tok, missing, 2, 4)
    b, miss_b = resize_tokens(dirty, missing, 2, 4)
    assert torch.isfinite(b).all()
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    # Output (0, 0) samples source (-0.25, -0.25), clamped to token 0 alone: missing, 0.
    # Every other output location has a present token in its bilinear footprint.
    assert torch.equal(miss_a, miss_b)
    assert miss_a[0, 0, 0] and not miss_a[0, 0, 1:].any()
    assert torch.equal(a[0, 0, 0], torch.zeros(3))
    # With every token missing, every output location is missing and 0.
    c, miss_c = resize_tokens(dirty, torch.ones(1, 1, 4, dtype=torch.bool), 2, 4)
    assert miss_c.all() and torch.equal(c, torch.zeros_like(c))


def test_embedding_averages_present_tokens_only():
    model = small_model("embedding").eval()
    batch = small_batch(model.config, dates={"s2": 3})
    masks = random_missing(model, batch, p=0.5, seed=3)
    batch = masked(batch, masks)
    with torch.no_grad():
        enc = model.encode(batch)["s2"]                         # [B, T, L, D]
        emb = model(batch)                                      # [B, D, 4, 4]
    keep = (~masks["s2"]).float()[..., None]
    want = (enc * keep).sum(1) / keep.sum(1).clamp(min=1)
    torch.testing.assert_close(emb.flatten(2).transpose(1, 2), want, atol=1e-6, rtol=1e-6)


def test_pretraining_with_missing_tokens_is_finite_and_ignores_their_values():
    model = small_model(None).eval()
    batch = small_batch(model.config, dates={"s2": 3})
    masks = random_missing(model, batch, p=0.4, seed=5)
    gen = torch.Generator().manual_seed(0)
    a = model.pretrain_loss(masked(batch, masks), generator=gen)["loss"]
    gen = torch.Generator().manual_seed(0)
    b = model.pretrain_loss(masked(with_garbage(model, batch, masks), masks), generator=gen)["loss"]
    assert torch.isfinite(a)
    torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)
