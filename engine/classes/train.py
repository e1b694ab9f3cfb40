"""Train the analyst's classes on a MAESTRO model's frozen encoder features.

:func:`train_classes` runs the engine for the encoder features around the labels
(``RunOptions(output="embeddings")``), burns the labels onto the reference grid, samples the
features at the labelled pixels (engine/classes/features.py), cross-validates the head and a
per-pixel random forest on the same labels with spatial blocks (engine/classes/cv.py), fits
the head on all labels and writes a new model file with the head merged
(engine/classes/head.py) whose metadata carries the classes, colours and the figures.

Needs scikit-learn and onnx besides the engine's own dependencies.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from ..errors import CancelledError, InputError


@dataclass(frozen=True)
class ClassDef:
    """One class of the analyst: name and ``#rrggbb`` colour."""

    name: str
    color: str


@dataclass
class TrainOptions:
    """Attributes:
        head: ``logistic`` (multinomial logistic regression) or ``mlp``.
        block_m: side of the cross-validation blocks in metres (None: the model's tile).
        folds: cross-validation folds (fewer when fewer blocks hold labels).
        compare_rf: also cross-validate a per-pixel random forest (the classical baseline).
        rf_trees: trees of the forest.
        seed: of the subsampling, the MLP and the forest.
        threads: scikit-learn jobs and onnxruntime threads (None: all cores).
        name: of the new model (default: the output file's name).
        tile_overlap_pct, batch_size, device: of the embeddings run (engine.api.RunOptions).
    """

    head: str = "logistic"
    block_m: float | None = None
    folds: int = 5
    compare_rf: bool = True
    rf_trees: int = 200
    seed: int = 0
    threads: int | None = None
    name: str = ""
    tile_overlap_pct: float = 25
    batch_size: int = 8
    device: str = "auto"


@dataclass
class TrainReport:
    """What :func:`train_classes` did (everything the HTML report shows)."""

    model_path: str
    classes: list
    pixels_per_class: dict
    conflicts: int
    dropped_nodata: int
    block_px: int
    head: dict
    forest: dict | None
    verdict: str
    seconds: dict = field(default_factory=dict)
    base_model: str = ""
    features: str = ""
    messages: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _check_packages() -> None:
    missing = []
    for module, pin in (("sklearn", "scikit-learn==1.9.1"), ("onnx", "onnx==1.23.2")):
        try:
            __import__(module)
        except ImportError:
            missing.append(pin)
    if missing:
        from ..errors import RuntimeDependencyError

        raise RuntimeDependencyError(
            "training classes needs the Python package(s) " + ", ".join(missing)
            + " (pip install " + " ".join(missing) + ")")


def verdict(head: dict, forest: dict | None, folds: int) -> str:
    """One plain sentence: which of the two is better in blocked cross-validation."""
    if forest is None:
        return "The random forest was not cross-validated (comparison off)."
    d_oa = 100 * (head["overall_accuracy"] - forest["overall_accuracy"])
    d_f1 = 100 * (head["macro_f1"] - forest["macro_f1"])
    spread = 100 * float(np.std(np.array(head["overall_accuracy_folds"])
                                - np.array(forest["overall_accuracy_folds"])))
    if d_oa > 0 and d_f1 > 0:
        who = "The MAESTRO head is better than the random forest"
    elif d_oa < 0 and d_f1 < 0:
        who = "The random forest is better than the MAESTRO head"
    else:
        who = "Neither is better on both figures"
    text = (f"{who}: overall accuracy {d_oa:+.1f} points, macro F1 {d_f1:+.1f} points "
            f"(head minus forest, spatially blocked {folds}-fold cross-validation)")
    if abs(d_oa) < spread:
        text += (f"; the overall-accuracy difference is within the spread of the per-fold "
                 f"differences ({spread:.1f} points), so it is not conclusive")
    return text + "."


