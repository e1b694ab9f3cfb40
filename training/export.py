"""ONNX export through the model contract (docs/model-contract.md).

A model to export is a ``torch.nn.Module`` whose ``forward(batch)`` takes one dict keyed by
the contract's input names (``<m>``, ``<m>_dates``, ``<m>_mask`` per modality and
``ref_date``) and returns the task's output tensor; for schema version 2 (the default) it
also has ``contract_outputs(batch) -> {output name: tensor}`` giving the task output and
``embeddings`` from one pass (:class:`training.models.Maestro` does).
:class:`ContractWrapper` turns it into a module with positional inputs in a fixed order for
the exporter.

Schema version 2 (docs/model-contract.md): ``<m>_mask`` is bool [batch, dates, tokens]
(True = token missing), every segmentation/classification graph has the second output
``embeddings`` [batch, dim, h, w] and ``embedding_dim`` set; ``schema_version=1`` in the
metadata still exports the version-1 graph (date mask [batch, dates], task output only),
for tests of the engine's version-1 path.

The legacy TorchScript exporter is used (``dynamo=False``, opset 17): it writes one file
with the weights inside, and keeps batch, dates and token axes dynamic as long as attention
reshapes take their sizes from tensors (see ENVIRONMENT.md).
"""
from __future__ import annotations

import datetime as _dt
import os
import subprocess
import tempfile
from typing import Mapping

import torch
from torch import nn

from engine.contract import (METADATA_KEY, REF_DATE_INPUT, ModelMetadata,
                             read_model_metadata)

OPSET = 17
#: Protobuf's 2 GiB limit on one ONNX file (weights inside, as the contract wants).
ONNX_SINGLE_FILE_LIMIT = 2 ** 31 - 2 ** 24


def input_order(meta: ModelMetadata) -> list[str]:
    """The positional order of the graph inputs: per modality (pixels, dates, mask), then
    ``ref_date``."""
    names: list[str] = []
    for m in meta.modalities:
        names.extend(m.input_names)
    names.append(REF_DATE_INPUT)
    return names


class ContractWrapper(nn.Module):
    """Positional-argument front of a dict-input model, in :func:`input_order`; returns
    the outputs named ``outputs`` (default: the model's single task output)."""

    def __init__(self, model: nn.Module, names: list[str], outputs: list[str] | None = None):
        super().__init__()
        self.model = model
        self.names = list(names)
        self.outputs = list(outputs or [])

    def forward(self, *tensors: torch.Tensor):
        batch = dict(zip(self.names, tensors))
        if len(self.outputs) > 1:
            found = self.model.contract_outputs(batch)
            outs = [found[name] for name in self.outputs]
        else:
            outs = [self.model(batch)]
        # The exporter drops graph inputs a model does not read (a model may ignore a
        # single-date modality's dates, and version 2 ignores the hour). The contract
        # fixes the input list, so every small input (dates, masks, ref_date) is anchored
        # with a zero-weight term.
        anchor = sum(t.to(outs[0].dtype).sum() for name, t in batch.items()
                     if t.dtype != torch.float32)
        outs[0] = outs[0] + 0.0 * anchor
        return outs[0] if len(outs) == 1 else tuple(outs)


def example_batch(meta: ModelMetadata, batch: int = 2, dates: Mapping[str, int] | None = None,
                  seed: int = 0) -> dict[str, torch.Tensor]:
    """Random inputs of the contract's shapes and types.

    Args:
        batch: batch size.
        dates: number of dates per modality (default: min(max_dates, 3)).

    Returns:
        dict: ``m`` float32 [B, T, C, H, W], ``m_dates`` int32 [B, T, 3] (year, doy, hour 0),
        ``m_mask`` bool [B, T, L] for schema version 2 or [B, T] for version 1 (all False =
        every token present), ``ref_date`` int32 [B, 3].
    """
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for m in meta.modalities:
        t = (dates or {}).get(m.name, min(m.max_dates, 3))
        pixels, dname, mname = m.input_names
        out[pixels] = torch.randn(batch, t, len(m.bands), m.tile_px, m.tile_px, generator=gen)
        doy = torch.randint(1, 366, (batch, t), generator=gen, dtype=torch.int32).sort(dim=1).values
        year = torch.full((batch, t), 2020, dtype=torch.int32)
        out[dname] = torch.stack([year, doy, torch.zeros_like(doy)], dim=-1)
        shape = (batch, t, m.tokens) if meta.token_masks else (batch, t)
        out[mname] = torch.zeros(shape, dtype=torch.bool)
    out[REF_DATE_INPUT] = torch.tensor([[2020, 1, 0]] * batch, dtype=torch.int32)
    return out


