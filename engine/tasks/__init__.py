"""The task registry (contract layer): task name -> :class:`TaskSpec`.

The engine's runner, the contract parser, the CLIs and the plugin's algorithms look a task
up here instead of branching on its name. Adding a task (say ``regression``) is one module
beside these, defining a ``TaskSpec``, and one entry in :data:`TASKS` below
(docs/architecture.md, "Adding a task").
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .classification import CLASSIFICATION
from .embedding import EMBEDDING, EMBEDDINGS_OUTPUT
from .segmentation import SEGMENTATION
from .spec import CLASS_NODATA, STYLE_CLASSES, STYLE_NONE, OutputLayout, TaskSpec

if TYPE_CHECKING:
    from ..contract import ModelMetadata

#: The registry, in the order the contract documents the tasks.
TASKS: dict[str, TaskSpec] = {spec.name: spec for spec in (
    SEGMENTATION,
    CLASSIFICATION,
    EMBEDDING,
)}

__all__ = ["CLASS_NODATA", "EMBEDDINGS_OUTPUT", "STYLE_CLASSES", "STYLE_NONE", "TASKS",
           "OutputLayout", "TaskSpec", "get_task", "written_task"]


def get_task(name: str) -> TaskSpec:
    """The spec of task ``name``.

    Raises:
        KeyError: an unknown task (the contract parser refuses those first, naming the field).
    """
    return TASKS[name]


def written_task(meta: ModelMetadata, output: str | None = None) -> TaskSpec:
    """The task whose output a run writes: the model's own for ``output`` None or the
    model's task output name; for another graph output, the registered task that gives it
    (``"embeddings"``: the embedding task, whichever the model's task).

    Raises:
        KeyError: no registered task gives ``output`` (or it is ``logits`` of another task).
    """
    own = TASKS[meta.task]
    if output is None or output == own.output_name:
        return own
    givers = [spec for spec in TASKS.values() if spec.output_name == output]
    if len(givers) != 1:
        raise KeyError(output)
    return givers[0]
