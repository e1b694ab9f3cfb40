"""Small MAESTRO configurations shared by the model tests (tiny custom dims: fast on CPU)."""
from __future__ import annotations

import torch

from training.models import Maestro, MaestroConfig, ModalityConfig

DIMS = dict(embed_dim=24, depth=3, inter_depth=1, heads=2, dim_head=8, mlp_ratio=2,
            dec_dim=20, dec_depth=1, dec_heads=2, dec_dim_head=8, dec_mlp_ratio=2,
            head_heads=4)


def small_modalities() -> list[ModalityConfig]:
    """S2 (reference, 10 bands, time series), S1 ascending + descending sharing the ``s1``
    group, and a single-date DEM on a coarser token grid (2 x 2 vs 4 x 4)."""
    return [
        ModalityConfig("s2", bands=10, patch_px=4, tile_px=16, norm_bands=[4, 4, 2], max_dates=6),
        ModalityConfig("s1_asc", bands=2, patch_px=2, tile_px=8, group="s1",
                       norm_bands=[1, 1], max_dates=4),
        ModalityConfig("s1_desc", bands=2, patch_px=2, tile_px=8, group="s1",
                       norm_bands=[1, 1], max_dates=4),
        ModalityConfig("dem", bands=2, patch_px=4, tile_px=8, rescale_elev=True),
    ]


def small_config(task: str | None = "segmentation", **kw) -> MaestroConfig:
    args = dict(DIMS, modalities=small_modalities(), reference_modality="s2", grid_pos_enc=8,
                task=task, num_classes=0 if task in (None, "embedding") else 5)
    args.update(kw)
    return MaestroConfig(**args)


def small_model(task: str | None = "segmentation", seed: int = 0, **kw) -> Maestro:
    torch.manual_seed(seed)
    return Maestro(small_config(task, **kw))


def small_batch(cfg: MaestroConfig, batch: int = 2, dates: dict[str, int] | None = None,
                seed: int = 0, skip: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
    """Random inputs for ``cfg``: pixels N(0, 1), sorted days of 2021, ref_date 2021-01-01."""
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for m in cfg.modalities:
        if m.name in skip:
            continue
        t = (dates or {}).get(m.name, min(m.max_dates, 3))
        out[m.name] = torch.randn(batch, t, m.bands, m.tile_px, m.tile_px, generator=gen)
        doy = torch.randint(1, 366, (batch, t), generator=gen).sort(dim=1).values
        out[f"{m.name}_dates"] = torch.stack(
            [torch.full_like(doy, 2021), doy, torch.zeros_like(doy)], dim=-1).int()
        out[f"{m.name}_mask"] = torch.zeros(batch, t, dtype=torch.bool)
    out["ref_date"] = torch.tensor([[2021, 1, 0]] * batch, dtype=torch.int32)
    return out
