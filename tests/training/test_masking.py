"""Pretraining masks: exact count per group, structural priorities, padding first."""
from __future__ import annotations

import pytest
import torch

from training.masking import MaskConfig, draw_masks, group_mask, n_masked, structural_masks

SHAPES = {"s2": (64, 6, 16), "s1_asc": (64, 4, 16), "s1_desc": (64, 4, 16), "dem": (64, 1, 4)}
GROUPS = {"s2": ["s2"], "s1": ["s1_asc", "s1_desc"], "dem": ["dem"]}


def _group_flat(masks, mods):
    return torch.cat([masks[m].flatten(1) for m in mods], dim=1)


@pytest.mark.parametrize("ratio", [0.75, 0.5, 0.6])
def test_exactly_round_ratio_tokens_are_masked_per_group(ratio):
    masked, _ = draw_masks(SHAPES, GROUPS, MaskConfig(ratio=ratio),
                           torch.Generator().manual_seed(1))
    for g, mods in GROUPS.items():
        flat = _group_flat(masked, mods)
        n = flat.shape[1]
        assert (flat.sum(1) == round(ratio * n)).all(), g
    assert n_masked(4, 0.75) == 3 and n_masked(1, 0.75) == 0 and n_masked(200, 0.75) == 150


def test_structural_masks_are_honoured_first():
    masked, struct = draw_masks(SHAPES, GROUPS, MaskConfig(), torch.Generator().manual_seed(2))
    for mods in GROUPS.values():
        m, s = _group_flat(masked, mods), _group_flat(struct, mods)
        count = m.sum(1)
        few = s.sum(1) <= count
        # rows with fewer structural tokens than the budget: all of them are masked;
        assert (m[few] | ~s[few]).all()
        # rows with more: only structural tokens are masked.
        assert (~m[~few] | s[~few]).all()


def test_structural_kinds():
    torch.manual_seed(0)
    cfg = MaskConfig(p_modality=0.5, p_date=0.0, p_location=0.0)
    struct = structural_masks(SHAPES, GROUPS, cfg, torch.Generator().manual_seed(3))
    # a single-modality group never has its modality masked
    assert not struct["s2"].any() and not struct["dem"].any()
    # in the s1 group, whole modalities, never both for one sample (redrawn)
    asc = struct["s1_asc"].flatten(1)
    desc = struct["s1_desc"].flatten(1)
    assert ((asc.all(1) | ~asc.any(1)) & (desc.all(1) | ~desc.any(1))).all()
    assert asc.all(1).any() and not (asc.all(1) & desc.all(1)).any()

    struct = structural_masks(SHAPES, GROUPS, MaskConfig(p_modality=0, p_date=0.5, p_location=0),
                              torch.Generator().manual_seed(4))
    s2 = struct["s2"]
    assert (s2.all(2) | ~s2.any(2)).all()           # whole dates
    assert not struct["dem"].any()                  # single-date: no date masking

    struct = structural_masks(SHAPES, GROUPS, MaskConfig(p_modality=0, p_date=0, p_location=0.5),
                              torch.Generator().manual_seed(5))
    s2 = struct["s2"]
    assert (s2.all(1) | ~s2.any(1)).all()           # tubes: same locations on every date
    assert s2.any()


def test_no_group_is_left_fully_masked_by_structure():
    cfg = MaskConfig(p_modality=0.9, p_date=0.9, p_location=0.9)
    struct = structural_masks(SHAPES, GROUPS, cfg, torch.Generator().manual_seed(6))
    for mods in GROUPS.values():
        assert not _group_flat(struct, mods).all(1).any()


def test_padded_tokens_are_masked_before_anything_else():
    struct = torch.zeros(3, 8, dtype=torch.bool)
    struct[:, :4] = True
    padded = torch.zeros(3, 8, dtype=torch.bool)
    padded[:, 6:] = True
    m = group_mask(struct, padded, 3, torch.Generator().manual_seed(0))
    assert (m.sum(1) == 3).all()
    assert m[:, 6:].all()                            # both padded tokens
    assert m[:, :4].sum(1).eq(1).all()               # then one structural token


def test_same_generator_same_masks():
    a, _ = draw_masks(SHAPES, GROUPS, MaskConfig(), torch.Generator().manual_seed(7))
    b, _ = draw_masks(SHAPES, GROUPS, MaskConfig(), torch.Generator().manual_seed(7))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_bad_ratio_refused():
    with pytest.raises(ValueError, match="ratio"):
        MaskConfig(ratio=1.0)


# ----------------------------------------------------------------------- token dropout
def _dropout_batch(model, batch_size=64, seed=0):
    from .model_fixtures import small_batch

    batch = small_batch(model.config, batch=batch_size, dates={"s2": 4, "s1_asc": 3,
                                                               "s1_desc": 2}, seed=seed)
    batch["s2_mask"][:3, -1] = True                        # a padded date in 3 samples
    batch["target"] = torch.zeros(batch_size, 16, 16, dtype=torch.long)
    return batch


