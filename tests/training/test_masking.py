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
