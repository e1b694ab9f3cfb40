"""Does fine-tuning from the MAE-pretrained encoder beat the same network from scratch?

``python -m training.recipes.pretraining_evidence`` reuses the default model's recipe
(:mod:`training.recipes.default_model`): it pretrains once (recipe seed, MAE on the recipe's
sources), then for each fine-tuning seed fine-tunes the segmentation network from the
pretrained state and from scratch with the *same* seed, batches, steps and schedule
(``default_model.finetune`` with ``Recipe.seed`` = that seed), and scores both on the
held-out columns (``default_model.heldout_metrics``). Optionally a linear probe: the head
alone trained on a frozen pretrained encoder vs a frozen randomly initialised one.

Variants (docs/training.md has the figures of each): ``--label-fraction F`` fine-tunes on a
seeded ``F`` of each class's labelled training pixels (point labels); ``--protocol
probe-finetune`` runs MAESTRO's own probe-then-fine-tune sequence and adds a scratch arm with
as many steps in all; ``--set pretrain_steps=N`` pretrains longer. Pretrained weights are kept
in ``--cache`` and reused by runs that differ only in fine-tuning settings.

Prints per-seed and mean +- std held-out OA / mIoU, the paired differences and how many
seeds pretraining wins; writes the same as JSON (``--out``). Nothing of the bundled model or
the recipe's defaults changes. ``--short`` is the few-step version the test runs.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

import numpy as np
import torch

from . import default_model as recipe
from .pretrain_data import SloveniaCrops
from .slovenia import TRAIN_COLS, load_sample

#: Recipe overrides of the evidence run: none (the recipe's 6000 MAE + 400 fine-tuning steps;
#: about 28 min on one thread here with 5 seeds and the probe, 10 of them pretraining).
EVIDENCE: dict = {}
SHORT = dict(recipe.SHORT, eval_stride=16)
DEFAULT_OUT = os.path.join(recipe.ROOT, "runs", "pretraining_evidence")


def probe(rc: recipe.Recipe, crops: SloveniaCrops, pretrained: str | None, steps: int,
          log=print):
    """Linear-probe style: train only the segmentation head (``heads.*``) of the recipe's
    network on top of a frozen encoder (``recipe.segmentation_task(probe=True)``: the
    recipe's schedule and class weights, no token dropout, no gradient clipping), from the
    checkpoint ``pretrained`` (None: the random initialisation of seed ``rc.seed + 1``), for
    ``steps`` steps of the recipe's batches. Returns the model in eval mode."""
    from .loaders import StepBatches, fit

    rp = dataclasses.replace(rc, finetune_steps=steps)
    task = recipe.segmentation_task(rp, crops, pretrained, probe=True)
    batches = StepBatches({"slovenia": crops}, rc.finetune_batch, steps, rc.seed + 1)
    history = fit(task, batches, "probe", lambda *_: None, clip=None)
    log(f"probe step {steps}/{steps} loss {history[-1][1]:.4f}")
    return task.model.eval()


def probe_then_finetune(rc: recipe.Recipe, crops: SloveniaCrops, pretrained: str | None,
                        probe_steps: int, log=print):
    """MAESTRO's own sequence (official: run_experiment.py runs pretrain -> probe -> finetune):
    ``probe_steps`` head-only steps on the frozen encoder from the checkpoint ``pretrained``
    (None: random), then :func:`default_model.finetune` of every weight from that state,
    the probed head included. Returns (the probed model, the fine-tuned model), both in
    eval mode."""
    import tempfile

    from training.tasks import save_weights

    probed = probe(rc, crops, pretrained, probe_steps, log=log)
    with tempfile.TemporaryDirectory(prefix="maestro-probe-") as folder:
        path = save_weights(probed, os.path.join(folder, "probed.ckpt"))
        return probed, recipe.finetune(rc, crops, path, log=log, heads=True)[0]


def _stats(values: list[float]) -> dict:
    arr = np.asarray(values, np.float64)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0}