def train_classes(model_path: str, inputs: Mapping[str, Sequence], shapes: Sequence[tuple[dict, int]],
                  shapes_crs: str, classes: Sequence[ClassDef], out_path: str,
                  options: TrainOptions | None = None,
                  progress: Callable[[float, str], None] | None = None,
                  is_cancelled: Callable[[], bool] | None = None,
                  log: Callable[[str], None] | None = None) -> TrainReport:
    """Fit a head for ``classes`` and write the new model to ``out_path``.

    Args:
        model_path: a MAESTRO ONNX model with encoder features (an embedding model, or a
            contract-2 segmentation/classification model).
        inputs: modality -> slices, as for :func:`engine.api.run_model`.
        shapes: (GeoJSON-like geometry, class index into ``classes``).
        shapes_crs: the geometries' CRS (WKT, ``EPSG:xxxx``...).
        classes: the classes, index = class id of the new model.
        out_path: the new ONNX file (written under a temporary name, renamed on success).

    Raises:
        InputError, ContractError, ModelFileError, OutputError, CancelledError,
        RuntimeDependencyError (scikit-learn or onnx missing).
    """
    from ..api import RunOptions, run_model
    from ..contract import parse_metadata, read_model_metadata
    from ..writer import check_writable
    from . import cv, features, head as heads, labels as lab

    options = options or TrainOptions()
    messages: list[str] = []

    def say(text: str) -> None:
        messages.append(text)
        if log:
            log(text)

    def step(fraction: float, text: str) -> None:
        if is_cancelled and is_cancelled():
            raise CancelledError("training cancelled by the user; no model was written")
        if progress:
            progress(min(max(fraction, 0.0), 1.0), text)

    _check_packages()
    if options.head not in heads.HEADS:
        raise InputError(f"head '{options.head}' is not one of {heads.HEADS}")
    if len(classes) < 2:
        raise InputError(f"at least 2 classes are needed to train a classifier (got {len(classes)})")
    if len(classes) > 254:
        raise InputError(f"{len(classes)} classes: at most 254 fit a land-cover map (uint8, 255 = nodata)")
    if not out_path.lower().endswith(".onnx"):
        raise InputError(f"output model '{out_path}' must end in .onnx")
    check_writable(out_path)
    t0 = time.perf_counter()
    meta = read_model_metadata(model_path)
    ref = meta.reference
    stacks = features.collect(meta, inputs, say)
    grid_slice = stacks[ref.name][0]
    ref_shapes = _to_crs(shapes, shapes_crs, grid_slice.crs)
    bounds = _label_bounds(ref_shapes, grid_slice, ref.tile_ground_m)
    step(0.01, "computing encoder features around the labels")
    seconds = {}

    def embedding_progress(fraction: float, message: str = "") -> None:
        step(0.01 + 0.49 * fraction, f"encoder features: {message}")

    with tempfile.TemporaryDirectory(prefix="maestro-train-") as tmp:
        emb_path = os.path.join(tmp, "embeddings.tif")
        run = run_model(model_path, inputs, emb_path, RunOptions(
            tile_overlap_pct=options.tile_overlap_pct, batch_size=options.batch_size,
            device=options.device, threads=options.threads, bounds=bounds, cog=False,
            output="embeddings"),
            progress=embedding_progress,
            is_cancelled=is_cancelled, log=say)
        seconds["embeddings"] = round(run.seconds, 2)
        t1 = time.perf_counter()
        grid = features.PixelGrid.from_embeddings(emb_path, ref.patch_px)
        burnt = lab.rasterize_labels(ref_shapes, grid.transform, grid.width, grid.height,
                                     len(classes))
        if burnt.conflicts:
            say(f"{burnt.conflicts} pixel(s) claimed by two classes were left unlabelled")
        rows, cols = np.nonzero(burnt.labels >= 0)
        y = burnt.labels[rows, cols].astype(np.int64)
        x_emb = features.sample_embeddings_file(emb_path, rows, cols, ref.patch_px)
    x_pix = features.reference_statistics(meta, stacks, grid, rows, cols)
    x = np.concatenate([x_emb, x_pix], axis=1)
    ok = np.isfinite(x).all(axis=1)
    dropped = int((~ok).sum())
    if dropped:
        say(f"{dropped} labelled pixel(s) on nodata were left out")
    rows, cols, y, x = rows[ok], cols[ok], y[ok], x[ok]
    per_class = {classes[k].name: int((y == k).sum()) for k in range(len(classes))}
    say("labelled pixels per class: " + ", ".join(f"{n} {c}" for c, n in per_class.items()))
    empty = [c for c, n in per_class.items() if n == 0]
    if empty:
        raise InputError(f"class(es) {empty} have no labelled pixel on valid data: draw some or "
                         "remove the class")
    step(0.52, "reading per-pixel inputs")
    pixel_m = abs(grid.transform.a)
    block_m = options.block_m or ref.tile_ground_m
    block_px = max(1, int(round(block_m / pixel_m)))
    splits = cv.folds(cv.blocks(rows, cols, block_px), options.folds)
    say(f"cross-validation: {len(splits)} folds of {block_px} x {block_px} px blocks "
        f"({block_px * pixel_m:g} m)")
    names = [c.name for c in classes]
    threads = options.threads or os.cpu_count() or 1
    head_cv = cv.cross_validate(lambda: heads.make_classifier(options.head, options.seed, threads),
                                x, y, splits, len(classes), seed=options.seed,
                                progress=lambda f: step(0.53 + 0.17 * f, "cross-validating the head"),
                                is_cancelled=is_cancelled)
    say(f"head ({options.head}) blocked CV: OA {head_cv.overall:.3f}, macro F1 "
        f"{head_cv.macro_f1:.3f}")
    forest = None
    if options.compare_rf:
        from sklearn.ensemble import RandomForestClassifier

        x_rf, _ = features.raw_pixel_values(meta, stacks, grid, rows, cols)
        rf_cv = cv.cross_validate(
            lambda: RandomForestClassifier(n_estimators=options.rf_trees,
                                           random_state=options.seed, n_jobs=threads),
            x_rf, y, splits, len(classes), seed=options.seed,
            progress=lambda f: step(0.70 + 0.22 * f, "cross-validating the random forest"),
            is_cancelled=is_cancelled)
        forest = rf_cv.to_dict(names)
        say(f"random forest ({x_rf.shape[1]} values per pixel) blocked CV: OA "
            f"{rf_cv.overall:.3f}, macro F1 {rf_cv.macro_f1:.3f}")
    head_dict = head_cv.to_dict(names)
    text = verdict(head_dict, forest, len(splits))
    say(text)
    seconds["cross_validation"] = round(time.perf_counter() - t1, 2)
    step(0.93, "fitting the head on all labels")
    t2 = time.perf_counter()
    fitted = heads.to_arrays(heads.make_classifier(options.head, options.seed, threads).fit(x, y),
                             len(classes))
    seconds["final_fit"] = round(time.perf_counter() - t2, 2)
    seconds["total"] = round(time.perf_counter() - t0, 2)
    assert x_emb is not None                      # concatenated above
    feats_text = (f"{x_emb.shape[1]} encoder features (bilinear from the {ref.patch_px} px token "
                  f"grid) + mean and standard deviation over dates of the {len(ref.bands)} "
                  f"{ref.name} bands")
    report = TrainReport(model_path=os.path.abspath(out_path), classes=[asdict(c) for c in classes],
                         pixels_per_class=per_class, conflicts=burnt.conflicts,
                         dropped_nodata=dropped, block_px=block_px, head=head_dict, forest=forest,
                         verdict=text, seconds=seconds, base_model=meta.name, features=feats_text,
                         messages=messages)
    doc = _new_metadata(model_path, meta, classes, options, report, out_path)
    parse_metadata(json.dumps(doc))   # the contract accepts it before anything is written
    folder, base = os.path.split(os.path.abspath(out_path))
    part = os.path.join(folder, f".{base}.part")
    try:
        heads.merge_head(model_path, part, fitted, json.dumps(doc, sort_keys=True), ref.name,
                         ref.patch_px, meta.schema_version, ref.tile_px)
        read_model_metadata(part)    # the engine reads it back (metadata and graph I/O)
        os.replace(part, out_path)
    finally:
        if os.path.exists(part):
            os.remove(part)
    step(1.0, "done")
    say(f"model written: {out_path} ({seconds['total']:.1f} s)")
    return report


