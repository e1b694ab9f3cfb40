"""What a task is: the :class:`TaskSpec` every task module fills in (registry: ``__init__.py``).

A task ties together what the rest of the code used to branch on by name: the graph output
the model gives and its shape, the output grid (one pixel per reference pixel, per token or
per tile), how tile outputs are made blendable, what raster is written and how the blended
values are decoded into it, how the plugin styles it and which Processing algorithm runs it.

Pure Python (the contract layer, imported by engine.contract); numpy is imported by the
functions that decode arrays, so the contract still loads where numpy does not.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    import numpy as np

    from ..contract import ModalitySpec, ModelMetadata

#: Value of a class-id pixel without valid input (uint8 outputs).
CLASS_NODATA = 255

#: Plugin styles a task's output gets when loaded (maestro_plugin/styling.py).
STYLE_CLASSES = "classes"    # paletted renderer: the model's class names and colours
STYLE_NONE = "none"          # QGIS's default renderer (scores, features)


@dataclass(frozen=True)
class OutputLayout:
    """The raster a run writes.

    Attributes:
        count: bands.
        dtype: ``uint8`` (class ids, nodata :data:`CLASS_NODATA`) or ``float32`` (nodata NaN).
        band_names: one description per band.
        classes: the model's classes when the raster holds class ids (colour table,
            category names), else ().
    """

    count: int
    dtype: str
    band_names: tuple[str, ...]
    classes: tuple = ()

    @property
    def class_ids(self) -> bool:
        """True when the values are class ids (a confidence raster can go with them)."""
        return self.dtype == "uint8"


@dataclass(frozen=True)
class TaskSpec:
    """One task of the model contract.

    Attributes:
        name: the metadata's ``task`` value (``segmentation``...).
        output_name: the graph output holding the task's result.
        output_rank: rank of that output ([batch, channels] = 2, [batch, channels, h, w] = 4).
        has_classes: the metadata lists classes (at least one); else ``classes`` is empty.
        multilabel: the metadata may set ``multilabel``.
        needs_embedding_dim: the metadata must give ``embedding_dim``.
        overlapping_tiles: tiles may overlap (False: tiles side by side, one output pixel
            per tile footprint).
        algorithm_id: the Processing algorithm that runs it (``maestro:<id>``).
        grid_factor: reference-modality spec -> reference pixels per output pixel (1,
            ``patch_px`` or ``tile_px``).
        output_shape: metadata -> graph output shape (None = dynamic).
        channels: metadata -> channels of the blended output (classes or embedding_dim).
        to_grid: model output batch -> float [batch, channels, h, w] on the output grid.
        layout: metadata -> the :class:`OutputLayout` written.
        decode: ``(mean values [channels, rows, cols] float, ok [rows, cols] bool, metadata)``
            -> the main raster's rows [count, rows, cols] (invalid pixels as nodata).
        default_style: :data:`STYLE_CLASSES` or :data:`STYLE_NONE`, given the metadata.
        title: what the result is called in the plugin (dock messages, layer names).
        layer_word: word added to a result layer's name ('' for the land-cover map).
    """

    name: str
    output_name: str
    output_rank: int
    has_classes: bool
    multilabel: bool
    needs_embedding_dim: bool
    overlapping_tiles: bool
    algorithm_id: str
    grid_factor: Callable[[ModalitySpec], int]
    output_shape: Callable[[ModelMetadata], tuple[int | None, ...]]
    channels: Callable[[ModelMetadata], int]
    to_grid: Callable[[np.ndarray], np.ndarray]
    layout: Callable[[ModelMetadata], OutputLayout]
    decode: Callable[[np.ndarray, np.ndarray, ModelMetadata], np.ndarray]
    default_style: Callable[[ModelMetadata], str]
    title: str = "Result"
    layer_word: str = ""


# ------------------------------------------------------------------ shared building blocks
def same_grid(out: np.ndarray) -> np.ndarray:
    """The output is already [batch, channels, h, w]."""
    return out


def class_layout(meta: ModelMetadata) -> OutputLayout:
    """One uint8 band of class ids with the model's classes."""
    return OutputLayout(1, "uint8", ("class",), tuple(meta.classes))


def decode_class_ids(values: np.ndarray, ok: np.ndarray, meta: ModelMetadata) -> np.ndarray:
    """Class id of the largest mean logit, :data:`CLASS_NODATA` where not ``ok``: uint8
    [1, rows, cols]."""
    import numpy as np

    classes = values.argmax(axis=0).astype(np.uint8)
    classes[~ok] = CLASS_NODATA
    return classes[None]


def decode_float(values: np.ndarray, ok: np.ndarray, meta: ModelMetadata) -> np.ndarray:
    """The values as float32, NaN where not ``ok``."""
    import numpy as np

    out = values.astype(np.float32)
    out[:, ~ok] = np.nan
    return out


def confidence(values: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Max softmax probability of mean logits [channels, rows, cols]: float32 [1, rows, cols],
    NaN where not ``ok``."""
    import numpy as np

    shifted = values - values.max(axis=0, keepdims=True)
    conf = (1.0 / np.exp(shifted).sum(axis=0)).astype(np.float32)  # max softmax
    conf[~ok] = np.nan
    return conf[None]
