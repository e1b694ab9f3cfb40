"""Import of official MAESTRO checkpoints: a Lightning-style checkpoint is built here in
the official key layout and shapes (facts section 5, with tiny custom dims), with a
pickled config object, then imported, mapped, exported and run."""
from __future__ import annotations

import dataclasses
import os
import sys
import types

import numpy as np
import onnxruntime as ort
import pytest
import torch
import yaml

from engine.contract import read_model_metadata
from training.export import example_batch, input_order
from training.official import (OfficialCheckpointError, build_from_config, import_official,
                               load_checkpoint, map_state, model_state, read_import_config)

D, DEC, HIDDEN, DEC_HIDDEN = 16, 16, 32, 64          # dec MLP hidden = encoder dim * 4
MODS = {"aerial": (4, 10), "s2": (10, 2), "s1_asc": (2, 2), "s1_des": (2, 2)}  # bands, patch
GROUPS = {"aerial": ["aerial"], "s2": ["s2"], "s1": ["s1_asc", "s1_des"]}


def _block(prefix, dim, inner, hidden):
    return {f"{prefix}.0.norm.weight": (dim,), f"{prefix}.0.norm.bias": (dim,),
            f"{prefix}.0.to_qkv.weight": (3 * inner, dim),
            f"{prefix}.0.to_out.0.weight": (dim, inner), f"{prefix}.0.to_out.0.bias": (dim,),
            f"{prefix}.1.net.0.weight": (dim,), f"{prefix}.1.net.0.bias": (dim,),
            f"{prefix}.1.net.1.weight": (hidden, dim), f"{prefix}.1.net.1.bias": (hidden,),
            f"{prefix}.1.net.4.weight": (dim, hidden), f"{prefix}.1.net.4.bias": (dim,)}


def official_shapes(head="treesat_mlc_thresh", classes=15):
    """Key -> shape of an official TreeSatAI-like model (depth 2, inter_depth 1)."""
    shapes = {}
    for m, (c, p) in MODS.items():
        pre = f"patch_embed.{m}.patchify_bands.0"
        shapes.update({f"{pre}.conv.weight": (D, c, p, p), f"{pre}.conv.bias": (D,),
                       f"{pre}.norm.weight": (D,), f"{pre}.norm.bias": (D,),
                       f"embed_to_rec.{m}.pixelify_bands.0.conv.weight": (c * p * p, DEC, 1, 1),
                       f"embed_to_rec.{m}.pixelify_bands.0.conv.bias": (c * p * p,),
                       f"mask_token.{m}": (1, 1, 1, 1, DEC)})
    for g in GROUPS:
        shapes.update(_block(f"encoder.{g}.layers.0", D, 16, HIDDEN))
        shapes.update({f"encoder.{g}.norm.weight": (D,), f"encoder.{g}.norm.bias": (D,),
                       f"enc_to_dec.{g}.weight": (DEC, D), f"enc_to_dec.{g}.bias": (DEC,),
                       f"decoder.{g}.norm.weight": (DEC,), f"decoder.{g}.norm.bias": (DEC,)})
        shapes.update(_block(f"decoder.{g}.layers.0", DEC, 16, DEC_HIDDEN))
    shapes.update(_block("encoder_inter.layers.0", D, 16, HIDDEN))
    shapes.update({"encoder_inter.norm.weight": (D,), "encoder_inter.norm.bias": (D,),
                   f"heads.{head}.linear.weight": (classes, D),
                   f"heads.{head}.linear.bias": (classes,),
                   f"heads.{head}.reduce.query": (D,),
                   f"heads.{head}.reduce.norm.weight": (D,), f"heads.{head}.reduce.norm.bias": (D,),
                   f"heads.{head}.reduce.norm_fc.weight": (D,),
                   f"heads.{head}.reduce.norm_fc.bias": (D,),
                   f"heads.{head}.reduce.to_kv.weight": (2 * D, D)})
    return shapes


class _FakeModules:
    """Temporarily importable ``maestro.conf.*`` modules, so that pickle can write objects
    of the official config classes; removed again before loading."""

    def __init__(self, **classes):
        self.classes = classes

    def __enter__(self):
        self.added = []
        for qualified, cls in self.classes.items():
            module, _, name = qualified.rpartition(".")
            parts = module.split(".")
            for i in range(1, len(parts) + 1):
                mod = ".".join(parts[:i])
                if mod not in sys.modules:
                    sys.modules[mod] = types.ModuleType(mod)
                    self.added.append(mod)
            cls.__module__, cls.__qualname__ = module, name
            setattr(sys.modules[module], name, cls)
        return self

    def __exit__(self, *exc):
        for mod in self.added:
            sys.modules.pop(mod, None)