def test_token_dropout_is_seeded_keeps_padding_and_never_empties_a_sample():
    from training.masking import TokenDropout, apply_token_dropout

    from .model_fixtures import small_model

    model = small_model("segmentation")
    batch = _dropout_batch(model)
    cfg = TokenDropout(0.9)
    a = apply_token_dropout(model, batch, cfg, torch.Generator().manual_seed(3))
    b = apply_token_dropout(model, batch, cfg, torch.Generator().manual_seed(3))
    c = apply_token_dropout(model, batch, cfg, torch.Generator().manual_seed(4))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["s2_mask"], c["s2_mask"])
    assert batch["s2_mask"].shape == (64, 4)                  # the input is left alone
    for m in ("s2", "s1_asc", "s1_desc", "dem"):
        mask = a[f"{m}_mask"]
        assert mask.dim() == 3
        assert not mask.flatten(1).all(dim=1).any(), m       # never every token of a sample
    assert a["s2_mask"][:3, -1].all()                         # padded dates stay missing
    dropped = a["s2_mask"][3:].float().mean()
    assert 0.05 < float(dropped) < 0.8
    assert cfg.p == 0.9 and TokenDropout(0.0).p == 0.0
    with pytest.raises(ValueError, match="probability"):
        TokenDropout(1.5)


def test_token_dropout_draws_every_pattern():
    """Rectangles in one date, frames in every date, whole dates and scattered tokens all
    occur (recognised on the 4 x 4 S2 grid of 4 dates)."""
    from training.masking import TokenDropout, drop_tokens

    gen = torch.Generator().manual_seed(0)
    none = torch.zeros(400, 4, 16, dtype=torch.bool)
    out = drop_tokens({"s2": none}, {"s2": 4}, TokenDropout(1.0), gen)["s2"]
    grids = out.reshape(400, 4, 4, 4)
    per_date = grids.flatten(2).any(dim=2)                   # [N, dates] touched
    whole = grids.flatten(2).all(dim=2)
    one_date = per_date.sum(1) == 1
    every_date_same = (grids == grids[:, :1]).all(dim=(1, 2, 3)) & per_date.all(1)
    frame = every_date_same & ~whole.any(1) & (grids[:, 0, 1:3, 1:3] == False).all(dim=(1, 2))  # noqa: E712
    assert one_date.any()                                    # rectangle
    assert frame.any()                                       # border frame
    assert (whole.any(1) & ~whole.all(1)).any()              # whole dates
    assert ((per_date.sum(1) >= 2) & ~every_date_same).any()   # scattered
    assert out.flatten(1).any(1).float().mean() > 0.9        # p = 1: (almost) every sample


def test_pixels_without_any_present_token_are_ignored_by_the_loss():
    from training.masking import TokenDropout, apply_token_dropout, uncovered_pixels

    from .model_fixtures import small_model

    model = small_model("segmentation")
    batch = _dropout_batch(model, batch_size=2)
    batch["s2_mask"] = torch.zeros(2, 4, 16, dtype=torch.bool)
    batch["s2_mask"][0, :, 0] = True                 # s2 token (0, 0) missing in every date
    batch["dem_mask"] = torch.zeros(2, 1, 4, dtype=torch.bool)
    batch["dem_mask"][1, 0, 3] = True                # dem token (1, 1): s2 pixels 8..15
    bad = uncovered_pixels({m: model.missing(batch, m) for m in ("s2", "dem")},
                           {"s2": 4, "dem": 2}, 16)
    assert bad[0, :4, :4].all() and bad[0].sum() == 16
    assert bad[1, 8:, 8:].all() and bad[1].sum() == 64
    out = apply_token_dropout(model, batch, TokenDropout(0.0), torch.Generator())
    assert (out["target"][bad] == -1).all() and (out["target"][~bad] == 0).all()


def test_supervised_task_drops_tokens_in_training_only():
    from training.tasks import SegmentationTask

    from .model_fixtures import DIMS, small_modalities

    model = {**DIMS, "modalities": [dict(vars(m)) for m in small_modalities()],
             "reference_modality": "s2", "grid_pos_enc": 8, "num_classes": 5}
    task = SegmentationTask(model, token_dropout=1.0, token_dropout_seed=5, use_ema=False)
    batch = _dropout_batch(task.model, batch_size=8)
    dropped = task.drop_tokens(batch)
    assert dropped["s2_mask"].dim() == 3 and dropped["s2_mask"].any()
    again = SegmentationTask(model, token_dropout=1.0, token_dropout_seed=5, use_ema=False)
    assert torch.equal(again.drop_tokens(batch)["s2_mask"], dropped["s2_mask"])
    off = SegmentationTask(model, token_dropout=0.0, use_ema=False)
    assert off.drop_tokens(batch) is batch
