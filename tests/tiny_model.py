"""Tiny models exported through the real export path, for the engine's and the plugin's
tests (seconds to build on CPU). A test helper (moved here from ``training/``): ``training``
never imports it; the benchmark and screenshot scripts do.

``tiny_metadata`` describes a two-modality model (Sentinel-2 time series as reference,
plus a DEM on a coarser grid) so that alignment, dates and masks are exercised.
The network is a real :class:`training.models.Maestro` with tiny custom dimensions, so
the engine's tests run the real architecture (encoders, attention pooling, dates, masks).
"""
from __future__ import annotations

import torch

from engine.contract import ModelMetadata, build_metadata

from training.export import config_from_metadata, export_onnx
from training.models import Maestro, MaestroConfig

S2_BANDS = ["B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"]
#: Width of the tiny network (the smallest that holds the 8 date channels plus a 2D
#: sin-cos position encoding of 2 frequencies per axis).
TINY_DIM = 16
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
        embedding_dim=TINY_DIM if task == "embedding" else None,
        provenance={"training_data": "random weights (test model)", "licence": "MIT",
                    "metrics": {}},
    )


def tiny_config(meta: ModelMetadata) -> MaestroConfig:
    """A tiny real MAESTRO for ``meta``: dim 16, 2 blocks (1 per group + 1 shared)."""
    return config_from_metadata(
        meta, embed_dim=TINY_DIM, depth=2, inter_depth=1, heads=2, dim_head=8, mlp_ratio=2,
        dec_dim=TINY_DIM, dec_depth=1, dec_heads=2, dec_dim_head=8, dec_mlp_ratio=1,
        head_heads=2, grid_pos_enc=meta.reference.tile_px // meta.reference.patch_px * 2)


class _TinyNet(Maestro):
    """The tiny MAESTRO built from the contract metadata (kept under this name for tests)."""

    def __init__(self, meta: ModelMetadata):
        super().__init__(tiny_config(meta))
        self.meta = meta


def build_tiny(task: str = "segmentation", seed: int = 0) -> _TinyNet:
    """The tiny network with weights drawn from ``torch.manual_seed(seed)``, in eval mode."""
    torch.manual_seed(seed)
    return _TinyNet(tiny_metadata(task)).eval()


def export_tiny(path: str, task: str = "segmentation", seed: int = 0) -> ModelMetadata:
    """Build the tiny model with seeded weights (:func:`build_tiny`) and export it to
    ``path``."""
    net = build_tiny(task, seed)
    return export_onnx(net, net.meta, path)
