"""Embeddings (encoder features): one output pixel per token of the reference modality.

Graph output ``embeddings`` float32 [batch, embedding_dim, tile_px / patch_px, same]: the
fused reference-modality encoder tokens; written as float32, one band per dimension, NaN =
nodata. Every contract-2 model also gives this output (``RunOptions.output="embeddings"``
writes it for any task: :func:`engine.tasks.written_task`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .spec import STYLE_NONE, OutputLayout, TaskSpec, decode_float, same_grid

if TYPE_CHECKING:
    from ..contract import ModalitySpec, ModelMetadata

#: Name of the encoder-feature output (the embedding task's, and every version-2 model's).
EMBEDDINGS_OUTPUT = "embeddings"


def _shape(meta: ModelMetadata) -> tuple[int | None, ...]:
    ref = meta.reference
    return (None, meta.embedding_dim, ref.grid, ref.grid)


def _factor(ref: ModalitySpec) -> int:
    return ref.patch_px


def _channels(meta: ModelMetadata) -> int:
    if meta.embedding_dim is None:
        raise ValueError(f"model '{meta.name}' has no embedding_dim")
    return meta.embedding_dim


def _layout(meta: ModelMetadata) -> OutputLayout:
    dim = _channels(meta)
    return OutputLayout(dim, "float32", tuple(f"embedding_{i}" for i in range(dim)))


EMBEDDING = TaskSpec(
    name="embedding", output_name=EMBEDDINGS_OUTPUT, output_rank=4, has_classes=False,
    multilabel=False, needs_embedding_dim=True, overlapping_tiles=True,
    algorithm_id="embed", grid_factor=_factor, output_shape=_shape, channels=_channels,
    to_grid=same_grid, layout=_layout, decode=decode_float,
    default_style=lambda meta: STYLE_NONE, title="Embeddings", layer_word="embedding")