def _to_crs(shapes, src_crs: str, dst_crs):
    from rasterio.crs import CRS
    from rasterio.warp import transform_geom

    try:
        src = CRS.from_user_input(src_crs)
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"the labels' CRS '{src_crs}' is not understood: {exc}") from exc
    if src == dst_crs:
        return list(shapes)
    return [(transform_geom(src, dst_crs, g), c) for g, c in shapes]


def _label_bounds(shapes, grid_slice, margin_m: float):
    """The labels' bounding box grown by ``margin_m`` (a tile: the encoder sees context),
    clipped to the reference raster."""
    from rasterio.features import bounds as geom_bounds

    boxes = np.array([geom_bounds(g) for g, _ in shapes])
    x0, y0 = boxes[:, 0].min() - margin_m, boxes[:, 1].min() - margin_m
    x1, y1 = boxes[:, 2].max() + margin_m, boxes[:, 3].max() + margin_m
    gx0, gy0, gx1, gy1 = grid_slice.bounds
    box = (max(x0, gx0), max(y0, gy0), min(x1, gx1), min(y1, gy1))
    if box[0] >= box[2] or box[1] >= box[3]:
        raise InputError("the labels do not overlap the reference raster "
                         f"'{grid_slice.path}' (check the label layer's CRS and extent)")
    return box