def contract_feeds(batch: Mapping[str, torch.Tensor], meta: ModelMetadata) -> dict:
    """onnxruntime feeds (numpy, graph input names) from a training batch: masks given as
    date masks [B, T] are broadcast to the version-2 token masks [B, T, tokens]; token
    masks fed to a version-1 graph become date masks (a date is missing when all its
    tokens are). Other keys (``target``...) are left out."""
    feeds = {}
    for m in meta.modalities:
        pixels, dates, mask = m.input_names
        feeds[pixels] = batch[pixels].numpy()
        feeds[dates] = batch[dates].numpy()
        value = batch[mask].to(torch.bool)
        if meta.token_masks and value.dim() == 2:
            value = value[:, :, None].expand(-1, -1, m.tokens)
        elif not meta.token_masks and value.dim() == 3:
            value = value.all(dim=2)
        feeds[mask] = value.contiguous().numpy()
    feeds[REF_DATE_INPUT] = batch[REF_DATE_INPUT].numpy()
    return feeds


def _code_version() -> str:
    try:
        here = os.path.dirname(os.path.abspath(__file__))
        return subprocess.run(["git", "-C", here, "rev-parse", "--short", "HEAD"], check=True,
                              capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def export_onnx(model: nn.Module, meta: ModelMetadata, path: str, opset: int = OPSET,
                radiometry: Mapping[str, Mapping] | None = None) -> ModelMetadata:
    """Export ``model`` to ``path`` as ONNX with the ``maestro`` metadata, then read it back
    through the engine's contract check.

    The metadata's ``schema_version`` chooses the graph (module docstring). For version 2,
    ``embedding_dim`` is taken from the network (``config.embed_dim``) when the metadata
    leaves it unset. ``radiometry`` maps modality names to their ``radiometry`` objects
    (docs/model-contract.md), written into those modalities' metadata.

    The file is written to a temporary name and renamed when complete.

    Returns:
        The metadata as the engine reads it from the written file.

    Raises:
        ValueError: the network disagrees with the metadata, cannot give the version-2
            outputs, or is too large for one file.
        ContractError: the metadata (with ``radiometry``) is invalid.
    """
    import onnx

    meta = _complete_metadata(model, meta, radiometry)
    check_model_metadata(model, meta)
    size = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    if size >= ONNX_SINGLE_FILE_LIMIT:
        raise ValueError(f"model weights take {size / 2**30:.2f} GiB: a single-file ONNX is "
                         "limited to 2 GiB (protobuf); export a smaller model")
    names = input_order(meta)
    outputs = list(meta.output_names)
    if len(outputs) > 1 and not hasattr(model, "contract_outputs"):
        raise ValueError(f"schema version {meta.schema_version} needs the outputs {outputs}: "
                         "the model has no contract_outputs(batch) method")
    wrapper = ContractWrapper(model, names, outputs).eval()
    batch = example_batch(meta)
    args = tuple(batch[n] for n in names)
    dynamic_axes: dict[str, dict[int, str]] = {REF_DATE_INPUT: {0: "batch"}}
    for m in meta.modalities:
        pixels, dname, mname = m.input_names
        axis = f"{m.name}_dates"
        dynamic_axes[pixels] = {0: "batch", 1: axis}
        dynamic_axes[dname] = {0: "batch", 1: axis}
        dynamic_axes[mname] = {0: "batch", 1: axis}
    for name in outputs:
        dynamic_axes[name] = {0: "batch"}
    doc = meta.to_dict()
    prov = dict(doc["provenance"])
    prov.setdefault("created", _dt.date.today().isoformat())
    prov.setdefault("code_version", _code_version())
    doc["provenance"] = prov
    from engine.contract import parse_metadata
    final = parse_metadata(doc)

    out_dir = os.path.dirname(os.path.abspath(path))
    os.makedirs(out_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".onnx.part", dir=out_dir)
    os.close(fd)
    try:
        with torch.no_grad():
            torch.onnx.export(wrapper, args, tmp, dynamo=False, opset_version=opset,
                              input_names=names, output_names=outputs,
                              dynamic_axes=dynamic_axes, do_constant_folding=True)
        proto = onnx.load(tmp)
        _fix_output_shapes(proto, final)
        del proto.metadata_props[:]
        entry = proto.metadata_props.add()
        entry.key = METADATA_KEY
        entry.value = final.to_json()
        proto.producer_name = "maestro-qgis-training"
        onnx.checker.check_model(proto)
        onnx.save(proto, tmp)
        read_back = read_model_metadata(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return read_back


def _fix_output_shapes(proto, meta: ModelMetadata) -> None:
    """Write the outputs' sizes the metadata fixes (classes, embedding_dim, reference tile
    and token grid; engine.contract.expected_outputs) into the graph's output declarations,
    which the tracer leaves symbolic, so that the engine's graph check can compare them."""
    from engine.contract import expected_outputs

    want = expected_outputs(meta)
    for out in proto.graph.output:
        shape = want.get(out.name)
        dims = out.type.tensor_type.shape.dim
        if shape is None or len(dims) != len(shape):
            continue
        for dim, size in zip(dims, shape):
            if size is None:
                dim.dim_param = "batch"
            else:
                dim.dim_value = int(size)


def _complete_metadata(model: nn.Module, meta: ModelMetadata,
                       radiometry: Mapping[str, Mapping] | None) -> ModelMetadata:
    """``meta`` with ``embedding_dim`` (version 2, from the network) and the given
    ``radiometry`` objects filled in, validated again."""
    from engine.contract import parse_metadata

    doc = meta.to_dict()
    changed = False
    cfg = getattr(model, "config", None)
    if meta.schema_version >= 2 and doc.get("embedding_dim") is None:
        dim = getattr(cfg, "embed_dim", None)
        if dim is None:
            raise ValueError("schema version 2 needs embedding_dim: set it in the metadata "
                             "(the model has no config.embed_dim)")
        doc["embedding_dim"] = int(dim)
        changed = True
    for name, value in (radiometry or {}).items():
        items = [m for m in doc["modalities"] if m["name"] == name]
        if not items:
            raise ValueError(f"radiometry given for {name!r}, not a modality of the metadata")
        items[0]["radiometry"] = dict(value)
        changed = True
    return parse_metadata(doc) if changed else meta


def config_from_metadata(meta: ModelMetadata, norm_bands: Mapping[str, list[int]] | None = None,
                         **overrides):
    """The :class:`training.models.MaestroConfig` matching a contract's metadata: one
    ModalityConfig per listed modality (bands, patch, tile, group, max_dates), the task,
    the number of classes and multilabel; ``overrides`` set the size (``size=`` or custom
    ``embed_dim=`` ...), ``grid_pos_enc`` and the rest."""
    from .models import MaestroConfig, ModalityConfig

    mods = [ModalityConfig(name=m.name, bands=len(m.bands), patch_px=m.patch_px,
                           tile_px=m.tile_px, group=m.group or None,
                           norm_bands=(norm_bands or {}).get(m.name), max_dates=m.max_dates)
            for m in meta.modalities]
    kwargs = dict(task=meta.task, num_classes=len(meta.classes), multilabel=meta.multilabel,
                  reference_modality=meta.reference_modality)
    kwargs.update(overrides)
    kwargs.setdefault("grid_pos_enc", meta.reference.tile_px // meta.reference.patch_px)
    return MaestroConfig(modalities=mods, **kwargs)


def check_model_metadata(model: nn.Module, meta: ModelMetadata) -> None:
    """Refuse to export a :class:`training.models.Maestro` whose configuration disagrees
    with the metadata the engine will trust (bands, tiles, patches, dates, task, classes,
    embedding size). Other modules are not checked.

    Raises:
        ValueError: naming the first disagreeing field.
    """
    cfg = getattr(model, "config", None)
    from .models import MaestroConfig

    if not isinstance(cfg, MaestroConfig):
        return
    if cfg.task != meta.task:
        raise ValueError(f"model task {cfg.task!r} but metadata task {meta.task!r}")
    if cfg.reference_modality != meta.reference_modality:
        raise ValueError(f"model reference modality {cfg.reference_modality!r} but metadata "
                         f"{meta.reference_modality!r}")
    names = [m.name for m in cfg.modalities]
    if names != list(meta.modality_names):
        raise ValueError(f"model modalities {names} but metadata {list(meta.modality_names)}")
    for mc in cfg.modalities:
        spec = meta.modality(mc.name)
        for what, ours, theirs in (("bands", mc.bands, len(spec.bands)),
                                   ("tile_px", mc.tile_px, spec.tile_px),
                                   ("patch_px", mc.patch_px, spec.patch_px),
                                   ("group", mc.group_name, spec.group or spec.name)):
            if ours != theirs:
                raise ValueError(f"modality {mc.name}: model {what}={ours} but metadata "
                                 f"{what}={theirs}")
    if meta.embedding_dim is not None and meta.embedding_dim != cfg.embed_dim:
        raise ValueError(f"model embed_dim {cfg.embed_dim} but metadata embedding_dim "
                         f"{meta.embedding_dim}")
    if meta.task != "embedding" and len(meta.classes) != cfg.num_classes:
        raise ValueError(f"model has {cfg.num_classes} classes but metadata lists "
                         f"{len(meta.classes)}")
