"""Pretraining token masks: structured priorities, then an exact count per group.

official: maestro/conf/mask.py (defaults) and maestro/ssl/mae.py (``mask_struct``,
``mask_seq``); facts section 2.5.

1. Structural mask per modality [B, T, L], an OR of independent Bernoulli draws: the whole
   modality (p_modality, only when its group holds several modalities of the batch), whole
   dates (p_date, only for multi-date inputs) and spatial tubes (p_location, the same
   location on every date). Samples where a group would be entirely structurally masked are
   redrawn (up to ``max_redraws`` times, then left without structural priorities).
2. Per group (all its modalities, dates and locations flattened, length N): exactly
   ``n_masked(N, ratio)`` tokens are masked, structurally masked tokens first, the rest at
   random. Padded dates (``<m>_mask`` True) come before everything else: they are masked
   first so that they carry no information into the encoder, and never enter the loss.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class MaskConfig:
    """Masking hyper-parameters (official defaults: mask_ratio 0.75, mask_mod, mask_dates,
    mask_loc 0.25; band masking and mask_scale are disabled there and absent here)."""

    ratio: float = 0.75
    p_modality: float = 0.25
    p_date: float = 0.25
    p_location: float = 0.25
    max_redraws: int = 100

    def __post_init__(self):
        if not 0.0 <= self.ratio < 1.0:
            raise ValueError(f"mask ratio {self.ratio} outside [0, 1)")
        for name in ("p_modality", "p_date", "p_location"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}={getattr(self, name)} outside [0, 1]")


def n_masked(length: int, ratio: float) -> int:
    """Masked tokens in a group of ``length`` tokens: round(ratio * length), keeping at
    least one visible token so the encoder never gets an empty sequence."""
    return min(int(round(ratio * length)), length - 1)


def _rand(shape, generator: torch.Generator | None) -> Tensor:
    return torch.rand(shape, generator=generator)


def structural_masks(shapes: dict[str, tuple[int, int, int]], groups: dict[str, list[str]],
                     cfg: MaskConfig, generator: torch.Generator | None = None,
                     padding: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
    """Draw the structural masks.

    Args:
        shapes: modality -> (B, T, L) of its tokens.
        groups: group -> its modality names (only modalities present in ``shapes``).
        padding: modality -> bool [B, T] padded dates (ignored when checking that a group
            is not entirely masked).

    Returns:
        modality -> bool [B, T, L] (CPU), True = structurally masked.
    """
    batch = next(iter(shapes.values()))[0]

    def draw(b: int) -> dict[str, Tensor]:
        out = {}
        for mods in groups.values():
            for m in mods:
                _, t, l = shapes[m]
                s = torch.zeros(b, t, l, dtype=torch.bool)
                if len(mods) > 1:
                    s |= (_rand((b, 1, 1), generator) < cfg.p_modality)
                if t > 1:
                    s |= (_rand((b, t, 1), generator) < cfg.p_date)
                s |= (_rand((b, 1, l), generator) < cfg.p_location)
                out[m] = s
        return out

    def bad_samples(masks: dict[str, Tensor]) -> Tensor:
        bad = torch.zeros(batch, dtype=torch.bool)
        for mods in groups.values():
            real = torch.cat([_real(m, shapes, padding).flatten(1) for m in mods], dim=1)
            struct = torch.cat([masks[m].flatten(1) for m in mods], dim=1)
            bad |= real.any(1) & (struct | ~real).all(1)
        return bad

    masks = draw(batch)
    for _ in range(cfg.max_redraws):
        bad = bad_samples(masks)
        if not bad.any():
            return masks
        redo = draw(int(bad.sum()))
        for m in masks:
            masks[m][bad] = redo[m]
    # Still unlucky after max_redraws (only with extreme probabilities): those samples get
    # no structural priority, i.e. plain random masking.
    bad = bad_samples(masks)
    for m in masks:
        masks[m][bad] = False
    return masks


def _real(m: str, shapes, padding) -> Tensor:
    """bool [B, T, L]: True on tokens of real (not padded) dates."""
    b, t, l = shapes[m]
    if padding is None or m not in padding:
        return torch.ones(b, t, l, dtype=torch.bool)
    return (~padding[m].cpu())[:, :, None].expand(b, t, l)


def group_mask(struct: Tensor, padded: Tensor, count: int,
               generator: torch.Generator | None = None) -> Tensor:
    """Mask exactly ``count`` tokens per row: padded first, then structural, then random.

    Args:
        struct: bool [B, N] structural priorities; padded: bool [B, N].

    Returns:
        bool [B, N], True = masked, ``count`` per row.
    """
    noise = _rand(struct.shape, generator) * (~struct).float() - padded.float()
    order = torch.argsort(noise, dim=1)
    masked = torch.zeros_like(struct)
    masked.scatter_(1, order[:, :count], True)
    return masked


def draw_masks(shapes: dict[str, tuple[int, int, int]], groups: dict[str, list[str]],
               cfg: MaskConfig, generator: torch.Generator | None = None,
               padding: dict[str, Tensor] | None = None
               ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Token masks for one batch.

    Returns:
        (masked, structural): modality -> bool [B, T, L] (CPU), True = masked (hidden
        from the encoder, reconstructed by the decoder) / structurally masked.
    """
    struct = structural_masks(shapes, groups, cfg, generator, padding)
    out: dict[str, Tensor] = {}
    for mods in groups.values():
        s = torch.cat([struct[m].flatten(1) for m in mods], dim=1)
        pad = torch.cat([~_real(m, shapes, padding).flatten(1) for m in mods], dim=1)
        masked = group_mask(s, pad, n_masked(s.shape[1], cfg.ratio), generator)
        start = 0
        for m in mods:
            b, t, l = shapes[m]
            out[m] = masked[:, start:start + t * l].reshape(b, t, l)
            start += t * l
    return out, struct
