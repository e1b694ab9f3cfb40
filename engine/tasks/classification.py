"""Scene (tile) classification: one output pixel per tile footprint, tiles side by side.

Graph output ``logits`` float32 [batch, classes]. Single-label: uint8 class id (argmax,
255 = nodata) with the model's classes; multilabel (metadata ``multilabel``): one float32
band per class, the sigmoid of the logit (score 0..1), band descriptions = class names.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .spec import (STYLE_CLASSES, STYLE_NONE, OutputLayout, TaskSpec, class_layout,
                   decode_class_ids, decode_float)

if TYPE_CHECKING:
    import numpy as np

    from ..contract import ModalitySpec, ModelMetadata


def _shape(meta: ModelMetadata) -> tuple[int | None, ...]:
    return (None, len(meta.classes))


def _factor(ref: ModalitySpec) -> int:
    return ref.tile_px


def _to_grid(out: np.ndarray) -> np.ndarray:
    return out[:, :, None, None]                                   # [B, K, 1, 1]


def _layout(meta: ModelMetadata) -> OutputLayout:
    if meta.multilabel:
        return OutputLayout(len(meta.classes), "float32", tuple(c.name for c in meta.classes))
    return class_layout(meta)


def _decode(values: np.ndarray, ok: np.ndarray, meta: ModelMetadata) -> np.ndarray:
    import numpy as np

    if meta.multilabel:
        return decode_float(1.0 / (1.0 + np.exp(-values)), ok, meta)
    return decode_class_ids(values, ok, meta)


CLASSIFICATION = TaskSpec(
    name="classification", output_name="logits", output_rank=2, has_classes=True,
    multilabel=True, needs_embedding_dim=False, overlapping_tiles=False,
    algorithm_id="classify", grid_factor=_factor, output_shape=_shape,
    channels=lambda meta: len(meta.classes), to_grid=_to_grid, layout=_layout,
    decode=_decode, default_style=lambda meta: STYLE_NONE if meta.multilabel else STYLE_CLASSES,
    title="Classification", layer_word="classification")
