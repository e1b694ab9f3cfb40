"""Tiny models exported through the real export path, for the engine's and the plugin's
tests (seconds to build on CPU).

``tiny_metadata`` describes a two-modality model (Sentinel-2 time series as reference,
plus a DEM on a coarser grid) so that alignment, dates and masks are exercised.
TODO(training issue): the network is replaced by a tiny MAESTRO once training/models lands.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.contract import ModelMetadata, build_metadata

from .export import export_onnx

S2_BANDS = ["B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"]
TINY_CLASSES = [
    {"id": 0, "name": "forest", "color": "#1b7837"},
    {"id": 1, "name": "grassland", "color": "#a6dba0"},
    {"id": 2, "name": "artificial", "color": "#d73027"},
]


def tiny_metadata(task: str = "segmentation", tile_px: int = 16) -> ModelMetadata:
    """S2 (10 bands, 10 m, 1-6 dates, reference) + DEM (1 band, 20 m, single date)."""
    return build_metadata(
        name=f"tiny-{task}", task=task, reference_modality="s2",
        modalities=[
            {"name": "s2", "bands": S2_BANDS, "gsd_m": 10.0, "tile_px": tile_px, "patch_px": 4,
             "min_dates": 1, "max_dates": 6,
             "scaling": {"transform": "none", "mean": [0.0] * 10, "std": [5000.0] * 10},
             "nodata": {"fill_value": 0.0}},
            {"name": "dem", "bands": ["elevation"], "gsd_m": 20.0, "tile_px": tile_px // 2,
             "patch_px": 2, "min_dates": 1, "max_dates": 1,
             "scaling": {"transform": "none", "mean": [500.0], "std": [300.0]},
             "nodata": {"fill_value": 0.0}},
        ],
        classes=TINY_CLASSES if task != "embedding" else [],
        multilabel=task == "classification",
        embedding_dim=8 if task == "embedding" else None,
        provenance={"training_data": "random weights (test model)", "licence": "MIT",
                    "metrics": {}},
    )


class _TinyNet(nn.Module):
    """Masked temporal mean per modality, 1x1 convs, fused on the reference grid."""

    def __init__(self, meta: ModelMetadata):
        super().__init__()
        self.meta = meta
        out = meta.embedding_dim or len(meta.classes)
        self.proj = nn.ModuleDict({m.name: nn.Conv2d(len(m.bands), 8, 1) for m in meta.modalities})
        self.head = nn.Conv2d(8, out, 1)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        ref = self.meta.reference
        feats = 0
        for m in self.meta.modalities:
            x = batch[m.name]                                  # [B, T, C, H, W]
            valid = (~batch[f"{m.name}_mask"]).to(x.dtype)     # [B, T]
            w = valid[:, :, None, None, None]
            mean = (x * w).sum(1) / w.sum(1).clamp(min=1.0)    # [B, C, H, W]
            f = self.proj[m.name](mean)
            feats = feats + F.interpolate(f, size=(ref.tile_px, ref.tile_px), mode="bilinear",
                                          align_corners=False)
        out = self.head(torch.relu(feats))
        if self.meta.task == "classification":
            return out.mean(dim=(2, 3))
        if self.meta.task == "embedding":
            return F.avg_pool2d(out, ref.patch_px)
        return out


def export_tiny(path: str, task: str = "segmentation", seed: int = 0) -> ModelMetadata:
    """Build a tiny model with seeded weights and export it to ``path``."""
    torch.manual_seed(seed)
    meta = tiny_metadata(task)
    return export_onnx(_TinyNet(meta).eval(), meta, path)
