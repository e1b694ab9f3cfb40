"""Two-process DDP on CPU (gloo), through the real command line: after the steps both
processes hold identical weights, and the run's global step is the same on both."""
import glob
import json
import os
import subprocess
import sys

from tests.conftest import ROOT
from tests.training.small_model import SMALL
from training.datasets.slovenia import write_slovenia_stack


def test_two_process_ddp_keeps_replicas_identical(tmp_path):
    data = tmp_path / "slo"
    write_slovenia_stack(str(data), ndvi=False)
    hashes = tmp_path / "hashes"
    cfg = os.path.join(ROOT, "training", "configs", "slovenia_tiny_finetune.yaml")
    cmd = [sys.executable, "-m", "training", "fit", "--config", cfg, *SMALL,
           f"--data.init_args.root={data}", "--data.init_args.tile_px=16",
           "--data.init_args.batch_size=2", "--data.init_args.samples_per_epoch=8",
           "--model.init_args.model.modalities=[{name: s2, bands: 13, patch_px: 4, tile_px: 16,"
           " max_dates: 5}, {name: dem, bands: 1, patch_px: 4, tile_px: 16, max_dates: 1}]",
           "--trainer.accelerator=cpu", "--trainer.devices=2", "--trainer.strategy=ddp",
           "--trainer.max_epochs=1", "--trainer.limit_train_batches=2",
           "--trainer.limit_val_batches=0", "--trainer.enable_progress_bar=false",
           "--trainer.logger=false", "--trainer.enable_checkpointing=false",
           f"--trainer.default_root_dir={tmp_path / 'run'}",
           "--trainer.callbacks=[{class_path: training.tasks.callbacks.WeightHashCallback, "
           f"init_args: {{folder: {hashes}}}}}]"]
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "distributed_backend=gloo" in r.stderr + r.stdout
    reports = [json.load(open(p)) for p in sorted(glob.glob(str(hashes / "rank*.json")))]
    assert [x["rank"] for x in reports] == [0, 1]
    assert all(x["world_size"] == 2 and x["global_step"] == 2 for x in reports)
    assert reports[0]["hash"] == reports[1]["hash"]
    assert reports[0]["hash"] != reports[0]["initial_hash"]     # the steps changed the weights
