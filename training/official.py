"""Import an official MAESTRO checkpoint (IGNF/MAESTRO, PyTorch Lightning ``.ckpt``) and
export it as a contract ONNX model.

The checkpoint is a pickle holding ``state_dict`` (keys ``model.*`` and an EMA copy
``ema_model.*``) and ``hyper_parameters`` with pickled config dataclasses such as
``maestro.conf.mask.MaskConfig`` (facts section 5, official: maestro/train/model.py,
maestro/conf/mask.py). It is read with ``torch.load(weights_only=True)``: the restricted
unpickler only builds tensors, containers and the classes of an allow-list. The official
config classes (anything of the official ``maestro``/``conf`` packages, plus names listed
in the import config) are replaced by inert stubs (:class:`ConfigStub`) that only keep the
pickled state; any other class or callable makes the load fail with
:class:`OfficialCheckpointError` naming it. Nothing from the checkpoint runs any code.

The model is described by a YAML file (the official run config cannot be read from the
checkpoint without the official code), for example::

    name: maestro-flair-hub-base
    size: base               # tiny | small | base (= medium) | large, or custom dims
    inter_depth: 3
    grid_pos_enc: 160
    reference_modality: aerial
    head_name: cosia         # head to take from the checkpoint (official target name)
    rename: {s1_des: s1_desc, sen1: s1}   # checkpoint key parts -> our names
    extra_stub_classes: []   # further pickled config classes to stand in for by stubs
    modalities:
      - name: aerial
        bands: [NIR, R, G, B]
        gsd_m: 0.2
        tile_px: 512
        patch_px: 16
        norm_bands: [1, 3]
        scaling: {transform: none, mean: [0, 0, 0, 0], std: [255, 255, 255, 255]}
      - name: dem
        bands: [DSM, DTM]
        gsd_m: 0.2
        tile_px: 512
        patch_px: 32
        rescale_elev: true
        scaling: {transform: none, mean: [0, 0], std: [1000, 1000]}
      - {name: s2, bands: [...], gsd_m: 10.24, tile_px: 10, patch_px: 2, max_dates: 16,
         norm_bands: [4, 4, 2], ...}
      - {name: s1_asc, group: s1, ...}
    classes: [{id: 0, name: building, color: "#db0e9a"}, ...]   # segmentation/classification
    multilabel: false
    provenance: {training_data: FLAIR-HUB, licence: etalab-2.0, metrics: {}}

Modality items take the contract fields (``bands``, ``gsd_m``, ``tile_px``, ``patch_px``,
``min_dates``, ``max_dates``, ``scaling``, ``nodata``, ``group``) plus the model fields
``norm_bands`` and ``rescale_elev``.
"""
from __future__ import annotations

import argparse
import os
import re
from typing import Any, Mapping

import torch

from engine.contract import build_metadata
from engine.tasks import TASKS

from .export import config_from_metadata, export_onnx
from .models import Maestro

#: Pickled classes the official checkpoints are known to hold (facts section 5); each is
#: replaced by an inert stub. Extend per checkpoint with ``extra_stub_classes``.
STUB_CLASSES = (
    "maestro.conf.mask.MaskConfig",
)
#: Top-level packages of the official code (``maestro``; ``conf`` in older versions): any
#: class of theirs found in a checkpoint is a config object and becomes a stub.
STUB_NAMESPACES = ("maestro", "conf")
#: Older official key spellings -> ours (official: maestro/layers/embed.py before the
#: rename to ``conv``/``norm``).
KEY_ALIASES = {"conv_skip": "conv", "norm_skip": "norm"}
MODEL_PREFIX = "model."
EMA_PREFIX = "ema_model."


class OfficialCheckpointError(ValueError):
    """The checkpoint cannot be read or does not fit the configured model."""