@dataclasses.dataclass
class MaskConfig:           # stands for maestro.conf.mask.MaskConfig (facts 2.5 defaults)
    mask_ratio: float = 0.75
    mask_mod: float = 0.25
    mask_dates: float = 0.25
    mask_loc: float = 0.25


@dataclasses.dataclass
class ModelConfig:          # another official config class (auto-stubbed: maestro namespace)
    model_size: str = "tiny"


@dataclasses.dataclass
class Foreign:              # a class outside the official namespaces: not allow-listed
    value: int = 1


class Payload:              # what a malicious pickle would carry
    def __reduce__(self):
        return (os.system, ("touch /tmp/maestro-official-pwned",))


def write_checkpoint(path, extra=None, seed=0):
    gen = torch.Generator().manual_seed(seed)
    weights = {k: torch.randn(s, generator=gen) * 0.2 for k, s in official_shapes().items()}
    state = {f"model.{k}": v for k, v in weights.items()}
    state.update({f"ema_model.{k}": v + 1.0 for k, v in weights.items()})
    with _FakeModules(**{"maestro.conf.mask.MaskConfig": MaskConfig,
                          "maestro.conf.model.ModelConfig": ModelConfig,
                          "thirdparty.tools.Foreign": Foreign}):
        ckpt = {"state_dict": state, "epoch": 3, "global_step": 120,
                "pytorch-lightning_version": "2.5.1",
                "hyper_parameters": {"mask": MaskConfig(), "model_size": "tiny", **(extra or {})}}
        torch.save(ckpt, path)
    return weights


def write_config(path, **overrides):
    doc = {"name": "official-test", "embed_dim": D, "depth": 2, "inter_depth": 1, "heads": 2,
           "dim_head": 8, "mlp_ratio": 2, "dec_dim": DEC, "dec_depth": 1, "dec_heads": 2,
           "dec_dim_head": 8, "head_heads": 4, "grid_pos_enc": 6,
           "reference_modality": "aerial", "head_name": "treesat_mlc_thresh",
           "rename": {"s1_des": "s1_desc"}, "multilabel": True,
           "classes": [{"id": i, "name": f"genus{i}", "color": "#336633"} for i in range(15)],
           "provenance": {"training_data": "synthetic", "licence": "MIT"},
           "modalities": [
               {"name": "aerial", "bands": ["IR", "G", "B", "R"], "gsd_m": 0.2, "tile_px": 20,
                "patch_px": 10, "norm_bands": [1, 3],
                "scaling": {"transform": "none", "mean": [0] * 4, "std": [255] * 4}},
               {"name": "s2", "bands": [f"B{i}" for i in range(10)], "gsd_m": 0.2 * 20 / 6,
                "tile_px": 6, "patch_px": 2, "max_dates": 4, "norm_bands": [4, 4, 2],
                "scaling": {"transform": "none", "mean": [0] * 10, "std": [5000] * 10}},
               {"name": "s1_asc", "group": "s1", "bands": ["VV", "VH"], "gsd_m": 0.2 * 20 / 6,
                "tile_px": 6, "patch_px": 2, "max_dates": 2,
                "scaling": {"transform": "log", "mean": [0, 0], "std": [5, 5]}},
               {"name": "s1_desc", "group": "s1", "bands": ["VV", "VH"],
                "gsd_m": 0.2 * 20 / 6, "tile_px": 6, "patch_px": 2, "max_dates": 2,
                "scaling": {"transform": "log", "mean": [0, 0], "std": [5, 5]}}]}
    doc.update(overrides)
    with open(path, "w") as fh:
        yaml.safe_dump(doc, fh)
    return path


