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
   random. Missing tokens (``<m>_mask`` True: padded dates, or tokens without data) come
   before everything else: they are masked first so that they carry no information into
   the encoder, and never enter the loss.
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
        padding: modality -> bool [B, T] padded dates or [B, T, L] missing tokens (ignored
            when checking that a group is not entirely masked).

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
    """bool [B, T, L]: True on present tokens (``padding`` [B, T] padded dates, or [B, T, L]
    missing tokens)."""
    b, t, l = shapes[m]
    if padding is None or m not in padding:
        return torch.ones(b, t, l, dtype=torch.bool)
    pad = padding[m].cpu()
    if pad.dim() == 2:
        pad = pad[:, :, None]
    return (~pad).expand(b, t, l)


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


# ----------------------------------------------------------------------------- fine-tuning
@dataclass
class TokenDropout:
    """Random missing tokens for supervised training, so heads learn to predict from what
    is present (issue 11: scene edges, clouds, dropped dates).

    For each sample and each modality, with probability ``p``, one pattern is drawn (equal
    odds; ``dates`` only for a modality with several present dates):

    - ``rectangle``: a random rectangle of tokens (sides 1..grid) in one present date;
    - ``frame``: a border frame of width 1..grid // 2 on a random non-empty set of sides,
      in every date (a scene edge or a rotated footprint's corner);
    - ``dates``: 1..(present dates - 1) whole dates;
    - ``scattered``: every token independently with a probability drawn in 0.1..0.5.

    The new missing tokens are added to those already marked (padded dates). A draw that
    would leave a modality of a sample without any present token is not applied.
    """

    p: float = 0.5

    def __post_init__(self):
        if not 0.0 <= self.p <= 1.0:
            raise ValueError(f"token dropout probability {self.p} outside [0, 1]")


PATTERNS = ("rectangle", "frame", "dates", "scattered")


def _pattern(kind: str, missing: Tensor, grid: int, gen: torch.Generator) -> Tensor:
    """bool [T, L] tokens to drop for one sample of one modality (``missing`` [T, L])."""
    t = missing.shape[0]
    present_dates = (~missing).any(dim=1).nonzero().flatten()
    drop = torch.zeros(t, grid, grid, dtype=torch.bool)

    def rint(lo: int, hi: int) -> int:          # uniform integer in [lo, hi]
        return int(torch.randint(lo, hi + 1, (1,), generator=gen))

    if kind == "rectangle":
        date = int(present_dates[rint(0, len(present_dates) - 1)])
        h, w = rint(1, grid), rint(1, grid)
        r, c = rint(0, grid - h), rint(0, grid - w)
        drop[date, r:r + h, c:c + w] = True
    elif kind == "frame":
        sides = torch.rand(4, generator=gen) < 0.5
        if not sides.any():
            sides[rint(0, 3)] = True
        width = rint(1, max(grid // 2, 1))
        if sides[0]:
            drop[:, :width, :] = True
        if sides[1]:
            drop[:, -width:, :] = True
        if sides[2]:
            drop[:, :, :width] = True
        if sides[3]:
            drop[:, :, -width:] = True
    elif kind == "dates":
        k = rint(1, len(present_dates) - 1)
        order = torch.randperm(len(present_dates), generator=gen)[:k]
        drop[present_dates[order]] = True
    else:
        q = 0.1 + 0.4 * float(torch.rand(1, generator=gen))
        drop = torch.rand(t, grid, grid, generator=gen) < q
    return drop.reshape(t, grid * grid)


def drop_tokens(missing: dict[str, Tensor], grids: dict[str, int], cfg: TokenDropout,
                generator: torch.Generator) -> dict[str, Tensor]:
    """Add random missing tokens (:class:`TokenDropout`) to token masks.

    Args:
        missing: modality -> bool [B, T, L] (True = missing), on any device.
        grids: modality -> token grid side (L = grid ** 2).
        generator: CPU generator (the draws are seeded by it alone).

    Returns:
        modality -> new bool [B, T, L] on the masks' devices.
    """
    out = {}
    for name, mask in missing.items():
        device = mask.device
        new = mask.detach().cpu().clone()
        for i in range(new.shape[0]):
            if float(torch.rand(1, generator=generator)) >= cfg.p:
                continue
            present = int((~new[i]).any(dim=1).sum())
            kinds = [k for k in PATTERNS if k != "dates" or present > 1]
            kind = kinds[int(torch.randint(len(kinds), (1,), generator=generator))]
            if present == 0:
                continue
            cand = new[i] | _pattern(kind, new[i], grids[name], generator)
            if not cand.all():
                new[i] = cand
        out[name] = new.to(device)
    return out


def uncovered_pixels(missing: dict[str, Tensor], grids: dict[str, int], size: int) -> Tensor:
    """bool [B, size, size]: reference-grid pixels where some modality has no present token
    in any date (the engine writes nodata there: docs/model-contract.md, output nodata
    rule). Each modality's token grid is mapped to the ``size`` x ``size`` pixel grid by
    nearest neighbour (tiles of all modalities cover the same ground)."""
    out = None
    for name, mask in missing.items():
        g = grids[name]
        none = mask.all(dim=1).reshape(mask.shape[0], 1, g, g).float()     # [B, 1, g, g]
        px = torch.nn.functional.interpolate(none, size=(size, size), mode="nearest")[:, 0] > 0.5
        out = px if out is None else out | px
    return out


def apply_token_dropout(model, batch: dict[str, Tensor], cfg: TokenDropout,
                        generator: torch.Generator, ignore_index: int = -1
                        ) -> dict[str, Tensor]:
    """A training batch with random missing tokens (:func:`drop_tokens`) in its
    ``<m>_mask`` (now [B, T, L]) and, for segmentation, ``target`` set to ``ignore_index``
    on the pixels left without data (:func:`uncovered_pixels`).

    Args:
        model: the :class:`training.models.Maestro` being trained (its config gives the
            token grids; :meth:`Maestro.missing` reads the current masks).
        batch: contract batch, optionally with ``target`` [B, H, W] (segmentation).

    Returns:
        A new dict (``batch`` is not modified).
    """
    cfg_model = model.config
    names = [m.name for m in cfg_model.modalities if m.name in batch]
    grids = {m: cfg_model.modality(m).grid for m in names}
    new = drop_tokens({m: model.missing(batch, m) for m in names}, grids, cfg, generator)
    out = dict(batch)
    for m in names:
        out[f"{m}_mask"] = new[m]
    target = out.get("target")
    if target is not None and cfg_model.task == "segmentation" and target.dim() == 3:
        bad = uncovered_pixels(new, grids, target.shape[-1]).to(target.device)
        out["target"] = target.masked_fill(bad, ignore_index)
    return out