class ConfigStub:
    """Inert stand-in for a pickled official config class: stores the pickled state in
    ``state`` and runs nothing."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs, self.state = args, kwargs, None

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<stub {type(self).__module__}.{type(self).__qualname__} {self.state!r}>"


def _stub(qualified: str) -> tuple[type, str]:
    module, _, name = qualified.rpartition(".")
    cls = type(name, (ConfigStub,), {"__module__": module, "__qualname__": name})
    return cls, qualified


def load_checkpoint(path: str, extra_stub_classes: tuple[str, ...] | list[str] = ()
                    ) -> dict[str, Any]:
    """Read an official checkpoint safely.

    The pickled globals are listed first without unpickling anything; those of the official
    code's namespaces (:data:`STUB_NAMESPACES`: its config dataclasses) and those named in
    ``extra_stub_classes`` are replaced by inert stubs; any other global outside torch's own
    allow-list is refused by the restricted unpickler.

    Returns:
        The unpickled top-level object (a dict with ``state_dict`` for a Lightning
        checkpoint, or a bare state dict). Its ``"__stubbed__"`` entry (dicts only) lists
        the stubbed class names.

    Raises:
        OfficialCheckpointError: unreadable file, or a pickled global outside the
            allow-list (named in the message).
    """
    if not os.path.isfile(path):
        raise OfficialCheckpointError(f"checkpoint not found: {path}")
    try:
        found = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception as exc:
        raise OfficialCheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
    names = sorted({*STUB_CLASSES, *extra_stub_classes,
                    *(g for g in found if g.split(".")[0] in STUB_NAMESPACES)})
    try:
        with torch.serialization.safe_globals([_stub(name) for name in names]):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # the restricted unpickler raises UnpicklingError/RuntimeError
        refused = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if refused is None:
            raise OfficialCheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
        raise OfficialCheckpointError(
            f"refused to load {path}: it holds a pickled {refused.group(1)}, which is not on "
            "the allow-list of the restricted unpickler. If that is a plain official config "
            "class, list it under extra_stub_classes in the import config") from exc
    if isinstance(ckpt, dict):
        ckpt["__stubbed__"] = [n for n in names if n in found]
    return ckpt


#: Which weights of a checkpoint to import: the EMA copy (official fine-tuning evaluates it,
#: maestro/train/base.py ``probe_or_finetune_step``: validation and test of the finetune
#: phase run ``self.ema_model``) or the trained model itself.
WEIGHT_SETS = ("ema", "model")


def model_state(ckpt: Mapping[str, Any], weights: str = "ema"
                ) -> tuple[dict[str, torch.Tensor], int]:
    """The network weights of a checkpoint, prefix removed: the ``ema_model.*`` copy
    (``weights="ema"``, the default, as the official evaluation) or the ``model.*`` ones
    (``"model"``). A bare state dict (no Lightning prefixes) is its only set of weights,
    whatever ``weights`` says.

    Returns:
        (state dict, number of tensors of the other set left aside).

    Raises:
        OfficialCheckpointError: no state dict, no weights, ``weights`` not in
            :data:`WEIGHT_SETS`, or EMA weights asked for from a checkpoint without them
            (trained with ``use_ema=False``: import it with ``--weights model``).
    """
    if weights not in WEIGHT_SETS:
        raise OfficialCheckpointError(f"weights must be one of {WEIGHT_SETS}, got {weights!r}")
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, Mapping) else None
    if state is ckpt and isinstance(state, Mapping):
        state = {k: v for k, v in state.items() if k != "__stubbed__"}
    if not isinstance(state, Mapping):
        raise OfficialCheckpointError("checkpoint holds no state_dict")
    sets: dict[str, dict[str, torch.Tensor]] = {"ema": {}, "model": {}}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            continue
        if key.startswith(EMA_PREFIX):
            sets["ema"][key[len(EMA_PREFIX):]] = value
        elif key.startswith(MODEL_PREFIX):
            sets["model"][key[len(MODEL_PREFIX):]] = value
    if not sets["ema"] and not sets["model"]:
        # A bare state dict of the network (no Lightning prefixes).
        bare = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
        if not bare:
            raise OfficialCheckpointError(f"checkpoint holds no '{MODEL_PREFIX}*' weights")
        return bare, 0
    if not sets[weights]:
        prefix = EMA_PREFIX if weights == "ema" else MODEL_PREFIX
        other = "model" if weights == "ema" else "ema"
        raise OfficialCheckpointError(
            f"checkpoint holds no '{prefix}*' weights (only {len(sets[other])} "
            f"'{EMA_PREFIX if other == 'ema' else MODEL_PREFIX}*'); import it with "
            f"--weights {other}")
    other = "model" if weights == "ema" else "ema"
    return sets[weights], len(sets[other])


def map_state(state: Mapping[str, torch.Tensor], model: Maestro,
              rename: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Map official keys onto ``model`` and load what fits.

    Each dotted key part is renamed through ``rename`` (modality/group names) and
    :data:`KEY_ALIASES`; the learned query of the attentive pooling and the mask tokens
    are reshaped when only their singleton axes differ.

    Returns:
        report: ``loaded`` (count), ``missing`` (our keys without weights), ``unexpected``
        (checkpoint keys we have no module for), ``mismatched`` ({key: (theirs, ours)}).
    """
    rename = dict(rename or {})
    ours = model.state_dict()
    mapped, unexpected, mismatched = {}, [], {}
    for key, value in state.items():
        parts = [KEY_ALIASES.get(p, rename.get(p, p)) for p in key.split(".")]
        name = ".".join(parts)
        if name not in ours:
            unexpected.append(key)
            continue
        target = ours[name]
        if value.shape != target.shape and value.numel() == target.numel() \
                and (name.endswith(".query") or name.startswith("mask_token.")):
            value = value.reshape(target.shape)
        if value.shape != target.shape:
            mismatched[name] = (tuple(value.shape), tuple(target.shape))
            continue
        mapped[name] = value.to(target.dtype)
    result = model.load_state_dict(mapped, strict=False)
    return {"loaded": len(mapped), "missing": sorted(result.missing_keys),
            "unexpected": sorted(unexpected), "mismatched": mismatched}


