"""Collate batch-dict items into ``[B, ...]`` tensors."""
from __future__ import annotations

import torch


def collate(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack items key by key. Time series of different lengths are padded to the longest
    (padded slots: zeros, last date repeated, mask True: every token of a token mask
    [T, L]).

    Raises:
        ValueError: items do not hold the same keys.
    """
    if not items:
        raise ValueError("empty batch")
    keys = set(items[0])
    for it in items[1:]:
        if set(it) != keys:
            raise ValueError(f"batch items hold different keys: {sorted(keys ^ set(it))}")
    out: dict[str, torch.Tensor] = {}
    for key in items[0]:
        if f"{key}_mask" in keys and f"{key}_dates" in keys:
            tmax = max(it[key].shape[0] for it in items)
            for it in items:
                t = it[key].shape[0]
                if t < tmax:
                    pad = tmax - t
                    it[key] = torch.cat([it[key], it[key].new_zeros((pad, *it[key].shape[1:]))])
                    d = it[f"{key}_dates"]
                    it[f"{key}_dates"] = torch.cat([d, d[-1:].expand(pad, 3)])
                    m = it[f"{key}_mask"]
                    it[f"{key}_mask"] = torch.cat([m, m.new_ones((pad, *m.shape[1:]))])
    for key in items[0]:
        out[key] = torch.stack([it[key] for it in items])
    return out