def compare(rows: list[dict], a: str, b: str) -> dict:
    """Per metric: mean +- std of ``a`` and ``b`` over the seeds, of the paired difference
    ``a - b``, and the number of seeds where ``a`` is strictly higher."""
    out = {}
    for metric in ("overall_accuracy", "miou"):
        va = [r[a][metric] for r in rows]
        vb = [r[b][metric] for r in rows]
        diff = [x - y for x, y in zip(va, vb)]
        out[metric] = {a: _stats(va), b: _stats(vb), "difference": _stats(diff),
                       "wins": int(sum(d > 0 for d in diff)), "seeds": len(rows)}
    return out


#: Recipe fields that only affect fine-tuning and evaluation: left out of the cache key of
#: ``pretrained_state``. Every other field, including ones added later, is in the key, so a new
#: setting can cost a recomputation but never reuses weights it would have changed.
FINETUNE_ONLY_FIELDS = ("finetune_steps", "finetune_batch", "finetune_lr", "date_dropout",
                        "token_dropout", "class_weight_power", "eval_stride")


def pretrained_state(rc: recipe.Recipe, sample, datetimes, cache_dir: str, log=print):
    """(checkpoint path, loss history, seconds) of the recipe's MAE pretraining
    (``recipe.pretrain``), the weights written by ``training.tasks.save_weights`` as
    ``<cache_dir>/pretrained-<key>.pt`` (key: every field of ``rc`` but
    ``FINETUNE_ONLY_FIELDS``) and reused by later runs that differ only in fine-tuning
    settings (seconds 0 then); the run is seeded and deterministic, so a cached state
    equals a fresh one."""
    import hashlib

    from training.tasks import save_weights

    fields = {k: v for k, v in rc.to_dict().items() if k not in FINETUNE_ONLY_FIELDS}
    key = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]
    path = os.path.join(cache_dir, f"pretrained-{key}.pt")
    if os.path.exists(path):
        doc = torch.load(path, weights_only=True)
        log(f"pretrained weights reused from {path}")
        return path, [tuple(h) for h in doc["history"]], 0.0
    t0 = time.perf_counter()
    sources = recipe.load_sources(rc, sample, datetimes, log)
    pretrained, history = recipe.pretrain(rc, sources, log)
    seconds = time.perf_counter() - t0
    os.makedirs(cache_dir, exist_ok=True)
    save_weights(pretrained, path, history=[list(h) for h in history])
    return path, history, seconds


PROTOCOLS = ("finetune", "probe-finetune")