def read_import_config(path: str) -> dict[str, Any]:
    """Read the YAML import config (format in the module docstring)."""
    import yaml

    with open(path, encoding="utf-8") as fh:
        doc = yaml.safe_load(fh)
    if not isinstance(doc, dict):
        raise OfficialCheckpointError(f"{path}: the import config must be a YAML mapping")
    for key in ("modalities", "reference_modality", "grid_pos_enc"):
        if key not in doc:
            raise OfficialCheckpointError(f"{path}: missing required key {key!r}")
    return doc


_MODEL_KEYS = ("size", "inter_depth", "grid_pos_enc", "head_name", "head_heads", "embed_dim",
               "depth", "heads", "dim_head", "mlp_ratio", "dec_dim", "dec_depth", "dec_heads",
               "dec_dim_head", "dec_mlp_ratio")
_MODALITY_MODEL_KEYS = ("norm_bands", "rescale_elev")


def build_from_config(doc: Mapping[str, Any], task: str):
    """(metadata, Maestro) described by an import config for ``task``."""
    mods_meta, extras = [], {}
    for item in doc["modalities"]:
        item = dict(item)
        extras[item["name"]] = {k: item.pop(k) for k in _MODALITY_MODEL_KEYS if k in item}
        item.setdefault("min_dates", 1)
        item.setdefault("max_dates", 1)
        item.setdefault("nodata", {"fill_value": 0.0})
        mods_meta.append(item)
    classes = list(doc.get("classes", [])) if task != "embedding" else []
    dims = {k: doc[k] for k in _MODEL_KEYS if k in doc}
    provenance = {"training_data": "official MAESTRO checkpoint", "licence": "see checkpoint",
                  "metrics": {}}
    provenance.update(doc.get("provenance", {}))
    embed_dim = dims.get("embed_dim") or _preset_dim(dims.get("size", "tiny"))
    meta = build_metadata(
        name=doc.get("name", f"maestro-official-{task}"), task=task,
        reference_modality=doc["reference_modality"], modalities=mods_meta, classes=classes,
        multilabel=bool(doc.get("multilabel", False)) and task == "classification",
        embedding_dim=embed_dim if task == "embedding" else None, provenance=provenance,
        description=doc.get("description", "Imported from an official MAESTRO checkpoint"))
    cfg = config_from_metadata(meta, **dims)
    for mc in cfg.modalities:
        for key, value in extras[mc.name].items():
            setattr(mc, key, value)
        mc.__post_init__()
    return meta, Maestro(cfg)


def _preset_dim(size: str) -> int:
    from .models.config import SIZES

    if size not in SIZES:
        raise OfficialCheckpointError(f"unknown size {size!r}; expected one of {sorted(SIZES)}")
    return SIZES[size]["embed_dim"]


