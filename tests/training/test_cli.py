"""python -m training: every config parses; fit, resume from a checkpoint, test and export
through the contract (Slovenia GeoTIFF stacks, real data)."""
import glob
import json
import os
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest
import torch

from engine.contract import read_model_metadata
from tests.conftest import ROOT
from tests.training.small_model import SMALL, quick
from training.cli import export_model, lightning_cli, main
from training.datasets.slovenia import write_slovenia_stack
from training.export import contract_feeds

CONFIGS = sorted(glob.glob(os.path.join(ROOT, "training", "configs", "*.yaml")))
SLO_FT = os.path.join(ROOT, "training", "configs", "slovenia_tiny_finetune.yaml")
SLO_PT = os.path.join(ROOT, "training", "configs", "slovenia_tiny_pretrain.yaml")


@pytest.fixture(scope="module")
def slovenia(tmp_path_factory):
    out = tmp_path_factory.mktemp("slovenia_cli")
    write_slovenia_stack(str(out), ndvi=False)
    return str(out)


def _data(root, tile=16):
    return [f"--data.init_args.root={root}", f"--data.init_args.tile_px={tile}",
            "--data.init_args.batch_size=2", "--data.init_args.samples_per_epoch=4",
            f"--model.init_args.model.modalities=[{{name: s2, bands: 13, patch_px: 4, "
            f"tile_px: {tile}, max_dates: 5}}, {{name: dem, bands: 1, patch_px: 4, "
            f"tile_px: {tile}, max_dates: 1}}]"]


@pytest.mark.parametrize("config", CONFIGS, ids=os.path.basename)
def test_every_config_parses_and_builds(config):
    cli = lightning_cli(["--config", config, "--trainer.logger=false", *SMALL], run=False)
    assert cli.model.model.config.embed_dim == 24
    assert cli.datamodule.batch_size >= 1
    phase = os.path.basename(config).rsplit("_", 1)[1][:-5]
    want = {"pretrain": None, "probe": "classification"}.get(phase, cli.model.model_task)
    assert cli.model.model.config.task == want
    if phase == "probe":
        trainable = {id(p) for p in cli.model.model.parameters() if p.requires_grad}
        assert trainable == {id(p) for p in cli.model.model.head_parameters()}


def test_fit_resume_test_and_export(slovenia, tmp_path):
    run = str(tmp_path / "run")
    # A 2-epoch run interrupted after its first epoch (the schedule spans both epochs).
    cli = lightning_cli(["--config", SLO_FT, *SMALL, *_data(slovenia),
                         *quick(run, epochs=2)], run=False)
    cli.trainer.callbacks.append(_StopAfterFirstEpoch())
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    ckpt = glob.glob(f"{run}/**/checkpoints/last.ckpt", recursive=True)[0]
    state = torch.load(ckpt, weights_only=False)
    assert state["global_step"] == 2 and "val/miou" in state["maestro_metrics"]
    # Resume: the second epoch continues from step 2.
    args2 = ["--config", SLO_FT, *SMALL, *_data(slovenia), *quick(run, epochs=2),
             f"--ckpt_path={ckpt}"]
    assert main(["fit", *args2]) == 0
    last = max(glob.glob(f"{run}/**/checkpoints/last*.ckpt", recursive=True),
               key=os.path.getmtime)
    assert torch.load(last, weights_only=False)["global_step"] == 4
    assert main(["test", "--config", SLO_FT, *SMALL, *_data(slovenia), *quick(run),
                 f"--ckpt_path={last}"]) == 0

    # Export: segmentation and embedding, metadata from the config, torch == onnxruntime.
    out = tmp_path / "seg.onnx"
    meta = export_model(SLO_FT, last, str(out), None, None, [*SMALL, *_data(slovenia)])
    assert meta.task == "segmentation" and [c.name for c in meta.classes][:2] == [
        "cultivated land", "forest"]
    assert meta.modality("s2").scaling.std[0] == 0.5 and meta.modality("s2").max_dates == 5
    assert meta.modality("s2").bands[0] == "B01" and meta.modality("dem").tile_px == 16
    assert "val/miou" in meta.provenance["metrics"]
    assert read_model_metadata(str(out)).reference_modality == "s2"
    from training.cli import load_from_config
    task, dm = load_from_config(SLO_FT, last, [*SMALL, *_data(slovenia)])
    from training.datasets.collate import collate
    batch = collate([dm.dataset("val")[i] for i in range(2)])
    want = task.eval_model().eval()(batch).detach().numpy()
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = sess.run(None, contract_feeds(batch, meta))[0]
    assert got.shape == (2, 5, 16, 16) and np.abs(got - want).max() < 1e-4
    emb = export_model(SLO_FT, last, str(tmp_path / "emb.onnx"), "embedding", "emb",
                       [*SMALL, *_data(slovenia)])
    assert emb.task == "embedding" and emb.embedding_dim == 24
    sess = ort.InferenceSession(str(tmp_path / "emb.onnx"), providers=["CPUExecutionProvider"])
    assert sess.run(None, contract_feeds(batch, emb))[0].shape == (
        2, 24, 4, 4)


class _StopAfterFirstEpoch(__import__("lightning").pytorch.Callback):
    def on_train_epoch_end(self, trainer, pl_module):
        trainer.should_stop = True


def test_pretrain_then_finetune_from_it(slovenia, tmp_path):
    run = str(tmp_path / "pt")
    assert main(["fit", "--config", SLO_PT, *SMALL, *_data(slovenia), *quick(run)]) == 0
    ckpt = glob.glob(f"{run}/**/checkpoints/last.ckpt", recursive=True)[0]
    cli = lightning_cli(["--config", SLO_FT, "--trainer.logger=false", *SMALL,
                         *_data(slovenia), f"--model.init_args.pretrained={ckpt}"], run=False)
    report = cli.model.pretrained_report
    assert report["loaded"] > 10 and not any(k.startswith("patch_embed") for k in
                                             report["missing"])
    src = torch.load(ckpt, weights_only=False)["state_dict"]
    key = "patch_embed.s2.patchify_bands.0.conv.weight"
    assert torch.equal(cli.model.model.state_dict()[key], src["model." + key])


def test_command_line_entry_and_errors(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT)
    r = subprocess.run([sys.executable, "-m", "training", "nope"], cwd=ROOT, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 2 and "unknown command" in r.stderr
    # import-official is wired to training.official.import_official (an official-layout
    # checkpoint built by the model's own tests).
    from tests.training.test_official import write_checkpoint, write_config

    ckpt, cfg = str(tmp_path / "official.ckpt"), write_config(str(tmp_path / "imp.yaml"))
    write_checkpoint(ckpt)
    out = tmp_path / "official.onnx"
    r = subprocess.run([sys.executable, "-m", "training", "import-official", ckpt, "--config",
                        cfg, "--task", "classification", "--output", str(out)], cwd=ROOT, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert report["loaded"] > 0 and report["weights"] == "ema"      # the official default
    assert read_model_metadata(str(out)).task == "classification"
    r = subprocess.run([sys.executable, "-m", "training", "import-official", ckpt, "--config",
                        cfg, "--task", "classification", "--output", str(out), "--weights",
                        "model"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert r.returncode == 0 and json.loads(r.stdout.strip().splitlines()[-1])["weights"] == "model"
