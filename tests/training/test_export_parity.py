"""Torch vs onnxruntime on exported Maestro models: every task, several batch sizes and
date counts (dynamic axes), padded dates; the engine accepts the files."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from engine.contract import build_metadata, read_model_metadata
from training.export import config_from_metadata, example_batch, export_onnx, input_order
from training.models import Maestro

#: Parity budget from the issue: max abs difference torch vs onnxruntime.
TOLERANCE = 1e-4


def _scaling(n, std=1.0):
    return {"transform": "none", "mean": [0.0] * n, "std": [std] * n}


NODATA = {"fill_value": 0.0}


def _metadata(task):
    mods = [
        {"name": "s2", "bands": [f"B{i}" for i in range(10)], "gsd_m": 10.0, "tile_px": 16,
         "patch_px": 4, "min_dates": 1, "max_dates": 6, "scaling": _scaling(10, 5000.0),
         "nodata": NODATA},
        {"name": "s1_asc", "bands": ["VV", "VH"], "gsd_m": 20.0, "tile_px": 8, "patch_px": 2,
         "min_dates": 1, "max_dates": 4, "scaling": _scaling(2), "nodata": NODATA, "group": "s1"},
        {"name": "s1_desc", "bands": ["VV", "VH"], "gsd_m": 20.0, "tile_px": 8, "patch_px": 2,
         "min_dates": 1, "max_dates": 4, "scaling": _scaling(2), "nodata": NODATA, "group": "s1"},
        {"name": "dem", "bands": ["DSM", "DTM"], "gsd_m": 40.0, "tile_px": 4, "patch_px": 2,
         "min_dates": 1, "max_dates": 1, "scaling": _scaling(2, 1000.0), "nodata": NODATA},
    ]
    classes = [{"id": i, "name": f"c{i}", "color": "#00ff00"} for i in range(4)]
    return build_metadata(
        name=f"parity-{task}", task=task, reference_modality="s2", modalities=mods,
        classes=classes if task != "embedding" else [], multilabel=task == "classification",
        embedding_dim=24 if task == "embedding" else None,
        provenance={"training_data": "random weights (test)", "licence": "MIT", "metrics": {}})


@pytest.mark.parametrize("task", ["segmentation", "classification", "embedding"])
def test_onnx_matches_torch_for_several_batch_and_date_counts(task, tmp_path):
    meta = _metadata(task)
    cfg = config_from_metadata(meta, embed_dim=24, depth=2, inter_depth=1, heads=2, dim_head=8,
                               mlp_ratio=2, dec_dim=20, dec_depth=1, dec_heads=2,
                               dec_dim_head=8, head_heads=4, grid_pos_enc=8)
    cfg.modality("dem").rescale_elev = True
    torch.manual_seed(1)
    model = Maestro(cfg).eval()
    path = str(tmp_path / f"{task}.onnx")
    written = export_onnx(model, meta, path)
    assert read_model_metadata(path) == written          # the engine's reader accepts it
    assert written.task == task
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    worst = 0.0
    cases = [(1, 1, 1, 1), (2, 3, 2, 4), (4, 6, 4, 1)]
    for batch, t_s2, t_asc, t_desc in cases:
        feed = example_batch(meta, batch=batch, dates={"s2": t_s2, "s1_asc": t_asc,
                                                        "s1_desc": t_desc, "dem": 1},
                             seed=batch + t_s2)
        if t_s2 > 2:
            feed["s2_mask"][0, -2:] = True                # padded dates in one sample
        with torch.no_grad():
            want = model(feed).numpy()
        got = sess.run(None, {k: feed[k].numpy() for k in input_order(meta)})[0]
        assert got.shape == want.shape
        assert want.shape[0] == batch
        worst = max(worst, float(np.abs(got - want).max()))
    print(f"{task}: max |torch - onnxruntime| = {worst:.2e}")
    assert worst <= TOLERANCE


def test_export_refuses_a_model_that_disagrees_with_its_metadata(tmp_path):
    meta = _metadata("embedding")
    cfg = config_from_metadata(meta, embed_dim=32, depth=1, inter_depth=0, heads=2,
                               dim_head=8, dec_dim=20, dec_depth=1, head_heads=4)
    with pytest.raises(ValueError, match="embedding_dim"):
        export_onnx(Maestro(cfg), meta, str(tmp_path / "x.onnx"))
    cfg = config_from_metadata(meta, embed_dim=24, depth=1, inter_depth=0, heads=2,
                               dim_head=8, dec_dim=20, dec_depth=1, head_heads=4)
    cfg.modalities[0].patch_px = 8
    with pytest.raises(ValueError, match="patch_px"):
        export_onnx(Maestro(cfg), meta, str(tmp_path / "x.onnx"))
    assert not any(tmp_path.iterdir())


def test_export_refuses_weights_beyond_the_single_file_limit(tmp_path):
    """A 4096-wide, 3-block encoder (about 2.4 GiB of float32 weights) cannot be one ONNX
    file: refused before any export work, with the reason."""
    meta = build_metadata(
        name="too-big", task="embedding", reference_modality="a", embedding_dim=4096,
        modalities=[{"name": "a", "bands": ["x"], "gsd_m": 10.0, "tile_px": 4, "patch_px": 2,
                     "min_dates": 1, "max_dates": 1, "scaling": _scaling(1), "nodata": NODATA}],
        provenance={"training_data": "none", "licence": "MIT", "metrics": {}})
    with torch.device("meta"):                 # shapes only: nothing allocated
        model = Maestro(config_from_metadata(meta, embed_dim=4096, depth=3, inter_depth=0,
                                             heads=64, dim_head=64, mlp_ratio=4,
                                             grid_pos_enc=2))
    with pytest.raises(ValueError, match="2 GiB"):
        export_onnx(model, meta, str(tmp_path / "big.onnx"))
    assert not any(tmp_path.iterdir())