def _new_metadata(model_path, meta, classes, options, report, out_path) -> dict:
    from .head import base_metadata_doc

    doc = base_metadata_doc(model_path)
    base_prov = dict(doc.get("provenance") or {})
    name = options.name or os.path.splitext(os.path.basename(out_path))[0]
    doc.update({
        "name": name, "task": "segmentation", "multilabel": False,
        "classes": [{"id": i, "name": c.name, "color": c.color} for i, c in enumerate(classes)],
        "description": (f"Classes of an analyst trained in QGIS (maestro:train_classes) on the "
                        f"frozen encoder of '{meta.name}': {report.features}; "
                        f"{options.head} head fitted with scikit-learn."),
    })
    if not doc.get("embedding_dim"):
        doc["embedding_dim"] = meta.embedding_dim
    doc["provenance"] = {
        "training_data": "labels drawn by the user: " + ", ".join(
            f"{n} px {c}" for c, n in report.pixels_per_class.items()),
        "licence": base_prov.get("licence", ""),
        "metrics": {"blocked_cv_head": _compact(report.head),
                    **({"blocked_cv_random_forest": _compact(report.forest)} if report.forest else {}),
                    "verdict": report.verdict},
        "recipe": {"tool": "maestro:train_classes", "head": options.head,
                   "block_px": report.block_px, "folds": options.folds, "seed": options.seed,
                   "features": report.features, "seconds": report.seconds},
        "base_model": {"name": meta.name, "file": os.path.basename(model_path),
                       "provenance": base_prov},
    }
    return doc


def _compact(d: dict) -> dict:
    return {k: d[k] for k in ("overall_accuracy", "macro_f1", "f1", "confusion")}


def training_html(report: TrainReport) -> str:
    """The HTML report of a training."""
    from . import report as H

    names = [c["name"] for c in report.classes]
    parts = [H.paragraph(f"Model written: {report.model_path} (base encoder: "
                         f"{report.base_model}). Features: {report.features}."),
             H.heading("Verdict"), H.paragraph(report.verdict),
             H.heading("Labels"),
             H.table(["class", "labelled pixels"], [[c, n] for c, n in
                                                    report.pixels_per_class.items()]),
             H.paragraph(f"{report.conflicts} pixel(s) claimed by two classes and "
                         f"{report.dropped_nodata} on nodata were left out. Cross-validation "
                         f"blocks: {report.block_px} x {report.block_px} reference pixels.",
                         note=True)]
    rows = []
    for n in names:
        rows.append([n, report.head["f1"][n],
                     report.forest["f1"][n] if report.forest else None])
    rows.append(["overall accuracy", report.head["overall_accuracy"],
                 report.forest["overall_accuracy"] if report.forest else None])
    rows.append(["macro F1", report.head["macro_f1"],
                 report.forest["macro_f1"] if report.forest else None])
    parts += [H.heading("Spatially blocked cross-validation"),
              H.table(["", "MAESTRO head", "random forest"], rows),
              H.paragraph("F1 per class, overall accuracy and macro F1 over the labelled pixels "
                          "of the held-out blocks of every fold (pooled). They rank the two "
                          "methods on your labels, whose class mix is yours: they are not the "
                          "accuracy of a map. For that, assess the map against a probability "
                          "sample with maestro:accuracy_assessment.", note=True)]
    for title, d in (("MAESTRO head", report.head), ("random forest", report.forest)):
        if d is None:
            continue
        parts += [H.heading(f"Confusion matrix, {title} (rows: reference, columns: predicted)"),
                  H.table(["reference \\ predicted", *names],
                          [[n, *row] for n, row in zip(names, d["confusion"])])]
    series = {"MAESTRO head": [(p["train_pixels"], p["overall_accuracy"])
                               for p in report.head["learning_curve"]]}
    if report.forest:
        series["random forest"] = [(p["train_pixels"], p["overall_accuracy"])
                                   for p in report.forest["learning_curve"]]
    parts += [H.heading("Learning curve (overall accuracy on held-out blocks, mean over folds; "
                        "each fold's training labels subsampled per class)"),
              H.svg_lines(series, "labelled training pixels", "overall accuracy"),
              H.table(["training pixels", "head OA", "head macro F1", "forest OA", "forest macro F1"],
                      [[int(a["train_pixels"]), a["overall_accuracy"], a["macro_f1"],
                        b["overall_accuracy"] if b else None, b["macro_f1"] if b else None]
                       for a, b in zip(report.head["learning_curve"],
                                       (report.forest or {}).get("learning_curve")
                                       or [None] * len(report.head["learning_curve"]))]),
              H.paragraph("Time (s): " + ", ".join(f"{k} {v}" for k, v in report.seconds.items()),
                          note=True)]
    return H.page("MAESTRO: training your classes", parts)


__all__ = ["ClassDef", "TrainOptions", "TrainReport", "train_classes", "training_html", "verdict"]
