"""``python -m training import-official`` as a user runs it: a bad checkpoint is one error
line (exit 2) naming it, never a traceback, and no ONNX file is written."""
from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT


def test_bad_checkpoint_is_one_line(tmp_path):
    ckpt = tmp_path / "text.ckpt"
    ckpt.write_text("not a checkpoint")
    out = tmp_path / "m.onnx"
    proc = subprocess.run(
        [sys.executable, "-m", "training", "import-official", str(ckpt), "--config",
         os.path.join(ROOT, "training", "configs", "official", "flair-hub-base.yaml"),
         "--task", "segmentation", "--output", str(out)],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True,
        timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = [x for x in proc.stderr.strip().splitlines() if x.startswith("error:")]
    assert lines and lines[-1].startswith("error: OfficialCheckpointError: cannot read checkpoint")
    assert str(ckpt) in lines[-1] and "Traceback" not in proc.stderr
    assert not out.exists()
