"""Evidence for docs/own-classes.md: the analyst's classes trained by maestro:train_classes on
the bundled Slovenia sample, scored on the held-out east columns exactly as the model card
scores the bundled model (training.recipes.slovenia.heldout_scores: OA, mIoU over the classes
present, per-class IoU on the 3201 held-out pixels), next to a per-pixel random forest on the
same labels (training.baselines.random_forest's features and settings) and the bundled model.

Steps (all seeded):
1. labels drawn from the reference map in the WEST columns only (scripts/own_classes_labels.py:
   points and rectangles, a few hundred pixels per class where the class has them);
2. the base model: ``--model`` (default: the bundled model). A contract-2 model gives its
   ``embeddings`` output; a version-1 model has none, so a copy is written whose extra output
   ``embeddings`` is the input of its pixel head (the fused tokens pooled over modalities and
   dates, [B, 64, 8, 8] for the bundled model) -- said so in the results;
3. ``qgis_process run maestro:train_classes`` (timed: the time to train on this machine);
4. the new model, the forest and the bundled model predict the whole sample; held-out scores;
5. a held-out learning curve: head and forest fitted on seeded per-class subsets of the labels
   (the head on the same features the merged model computes, engine/classes/features.py), and
   an ablation: the head on the encoder features only, on the date statistics only, on both.

``bash scripts/with-env.sh .venv/bin/python scripts/own_classes_evidence.py [--out out/own-classes]``
prints a JSON document and writes it to ``<out>/results.json``.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
SAMPLE = os.path.join(ROOT, "resources", "sample")
BUNDLED = os.path.join(ROOT, "resources", "models", "maestro-tiny-slovenia-lulc.onnx")
FRACTIONS = (0.1, 0.25, 0.5, 1.0)


def sample_inputs() -> dict:
    return {"s2": sorted(glob.glob(os.path.join(SAMPLE, "S2_L1C_*.tif"))),
            "dem": [os.path.join(SAMPLE, "dem.tif")]}


def with_embeddings(model: str, out: str) -> tuple[str, str]:
    """(path of a model that has an 'embeddings' output, how it was obtained)."""
    import onnx
    from onnx import TensorProto, helper

    from engine.session import inspect_model

    _, _, outputs = inspect_model(model)
    if "embeddings" in [o.name for o in outputs]:
        return model, "the model's own 'embeddings' output (contract version 2)"
    m = onnx.load(model)
    convs = [n for n in m.graph.node if n.op_type == "Conv" and "heads" in n.input[1]]
    if not convs:
        raise SystemExit(f"{model}: no 'embeddings' output and no pixel-head Conv to expose")
    head = convs[-1]
    dim = [t.dims for t in m.graph.initializer if t.name == head.input[1]][0][1]
    m.graph.node.append(helper.make_node("Identity", [head.input[0]], ["embeddings"]))
    m.graph.output.append(helper.make_tensor_value_info("embeddings", TensorProto.FLOAT,
                                                        ["batch", dim, "h", "w"]))
    props = {p.key: p for p in m.metadata_props}
    doc = json.loads(props["maestro"].value)
    doc["embedding_dim"] = int(dim)
    props["maestro"].value = json.dumps(doc)
    onnx.save(m, out)
    return out, (f"version-1 model without an 'embeddings' output: its pixel head's input "
                 f"(fused tokens pooled over modalities and dates, {dim} values per 40 m token) "
                 "exposed as 'embeddings'")


def qgis_env() -> dict:
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    env["QGIS_PLUGINPATH"] = os.path.join(ROOT, ".qgis", "plugins")
    env["QGIS_CUSTOM_CONFIG_PATH"] = os.path.join(ROOT, ".qgis", "profile")
    env["PATH"] = os.pathsep.join([os.path.join(ROOT, ".qgis", "bin"),
                                   os.path.dirname(sys.executable), env.get("PATH", "")])
    return env


def train(base: str, labels: str, out_dir: str, threads: int) -> tuple[dict, float]:
    model = os.path.join(out_dir, "slovenia-west-classes.onnx")
    inputs = sample_inputs()
    args = ["qgis_process", "--json", "run", "maestro:train_classes", "--", f"MODEL={base}",
            *[f"S2={p}" for p in inputs["s2"]], f"DEM={inputs['dem'][0]}",
            f"LABELS={labels}|layername=polygons", f"LABELS={labels}|layername=points",
            "CLASS_FIELD=class", "COLOR_FIELD=color", f"OUTPUT_MODEL={model}",
            f"REPORT={os.path.join(out_dir, 'training-report.html')}", f"THREADS={threads}",
            "NAME=slovenia-west-classes"]
    t0 = time.perf_counter()
    run = subprocess.run(args, env=qgis_env(), capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if run.returncode != 0:
        raise SystemExit(run.stdout + run.stderr)
    doc = json.loads(run.stdout[run.stdout.index("{"):])
    return {"model": model, **doc["results"]}, seconds


def predict_ids(model: str, out_dir: str, name: str, recipe_names: list[str],
                threads: int) -> np.ndarray:
    """Class ids of the recipe (training.recipes.slovenia.CLASSES) predicted over the sample
    by a segmentation model through the engine (-1 for a class the recipe lacks)."""
    import rasterio

    from engine.api import RunOptions, run_model
    from engine.contract import read_model_metadata

    path = os.path.join(out_dir, f"{name}.tif")
    run_model(model, sample_inputs(), path, RunOptions(threads=threads))
    with rasterio.open(path) as ds:
        pred = ds.read(1).astype(np.int64)
    meta = read_model_metadata(model)
    lut = np.full(256, -1, dtype=np.int64)
    for c in meta.classes:
        if c.name in recipe_names:
            lut[c.id] = recipe_names.index(c.name)
    return lut[pred]


def label_raster(labels: str, shape, transform, names: list[str]) -> np.ndarray:
    """The labels burnt on the sample grid (engine/classes/labels.py), recipe class ids."""
    from osgeo import ogr

    from engine.classes.labels import rasterize_labels

    shapes = []
    ds = ogr.Open(labels)
    for layer_name in ("polygons", "points"):
        for f in ds.GetLayerByName(layer_name):
            shapes.append((json.loads(f.GetGeometryRef().ExportToJson()),
                           names.index(f.GetField("class"))))
    ds = None
    return rasterize_labels(shapes, transform, shape[1], shape[0], len(names)).labels


def heldout_curves(base: str, sample, y_map: np.ndarray, threads: int, seed: int = 0) -> dict:
    """Held-out scores of the head (same features as the merged model) and of the forest,
    fitted on seeded per-class fractions of the labels."""
    from sklearn.ensemble import RandomForestClassifier

    from engine.api import RunOptions, run_model
    from engine.classes import features, head as heads
    from engine.classes.cv import subsample
    from engine.contract import read_model_metadata
    from training.baselines.random_forest import RF_PARAMS, pixel_features
    from training.recipes.slovenia import heldout_scores

    import tempfile

    meta = read_model_metadata(base)
    h, w = y_map.shape
    with tempfile.TemporaryDirectory() as tmp:
        emb_path = os.path.join(tmp, "emb.tif")
        run_model(base, sample_inputs(), emb_path, RunOptions(output="embeddings", threads=threads))
        grid = features.PixelGrid.from_embeddings(emb_path, meta.reference.patch_px)
        emb = features.read_embeddings(emb_path)
    rr, cc = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    rows, cols = rr.ravel(), cc.ravel()
    stacks = features.collect(meta, sample_inputs())
    x_all = np.concatenate([features.sample_embeddings(emb, rows, cols, meta.reference.patch_px),
                            features.reference_statistics(meta, stacks, grid, rows, cols)], 1)
    x_rf = pixel_features(sample)
    lab = y_map.ravel() >= 0
    y = y_map.ravel()[lab]
    rng = np.random.default_rng(seed)
    curve = []
    for frac in FRACTIONS:
        idx = np.nonzero(lab)[0][subsample(y, frac, rng)] if frac < 1 else np.nonzero(lab)[0]
        yy = y_map.ravel()[idx]
        ok = np.isfinite(x_all[idx]).all(1)
        clf = heads.make_classifier("logistic", seed, threads).fit(x_all[idx][ok], yy[ok])
        fin = np.isfinite(x_all).all(1)
        pred = np.full(h * w, -1)
        pred[fin] = clf.predict(x_all[fin])
        forest = RandomForestClassifier(**{**RF_PARAMS, "n_jobs": threads}).fit(x_rf[idx], yy)
        curve.append({"labelled_pixels": int(len(idx)),
                      "head": heldout_scores(pred.reshape(h, w), sample.target),
                      "random_forest": heldout_scores(forest.predict(x_rf).reshape(h, w),
                                                      sample.target)})
    # ablation on all labels: which features carry the result
    d = emb.shape[0]
    idx = np.nonzero(lab)[0]
    ablation = {}
    for name, cols in (("encoder features only", slice(0, d)),
                       ("date statistics only", slice(d, None)),
                       ("both (the merged model's features)", slice(None))):
        xa = x_all[:, cols]
        ok = np.isfinite(xa[idx]).all(1)
        clf = heads.make_classifier("logistic", seed, threads).fit(xa[idx][ok], y_map.ravel()[idx][ok])
        fin = np.isfinite(xa).all(1)
        pred = np.full(h * w, -1)
        pred[fin] = clf.predict(xa[fin])
        ablation[name] = heldout_scores(pred.reshape(h, w), sample.target)
    return {"fractions": list(FRACTIONS), "points": curve, "ablation_all_labels": ablation}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=BUNDLED)
    parser.add_argument("--out", default=os.path.join(ROOT, "out", "own-classes"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--per-class", type=int, default=300)
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    import importlib.util

    import rasterio
    from sklearn.ensemble import RandomForestClassifier

    from training.baselines.random_forest import RF_PARAMS, pixel_features
    from training.recipes.slovenia import CLASSES, heldout_scores, load_sample

    spec = importlib.util.spec_from_file_location("labels_script", os.path.join(
        ROOT, "scripts", "own_classes_labels.py"))
    labels_mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(labels_mod)
    labels = os.path.join(args.out, "labels.gpkg")
    counts = labels_mod.write(labels, seed=0, per_class=args.per_class)
    base, how = with_embeddings(args.model, os.path.join(args.out, "base-with-embeddings.onnx"))
    trained, seconds = train(base, labels, args.out, args.threads)
    names = [c["name"] for c in CLASSES]
    sample = load_sample(SAMPLE)
    with rasterio.open(os.path.join(SAMPLE, "lulc_reference.tif")) as ds:
        transform = ds.transform
    y_map = label_raster(labels, sample.target.shape, transform, names)
    assert not (y_map[:, 56:] >= 0).any(), "labels outside the west columns"
    new = heldout_scores(predict_ids(trained["model"], args.out, "new-model", names,
                                     args.threads), sample.target)
    bundled = heldout_scores(predict_ids(args.model, args.out, "bundled", names, args.threads),
                             sample.target)
    lab = y_map.ravel() >= 0
    x_rf = pixel_features(sample)
    forest = RandomForestClassifier(**{**RF_PARAMS, "n_jobs": args.threads}).fit(
        x_rf[lab], y_map.ravel()[lab])
    rf = heldout_scores(forest.predict(x_rf).reshape(sample.target.shape), sample.target)
    from engine.contract import read_model_metadata

    prov = read_model_metadata(trained["model"]).provenance
    doc = {"labels_px_drawn": counts, "labels_px_burnt": {n: int((y_map == i).sum())
                                                          for i, n in enumerate(names)},
           "base": how, "threads": args.threads,
           "train_seconds_wall": round(seconds, 1),
           "train_seconds_steps": prov["recipe"]["seconds"],
           "blocked_cv": {k: prov["metrics"][k] for k in prov["metrics"]},
           "heldout": {"new_model": new, "random_forest_same_labels": rf, "bundled_model": bundled},
           "heldout_learning_curve": heldout_curves(base, sample, y_map, args.threads)}
    with open(os.path.join(args.out, "results.json"), "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=1)
    print(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
