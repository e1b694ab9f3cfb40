"""Task options the recipes use: pretraining views sharing the weights, seeded masks,
class-weighted cross-entropy, strict and head-carrying checkpoint loading
(``training.tasks``, ``training.models.views``, ``training.recipes.loaders``)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from training.models.views import shared_view
from training.recipes.loaders import StepBatches, fit
from training.tasks import PretrainTask, SegmentationTask, save_weights
from training.tasks.pretrain import VIEW_KEY

from .model_fixtures import small_batch, small_config

QUIET = dict(log=lambda *_: None)


def _config(task=None) -> dict:
    mods = [m for m in small_config(task).modalities if m.name in ("s2", "dem")]
    return small_config(task, modalities=mods).to_dict()


class _Source:
    """Random batches of one model config (numpy-seeded by the caller's generator)."""

    def __init__(self, cfg: dict, target: bool = False):
        from training.models import MaestroConfig

        self.cfg, self.target = MaestroConfig(**cfg), target

    def batch(self, size, rng):
        out = small_batch(self.cfg, batch=size, seed=int(rng.integers(1 << 30)))
        if self.target:
            ref = self.cfg.reference.tile_px
            out["target"] = torch.from_numpy(rng.integers(-1, 5, (size, ref, ref)))
        return out


def test_a_view_shares_every_weight_and_trains_the_model():
    torch.manual_seed(0)
    task = PretrainTask(_config(), views={"small": {"s2": {"tile_px": 8, "max_dates": 2}}},
                        mask_seed=1)
    view = task._views["small"]
    assert [m.name for m in view.config.modalities] == ["s2"]
    assert view.config.modality("s2").tile_px == 8 and view.config.modality("s2").grid == 2
    own = {id(p) for p in task.model.parameters()}
    assert all(id(p) in own for p in view.parameters())          # nothing of its own
    assert "_views" not in dict(task.named_children())            # not in the state dict
    assert not any(k.startswith("_views") for k in task.state_dict())
    with pytest.raises(ValueError, match="cannot change s2.patch_px"):
        shared_view(task.model, {"s2": {"patch_px": 2}})
    # Batches in turn: full tiles through the model, 8 px tiles through the view.
    sources = {"full": _Source(_config()), "small": _Source(view.config.to_dict())}
    before = {k: v.clone() for k, v in task.model.state_dict().items()}
    history = fit(task, StepBatches(sources, 2, 4, seed=0, views=("small",)), "pretrain",
                  **QUIET)
    assert [name for name, _ in history] == ["full", "small", "full", "small"]
    assert all(np.isfinite(v) for _, v in history)
    changed = [k for k, v in task.model.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.startswith("patch_embed.s2") for k in changed)
    with pytest.raises(KeyError, match="not one of"):
        task.network({VIEW_KEY: "other", **sources["full"].batch(1, np.random.default_rng(0))})


def test_pretraining_through_the_task_is_seeded():
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        task = PretrainTask(_config(), mask_seed=3, use_ema=False)
        runs.append(fit(task, StepBatches({"a": _Source(_config())}, 2, 3, seed=5), "p",
                        **QUIET))
    assert runs[0] == runs[1]


def test_class_weights_weight_the_cross_entropy():
    torch.manual_seed(0)
    weights = [0.5, 1.0, 2.0, 4.0, 1.0]
    task = SegmentationTask(_config("segmentation"), class_weights=weights)
    logits = torch.randn(2, 5, 4, 4)
    target = torch.randint(-1, 5, (2, 4, 4))
    want = F.cross_entropy(logits, target, weight=torch.tensor(weights), ignore_index=-1)
    assert torch.equal(task.loss(logits, target), want)
    assert not torch.equal(task.loss(logits, target), F.cross_entropy(logits, target,
                                                                      ignore_index=-1))
    assert task.class_weights.dtype == torch.float32
    with pytest.raises(ValueError, match="3 values for 5 classes"):
        SegmentationTask(_config("segmentation"), class_weights=[1.0, 1.0, 1.0])


def test_checkpoint_loading_strict_and_with_heads(tmp_path):
    torch.manual_seed(0)
    pre = PretrainTask(_config(), use_ema=False)
    path = save_weights(pre.model, str(tmp_path / "pre.ckpt"))
    seg = SegmentationTask(_config("segmentation"), pretrained=path, pretrained_strict=True)
    assert seg.pretrained_report["missing"] == []
    assert torch.equal(seg.model.state_dict()["patch_embed.s2.patchify_bands.0.conv.weight"],
                       pre.model.state_dict()["patch_embed.s2.patchify_bands.0.conv.weight"])
    # The head of a segmentation checkpoint is taken only when asked.
    head = str(tmp_path / "seg.ckpt")
    save_weights(seg.model, head)
    key = next(k for k in seg.model.state_dict() if k.startswith("heads."))
    torch.manual_seed(1)
    fresh = SegmentationTask(_config("segmentation"), pretrained=head)
    assert not torch.equal(fresh.model.state_dict()[key], seg.model.state_dict()[key])
    carried = SegmentationTask(_config("segmentation"), pretrained=head, pretrained_heads=True)
    assert torch.equal(carried.model.state_dict()[key], seg.model.state_dict()[key])
    # Strict: weights the model needs but the checkpoint lacks are an error.
    other = dict(_config("segmentation"), modalities=[
        *_config("segmentation")["modalities"],
        {"name": "s1", "bands": 2, "patch_px": 2, "tile_px": 8}])
    SegmentationTask(other, pretrained=path)                      # reported only
    with pytest.raises(ValueError, match="missing .*patch_embed.s1"):
        SegmentationTask(other, pretrained=path, pretrained_strict=True)
