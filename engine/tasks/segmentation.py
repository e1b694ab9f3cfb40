"""Semantic segmentation: one class per reference pixel.

Graph output ``logits`` float32 [batch, classes, tile_px, tile_px] (reference grid);
overlapping tiles are blended (engine.blend), the class is the argmax of the blended logits
(uint8, 255 = nodata, colour table from the model's classes); optional confidence raster.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .spec import STYLE_CLASSES, TaskSpec, class_layout, decode_class_ids, same_grid

if TYPE_CHECKING:
    from ..contract import ModalitySpec, ModelMetadata


def _shape(meta: ModelMetadata) -> tuple[int | None, ...]:
    ref = meta.reference
    return (None, len(meta.classes), ref.tile_px, ref.tile_px)


def _factor(ref: ModalitySpec) -> int:
    return 1


SEGMENTATION = TaskSpec(
    name="segmentation", output_name="logits", output_rank=4, has_classes=True,
    multilabel=False, needs_embedding_dim=False, overlapping_tiles=True,
    algorithm_id="segment", grid_factor=_factor, output_shape=_shape,
    channels=lambda meta: len(meta.classes), to_grid=same_grid, layout=class_layout,
    decode=decode_class_ids, default_style=lambda meta: STYLE_CLASSES, title="Land-cover map")
