"""Reconstruction target and loss of the pretraining.

official: maestro/train/model.py ``compute_loss_rec`` (loss ``l1_norm``) and facts
section 2.6: per (sample, date, patch, band group) the target is normalised with the mean
and the **unbiased** variance over the patch's pixels and the group's bands, eps 1e-6; L1
on masked tokens only; modalities weighted by dates x token grid.
"""
from __future__ import annotations

import torch
from torch import Tensor

EPS = 1e-6


def patchify_pixels(x: Tensor, patch_px: int) -> Tensor:
    """[B, T, C, H, W] -> [B, T, L, p, p, C], tokens row-major (the patch embedding order),
    pixels ``(p1 p2 c)`` as the pixel head emits them."""
    b, t, c, h, w = x.shape
    p = patch_px
    y = x.reshape(b, t, c, h // p, p, w // p, p).permute(0, 1, 3, 5, 4, 6, 2)
    return y.reshape(b, t, (h // p) * (w // p), p, p, c)


def normalise_patches(patches: Tensor, band_groups: list[int], eps: float = EPS) -> Tensor:
    """Normalise each (sample, date, token, band group) of ``patches`` [B, T, L, p, p, C]
    by its mean and unbiased variance over the p x p pixels and the group's bands."""
    out = []
    for g in torch.split(patches, band_groups, dim=-1):
        flat = g.flatten(-3)                                   # [B, T, L, p*p*Cg]
        mean = flat.mean(-1, keepdim=True)
        var = flat.var(-1, keepdim=True, unbiased=flat.shape[-1] > 1)
        out.append(((flat - mean) / torch.sqrt(var + eps)).reshape(g.shape))
    return torch.cat(out, dim=-1)


def masked_l1(pred: Tensor, target: Tensor, masked: Tensor) -> tuple[Tensor, Tensor]:
    """Mean L1 over the pixels of masked tokens.

    Args:
        pred, target: [B, T, L, p, p, C] (target already normalised).
        masked: bool [B, T, L], tokens that count.

    Returns:
        (loss, count): scalar mean over the masked tokens' pixels (0 if none) and the
        number of masked tokens.
    """
    err = (pred - target).abs().flatten(3).mean(-1)            # [B, T, L]
    sel = masked.to(err.dtype)
    count = sel.sum()
    # where, not a product: a token left out may hold NaN (missing data) and NaN * 0 is NaN.
    err = torch.where(masked, err, torch.zeros_like(err))
    return err.sum() / count.clamp(min=1.0), count


def combine_losses(losses: dict[str, Tensor], weights: dict[str, float],
                   counts: dict[str, Tensor]) -> Tensor:
    """Sum_m w_m L_m / Sum_m w_m over the modalities that have masked tokens
    (w_m = dates x tokens per date)."""
    num = 0.0
    den = 0.0
    for m, loss in losses.items():
        w = weights[m] * (counts[m] > 0).to(loss.dtype)
        num = num + w * loss
        den = den + w
    return num / torch.clamp(torch.as_tensor(den), min=1e-12)