def import_official(ckpt_path: str, config_path: str, task: str, output: str,
                    weights: str = "ema") -> dict[str, Any]:
    """Load an official checkpoint into our :class:`Maestro` and export ONNX.

    Args:
        ckpt_path: the ``.ckpt`` file (or a bare state dict saved with ``torch.save``).
        config_path: YAML import config (module docstring).
        task: ``segmentation``, ``classification`` or ``embedding``.
        output: ONNX path to write.
        weights: ``"ema"`` (default: the EMA copy, the weights the official fine-tuning
            evaluates) or ``"model"`` (:func:`model_state`).

    Returns:
        report dict: ``loaded``, ``missing``, ``unexpected``, ``mismatched``,
        ``weights`` (``ema``, ``model``, or ``bare`` for a bare state dict),
        ``ignored`` (tensors of the other set left aside), ``head_from_checkpoint`` (False = the task head is freshly
        initialised and must be trained before use), ``output``, ``metadata``.

    Raises:
        OfficialCheckpointError: unreadable or refused checkpoint, shape mismatches
            outside the task head, or encoder weights missing from the checkpoint.
    """
    doc = read_import_config(config_path)
    meta, model = build_from_config(doc, task)
    ckpt = load_checkpoint(ckpt_path, tuple(doc.get("extra_stub_classes", ())))
    state, ignored = model_state(ckpt, weights)
    report = map_state(state, model, doc.get("rename"))
    report["weights"] = weights if any(k.startswith((MODEL_PREFIX, EMA_PREFIX))
                                       for k in ckpt.get("state_dict", ckpt)) else "bare"
    report["ignored"] = ignored
    report["stubbed_classes"] = list(ckpt.get("__stubbed__", []))
    # A head of another shape (other classes, other task) is left freshly initialised and
    # reported; any other mismatch means the config does not describe this checkpoint.
    wrong = {k: v for k, v in report["mismatched"].items() if not k.startswith("heads.")}
    if wrong:
        lines = ", ".join(f"{k}: checkpoint {a} vs model {b}"
                          for k, a, b in ((k, *v) for k, v in wrong.items()))
        raise OfficialCheckpointError(f"shape mismatch (check sizes, bands, patch_px): {lines}")
    encoder_keys = {k for k in model.state_dict()
                    if k.startswith(("patch_embed.", "encoder.", "encoder_inter."))}
    missing_encoder = sorted(encoder_keys & set(report["missing"]))
    if missing_encoder:
        raise OfficialCheckpointError(
            f"{len(missing_encoder)} encoder weights missing from the checkpoint (first: "
            f"{missing_encoder[:5]}); check modality/group names and 'rename'")
    head_prefix = f"heads.{model.config.head_name}."
    report["head_from_checkpoint"] = task == "embedding" or not any(
        k.startswith(head_prefix) for k in report["missing"])
    written = export_onnx(model.eval(), meta, output)
    report["output"] = output
    report["metadata"] = written.to_dict()
    return report


# ---------------------------------------------------------------- command line
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``python -m training import-official``."""
    parser.add_argument("checkpoint", help="official MAESTRO .ckpt")
    parser.add_argument("--config", required=True, help="YAML import config")
    parser.add_argument("--task", required=True,
                        choices=tuple(TASKS))
    parser.add_argument("--output", required=True, help="ONNX file to write")
    parser.add_argument("--weights", choices=WEIGHT_SETS, default="ema",
                        help="ema: the EMA copy, which the official fine-tuning evaluates; "
                             "model: the trained weights (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    """Run the import; prints the key report. Returns the exit status."""
    report = import_official(args.checkpoint, args.config, args.task, args.output,
                             args.weights)
    print(format_report(report))
    return 0


def format_report(report: Mapping[str, Any]) -> str:
    lines = [f"loaded {report['loaded']} tensors into {report['output']}",
             f"weights: {report['weights']} (ignored {report['ignored']} tensors of the "
             "other set)",
             f"pickled config classes read as inert stubs: "
             f"{', '.join(report.get('stubbed_classes', [])) or 'none'}"]
    for what in ("missing", "unexpected"):
        keys = report[what]
        lines.append(f"{what}: {len(keys)}" + (f" ({', '.join(keys[:8])}"
                                               f"{', ...' if len(keys) > 8 else ''})"
                                               if keys else ""))
    if not report["head_from_checkpoint"]:
        lines.append("WARNING: the task head is not in the checkpoint; it is randomly "
                     "initialised and must be fine-tuned before use")
    return "\n".join(lines)


__all__ = ["import_official", "load_checkpoint", "model_state", "map_state",
           "read_import_config", "build_from_config", "ConfigStub", "STUB_CLASSES",
           "OfficialCheckpointError", "WEIGHT_SETS", "add_arguments", "run", "format_report"]