def test_import_maps_every_official_key_and_exports_a_working_model(tmp_path):
    ckpt, cfg = str(tmp_path / "m.ckpt"), write_config(str(tmp_path / "c.yaml"))
    weights = write_checkpoint(ckpt)
    out = str(tmp_path / "m.onnx")
    report = import_official(ckpt, cfg, "classification", out)
    assert report["loaded"] == len(weights)
    assert report["missing"] == [] and report["unexpected"] == []
    assert report["weights"] == "ema" and report["ignored"] == len(weights)
    assert report["head_from_checkpoint"]
    assert report["stubbed_classes"] == ["maestro.conf.mask.MaskConfig"]
    meta = read_model_metadata(out)
    assert meta.task == "classification" and meta.multilabel and len(meta.classes) == 15

    # The exported graph computes what our torch model computes with the ema_model.*
    # weights (the default, as the official evaluation; offset by +1 from model.*).
    ema = {k: v + 1.0 for k, v in weights.items()}
    _, model = build_from_config(read_import_config(cfg), "classification")
    loaded = map_state(ema, model, {"s1_des": "s1_desc"})
    assert loaded["loaded"] == len(weights)
    sd = model.state_dict()
    assert torch.equal(sd["patch_embed.s1_desc.patchify_bands.0.conv.weight"],
                       ema["patch_embed.s1_des.patchify_bands.0.conv.weight"])
    assert torch.equal(sd["mask_token.s1_desc"], ema["mask_token.s1_des"])
    feed = example_batch(meta, batch=2, dates={"s2": 4, "s1_asc": 2, "s1_desc": 1, "dem": 1})
    sess = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
    got = sess.run(None, {k: feed[k].numpy() for k in input_order(meta)})[0]
    with torch.no_grad():
        want = model.eval()(feed).numpy()
    assert np.abs(got - want).max() <= 1e-4


def test_weights_option_chooses_the_ema_or_the_model_weights(tmp_path):
    ckpt, cfg = str(tmp_path / "m.ckpt"), write_config(str(tmp_path / "c.yaml"))
    weights = write_checkpoint(ckpt)
    key = "mask_token.s1_des"
    state, ignored = model_state(load_checkpoint(ckpt))                  # default: EMA
    assert torch.equal(state[key], weights[key] + 1.0) and ignored == len(weights)
    state, ignored = model_state(load_checkpoint(ckpt), "model")
    assert torch.equal(state[key], weights[key]) and ignored == len(weights)
    with pytest.raises(OfficialCheckpointError, match="weights must be one of"):
        model_state(load_checkpoint(ckpt), "last")
    # The two imports differ exactly by the weights taken.
    outs = {}
    for which in ("ema", "model"):
        out = str(tmp_path / f"{which}.onnx")
        report = import_official(ckpt, cfg, "embedding", out, weights=which)
        assert report["weights"] == which and report["missing"] == []
        meta = read_model_metadata(out)
        feed = example_batch(meta, batch=1, dates={"s2": 2, "s1_asc": 1, "s1_desc": 1})
        sess = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
        outs[which] = sess.run(None, {k: feed[k].numpy() for k in input_order(meta)})[0]
    assert np.abs(outs["ema"] - outs["model"]).max() > 1e-3
    # A Lightning checkpoint without an EMA copy: a clear error naming the option.
    only_model = {"state_dict": {f"model.{k}": v for k, v in weights.items()}}
    torch.save(only_model, str(tmp_path / "noema.ckpt"))
    with pytest.raises(OfficialCheckpointError, match="--weights model"):
        import_official(str(tmp_path / "noema.ckpt"), cfg, "embedding",
                        str(tmp_path / "x.onnx"))
    assert not (tmp_path / "x.onnx").exists()
    report = import_official(str(tmp_path / "noema.ckpt"), cfg, "embedding",
                             str(tmp_path / "x.onnx"), weights="model")
    assert report["weights"] == "model" and report["ignored"] == 0


def test_embedding_and_segmentation_imports(tmp_path):
    ckpt = str(tmp_path / "m.ckpt")
    write_checkpoint(ckpt)
    cfg = write_config(str(tmp_path / "c.yaml"))
    report = import_official(ckpt, cfg, "embedding", str(tmp_path / "e.onnx"))
    assert report["missing"] == [] and report["metadata"]["embedding_dim"] == D
    # An official classification head is no use for segmentation: reported, not loaded.
    report = import_official(ckpt, cfg, "segmentation", str(tmp_path / "s.onnx"))
    assert not report["head_from_checkpoint"]
    assert any(k.startswith("heads.treesat_mlc_thresh.conv") for k in report["missing"])
    assert "heads.treesat_mlc_thresh.linear.weight" in report["unexpected"]
    assert read_model_metadata(str(tmp_path / "s.onnx")).task == "segmentation"
    # Another number of classes: the head is re-initialised and reported, not an error.
    cfg = write_config(str(tmp_path / "c7.yaml"), classes=[
        {"id": i, "name": f"c{i}", "color": "#000000"} for i in range(7)])
    report = import_official(ckpt, cfg, "classification", str(tmp_path / "c7.onnx"))
    assert not report["head_from_checkpoint"]
    assert set(report["mismatched"]) == {"heads.treesat_mlc_thresh.linear.weight",
                                         "heads.treesat_mlc_thresh.linear.bias"}
    assert "heads.treesat_mlc_thresh.reduce.to_kv.weight" not in report["missing"]


