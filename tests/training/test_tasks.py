"""Tasks on the real TreeSatAI-TS samples: linear probing trains only the head, fine-tuning
the encoder too; the official learning-rate rule and schedule; the per-epoch EMA."""
import math
import os

import lightning.pytorch as pl
import pytest
import torch

from tests.conftest import ROOT
from tests.training.small_model import SMALL
from training.cli import export_model, lightning_cli

CFG = os.path.join(ROOT, "training", "configs", "treesatai_ts_tiny_{}.yaml")


def _overrides():
    """Tiny dims, and the Sentinel series only (the 300 px aerial costs seconds per step)."""
    s1 = "bands: 2, patch_px: 2, tile_px: 6, max_dates: 4, group: s1"
    return [*SMALL, "--data.init_args.batch_size=1", "--data.init_args.num_workers=0",
            "--data.init_args.modalities=[s2, s1_asc, s1_desc]",
            "--model.init_args.model.modalities=["
            "{name: s2, bands: 10, patch_px: 2, tile_px: 6, max_dates: 16},"
            f"{{name: s1_asc, {s1}}}, {{name: s1_desc, {s1}}}]",
            "--model.init_args.model.reference_modality=s2"]


def _fit(phase, tmp_path, steps=2, epochs=1):
    cli = lightning_cli(["--config", CFG.format(phase), *_overrides()], run=False)
    task, dm = cli.model, cli.datamodule
    before = {k: v.clone() for k, v in task.model.state_dict().items()}
    ema_before = {k: v.clone() for k, v in task.ema_model.state_dict().items()}
    trainer = pl.Trainer(accelerator="cpu", max_epochs=epochs, limit_train_batches=steps,
                         limit_val_batches=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=str(tmp_path))
    trainer.fit(task, datamodule=dm)
    return task, trainer, before, ema_before


def _changed(task, before, params):
    names = {id(p): n for n, p in task.model.named_parameters()}
    return {names[id(p)] for p in params if not torch.equal(p.detach(), before[names[id(p)]])}


def test_probe_trains_only_the_head_with_the_official_schedule(tmp_path):
    task, trainer, before, _ = _fit("probe", tmp_path)
    assert task.freeze_encoder and task.model.config.multilabel
    assert not _changed(task, before, task.model.encoder_parameters())
    assert _changed(task, before, task.model.head_parameters())
    assert "val/weighted_f1" in task.last_metrics
    # LR = base_lr * sqrt(total batch / 3); OneCycle from max/1000 to max/final_factor.
    sched = trainer.lr_scheduler_configs[0].scheduler
    max_lr = 1e-5 * math.sqrt(1 / 3)
    opt = trainer.optimizers[0]
    assert opt.param_groups[0]["max_lr"] == pytest.approx(max_lr)
    assert opt.param_groups[0]["initial_lr"] == pytest.approx(max_lr / 1000)
    assert opt.defaults["betas"] == (0.9, 0.99) and opt.defaults["weight_decay"] == 0.01
    assert sched.total_steps == 2
    assert opt.param_groups[0]["min_lr"] == pytest.approx(max_lr / 1e7)   # end of the cycle
    # The probed multilabel classifier exports through the contract with its classes.
    ckpt = str(tmp_path / "probe.ckpt")
    trainer.save_checkpoint(ckpt)
    meta = export_model(CFG.format("probe"), ckpt, str(tmp_path / "c.onnx"), None, None,
                        _overrides())
    assert meta.task == "classification" and meta.multilabel
    assert [c.name for c in meta.classes][:3] == ["Betula", "Cleared", "Quercus"]
    assert meta.modality("s1_asc").scaling.transform == "log"
    assert meta.modality("s2").max_dates == 16 and meta.modality("s2").gsd_m == 10.0
    assert "val/weighted_f1" in meta.provenance["metrics"]


def test_finetune_trains_the_encoder_and_keeps_an_ema(tmp_path):
    task, trainer, before, ema_before = _fit("finetune", tmp_path, steps=1, epochs=2)
    assert _changed(task, before, task.model.encoder_parameters())
    assert not _changed(task, before, task.model.decoder_parameters())  # unused when fine-tuning
    # EMA, once per epoch: momentum 1 - 1/(0.2 * 2 epochs) < 0 -> 0: EMA = model weights.
    assert task.ema_momentum() == 0.0
    key = "patch_embed.s2.patchify_bands.0.conv.weight"
    assert torch.equal(task.ema_model.state_dict()[key], task.model.state_dict()[key])
    assert not torch.equal(task.ema_model.state_dict()[key], ema_before[key])
    assert task.eval_model() is task.ema_model


def test_ema_momentum_rule():
    from training.tasks.base import ema_momentum

    assert ema_momentum(50) == pytest.approx(0.9) and ema_momentum(100) == pytest.approx(0.95)
    assert ema_momentum(2) == 0.0


def test_training_imports_no_test_helper():
    """The test-model builder lives in tests/ (tests/tiny_model.py); training/ never imports
    the tests."""
    import ast
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[2] / "training"
    assert not (root / "tiny.py").exists()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n == "tests" or n.startswith("tests.") for n in names), path