def run(rc: recipe.Recipe, seeds: list[int], probe_steps: int, out_dir: str,
        log=print, label_fraction: float = 1.0, cache_dir: str | None = None,
        protocol: str = "finetune") -> dict:
    """Pretrain once, then per seed train the segmentation network from the pretrained
    encoder and from scratch, same seed, batches and schedule, and score both held out.

    ``state`` below is the checkpoint of the pretrained weights (``pretrained_state``; kept
    in ``cache_dir``, or in a temporary folder when None).
    ``protocol`` "finetune": :func:`default_model.finetune` from either state (arms
    ``pretrained``, ``scratch``). "probe-finetune": :func:`probe_then_finetune` from either
    state (``pretrained``, ``scratch``) plus ``scratch_full``: every weight trained from
    scratch for ``probe_steps + finetune_steps`` steps. With ``probe_steps`` > 0 the frozen-
    encoder probes ``probe_pretrained`` / ``probe_random`` are scored too.
    ``label_fraction`` < 1: each seed's training crops keep only that fraction of each class's
    labelled training pixels (drawn with the seed; the same labels for every arm)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    if protocol == "probe-finetune" and probe_steps < 1:
        raise ValueError("protocol probe-finetune needs probe_steps >= 1")
    torch.set_num_threads(rc.threads)
    torch.use_deterministic_algorithms(True)
    t_start = time.perf_counter()
    sample = load_sample()
    datetimes = recipe.sample_datetimes()

    import tempfile

    scratch_dir = None
    if cache_dir is None:
        scratch_dir = tempfile.TemporaryDirectory(prefix="maestro-evidence-")
        cache_dir = scratch_dir.name
    state, history, seconds = pretrained_state(rc, sample, datetimes, cache_dir, log)
    timings = {"pretrain_s": seconds}
    log(f"pretrained in {timings['pretrain_s']:.0f} s")

    settings = dict(label_fraction=label_fraction, protocol=protocol)
    quiet = dict(log=lambda *_: None)
    rows = []
    for seed in seeds:
        rs = dataclasses.replace(rc, seed=seed)
        crops = SloveniaCrops(sample, datetimes, TRAIN_COLS, rc.tile_px, labels=True,
                              date_dropout=rc.date_dropout, label_fraction=label_fraction,
                              label_seed=seed)
        labelled = int((crops.target[:, TRAIN_COLS[0]:TRAIN_COLS[1]] >= 0).sum())

        def score(model):
            return recipe.heldout_metrics(recipe.predict_heldout(model, crops, rc),
                                          sample.target)

        row = {"seed": seed, "labelled_train_px": labelled}
        t0 = time.perf_counter()
        if protocol == "finetune":
            for key, init in (("pretrained", state), ("scratch", None)):
                row[key] = score(recipe.finetune(rs, crops, init, **quiet)[0])
        else:   # probe-finetune: the official pretrain -> probe -> finetune sequence
            for key, init, probe_key in (("pretrained", state, "probe_pretrained"),
                                         ("scratch", None, "probe_random")):
                probed, tuned = probe_then_finetune(rs, crops, init, probe_steps, **quiet)
                row[probe_key], row[key] = score(probed), score(tuned)
            full = dataclasses.replace(rs, finetune_steps=probe_steps + rs.finetune_steps)
            row["scratch_full"] = score(recipe.finetune(full, crops, None, **quiet)[0])
        if probe_steps and protocol == "finetune":
            for key, init in (("probe_pretrained", state), ("probe_random", None)):
                row[key] = score(probe(rs, crops, init, probe_steps, **quiet))
        row["seconds"] = time.perf_counter() - t0
        rows.append(row)
        log(f"seed {seed}: " + "  ".join(
            f"{k} OA {v['overall_accuracy']:.3f} mIoU {v['miou']:.3f}"
            for k, v in row.items() if isinstance(v, dict)) + f"  ({row['seconds']:.0f} s)")
        _write(out_dir, rc, seeds, probe_steps, rows, history, timings, t_start, settings)

    doc = _write(out_dir, rc, seeds, probe_steps, rows, history, timings, t_start, settings)
    if scratch_dir is not None:
        scratch_dir.cleanup()
    log(table(doc))
    return doc


def pairs_of(rows: list[dict]) -> list[tuple[str, str]]:
    """The (a, b) comparisons the rows hold: pretrained vs each scratch arm, then the probe."""
    keys = rows[0].keys() if rows else ()
    pairs = [("pretrained", k) for k in ("scratch", "scratch_full") if k in keys]
    if "probe_pretrained" in keys:
        pairs.append(("probe_pretrained", "probe_random"))
    return pairs


def _write(out_dir, rc, seeds, probe_steps, rows, history, timings, t_start,
           settings: dict) -> dict:
    """The results so far (written after every seed, so a stopped run keeps its seeds)."""
    doc = {"recipe": rc.to_dict(), **settings,
           "finetune_seeds": seeds, "probe_steps": probe_steps, "rows": rows,
           "comparisons": {f"{a} - {b}": compare(rows, a, b) for a, b in pairs_of(rows)},
           "pretrain_loss_first_last": [history[0][1], history[-1][1]],
           "timings": {**timings, "total_s": time.perf_counter() - t_start},
           "torch_threads": torch.get_num_threads(), "load_average_1min": os.getloadavg()[0]}
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "results.json"), "w") as fh:
        json.dump(doc, fh, indent=1)
    return doc


def table(doc: dict) -> str:
    """Markdown table: per seed and mean +- std of held-out OA / mIoU (in %), then the
    paired differences."""
    pairs = pairs_of(doc["rows"])
    cols = list(dict.fromkeys(k for pair in pairs for k in pair))
    lines = ["| seed | " + " | ".join(f"{k} OA / mIoU" for k in cols) + " |",
             "|---" * (len(cols) + 1) + "|"]
    for row in doc["rows"]:
        lines.append(f"| {row['seed']} | " + " | ".join(
            f"{100 * row[k]['overall_accuracy']:.1f} / {100 * row[k]['miou']:.1f}"
            for k in cols) + " |")
    cells = []
    for k in cols:
        oa = _stats([r[k]["overall_accuracy"] for r in doc["rows"]])
        mi = _stats([r[k]["miou"] for r in doc["rows"]])
        cells.append(f"{100 * oa['mean']:.1f} ± {100 * oa['std']:.1f} / "
                     f"{100 * mi['mean']:.1f} ± {100 * mi['std']:.1f}")
    lines.append("| mean ± std | " + " | ".join(cells) + " |")
    for a, b in pairs:
        section = doc["comparisons"][f"{a} - {b}"]
        oa, mi = section["overall_accuracy"], section["miou"]
        lines.append(
            f"\n{a} - {b}, paired over {oa['seeds']} seeds: OA "
            f"{100 * oa['difference']['mean']:+.1f} ± {100 * oa['difference']['std']:.1f} "
            f"(wins {oa['wins']}/{oa['seeds']}), mIoU "
            f"{100 * mi['difference']['mean']:+.1f} ± {100 * mi['difference']['std']:.1f} "
            f"(wins {mi['wins']}/{mi['seeds']})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2, 3, 4],
                        help="fine-tuning seeds; 42 = the recipe's own run "
                             "(default: %(default)s)")
    parser.add_argument("--probe-steps", type=int, default=400,
                        help="head-only steps of the linear probe, 0 = no probe "
                             "(default: %(default)s)")
    parser.add_argument("--short", action="store_true", help="few steps (tests)")
    parser.add_argument("--out", default=DEFAULT_OUT, help="folder of results.json")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="finetune",
                        help="finetune: fine-tune from each state; probe-finetune: the official "
                             "probe then fine-tune sequence, plus scratch trained for as many "
                             "steps in all (default: %(default)s)")
    parser.add_argument("--label-fraction", type=float, default=1.0,
                        help="fraction of each class's labelled training pixels kept for "
                             "fine-tuning, drawn per seed (default: %(default)s = dense)")
    parser.add_argument("--cache", default=os.path.join(recipe.ROOT, "runs", "pretrained-cache"),
                        help="folder where the pretrained weights are kept and reused "
                             "('' = none; default: %(default)s)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="override recipe fields, e.g. --set finetune_steps=100")
    args = parser.parse_args(argv)
    fields = {f.name for f in dataclasses.fields(recipe.Recipe)}
    overrides = dict(SHORT) if args.short else dict(EVIDENCE)
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in fields:
            parser.error(f"unknown recipe field {key!r}")
        default = getattr(recipe.Recipe(), key)
        overrides[key] = (tuple(value.split(",")) if isinstance(default, tuple)
                          else type(default)(value))
    probe_steps = min(args.probe_steps, 4) if args.short else args.probe_steps
    if not 0.0 < args.label_fraction <= 1.0:
        parser.error("--label-fraction must be in (0, 1]")
    run(recipe.Recipe(**overrides), args.seeds, probe_steps, args.out,
        label_fraction=args.label_fraction, cache_dir=args.cache or None,
        protocol=args.protocol)
    return 0


if __name__ == "__main__":
    sys.exit(main())