def test_pickled_config_comes_back_as_an_inert_stub(tmp_path):
    ckpt = str(tmp_path / "m.ckpt")
    write_checkpoint(ckpt)
    assert "maestro.conf.mask" not in sys.modules       # the real class is not importable
    loaded = load_checkpoint(ckpt)
    stub = loaded["hyper_parameters"]["mask"]
    assert type(stub).__module__ == "maestro.conf.mask" and type(stub).__name__ == "MaskConfig"
    assert stub.state == {"mask_ratio": 0.75, "mask_mod": 0.25, "mask_dates": 0.25,
                          "mask_loc": 0.25}
    state, ema = model_state(loaded)
    assert len(state) == ema == len(official_shapes())


def test_classes_outside_the_allow_list_are_refused(tmp_path):
    marker = "/tmp/maestro-official-pwned"
    if os.path.exists(marker):
        os.remove(marker)
    evil = str(tmp_path / "evil.ckpt")
    write_checkpoint(evil, extra={"payload": Payload()})
    with pytest.raises(OfficialCheckpointError, match="system"):
        load_checkpoint(evil)
    assert not os.path.exists(marker)

    other = str(tmp_path / "other.ckpt")
    write_checkpoint(other, extra={"foreign": Foreign(), "model": ModelConfig()})
    with pytest.raises(OfficialCheckpointError, match="thirdparty.tools.Foreign"):
        load_checkpoint(other)
    # ... unless the import config lists it as a further stub class; official config
    # classes beyond MaskConfig (maestro.* namespace) are stubbed without being listed.
    loaded = load_checkpoint(other, ["thirdparty.tools.Foreign"])
    assert loaded["hyper_parameters"]["foreign"].state == {"value": 1}
    assert loaded["hyper_parameters"]["model"].state == {"model_size": "tiny"}
    assert set(loaded["__stubbed__"]) == {"maestro.conf.mask.MaskConfig",
                                          "maestro.conf.model.ModelConfig",
                                          "thirdparty.tools.Foreign"}


def test_shape_mismatch_and_missing_encoder_are_errors(tmp_path):
    ckpt = str(tmp_path / "m.ckpt")
    write_checkpoint(ckpt)
    cfg = write_config(str(tmp_path / "patch.yaml"))
    doc = read_import_config(cfg)
    doc["modalities"][0]["patch_px"] = 5                       # aerial patch 5 vs 10
    with open(cfg, "w") as fh:
        yaml.safe_dump(doc, fh)
    with pytest.raises(OfficialCheckpointError, match="patch_embed.aerial"):
        import_official(ckpt, cfg, "embedding", str(tmp_path / "x.onnx"))
    assert not os.path.exists(tmp_path / "x.onnx")
    cfg = write_config(str(tmp_path / "norename.yaml"), rename={})
    with pytest.raises(OfficialCheckpointError, match="s1_desc"):
        import_official(ckpt, cfg, "embedding", str(tmp_path / "y.onnx"))
    with pytest.raises(OfficialCheckpointError, match="not found"):
        import_official(str(tmp_path / "none.ckpt"), cfg, "embedding", str(tmp_path / "z.onnx"))


def test_bundled_flair_hub_config_builds_the_official_base_model():
    """facts 2.1: FLAIR base = 336.5M parameters, 278.8M on the encoder side."""
    from tests.conftest import ROOT

    doc = read_import_config(os.path.join(ROOT, "training", "configs", "official",
                                          "flair-hub-base.yaml"))
    with torch.device("meta"):                       # shapes only, no weight init
        meta, model = build_from_config(doc, "segmentation")
    total = sum(p.numel() for p in model.parameters())
    encoder = sum(p.numel() for p in model.encoder_parameters())
    assert round(total / 1e6, 1) == 336.5 and round(encoder / 1e6, 1) == 278.8
    sd = model.state_dict()
    assert sd["patch_embed.aerial.patchify_bands.0.conv.weight"].shape == (768, 4, 16, 16)
    assert sd["patch_embed.dem.patchify_bands.0.conv.weight"].shape == (768, 2, 32, 32)
    assert sd["heads.cosia.conv.weight"].shape == (3840, 768, 1, 1)
    assert meta.reference.tile_ground_m == pytest.approx(102.4)
    assert model.config.modality("dem").rescale_elev


def test_a_bare_state_dict_is_accepted(tmp_path):
    gen = torch.Generator().manual_seed(0)
    weights = {k: torch.randn(s, generator=gen) for k, s in official_shapes().items()}
    path = str(tmp_path / "bare.pt")
    torch.save(weights, path)
    state, ema = model_state(load_checkpoint(path))
    assert ema == 0 and set(state) == set(weights)
