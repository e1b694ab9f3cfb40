"""Cross-check training.models.Maestro against the official MAESTRO code (developer tool).

Builds the official ``mae_tiny`` (TreeSatAI-TS classification and PASTIS-HD segmentation
configs, ``inter_depth=3``), perturbs all its weights, loads its state dict into our Maestro
through ``training.official.map_state`` and compares, on the same random inputs:
classification logits, segmentation logits and the pretraining loss under the official
run's own masks. Nothing of the official code is copied: it is imported and run.

Needs (outside the project's venv, e.g. ``pip install --target /tmp/vitpkg --no-deps``):
vit-pytorch==1.10.1 einops==0.7.0 hydra-zen==0.13.0 hydra-core==1.3.2 omegaconf==2.3.0
antlr4-python3-runtime==4.9.3 torchmetrics==1.7.0 dacite==1.9.2, and the official
repository (IGNF/MAESTRO at 6a30075) unpacked somewhere. Modules the model code never uses
(torchvision, pandas, geopandas, dotenv...) are stubbed.

    .venv/bin/python scripts/crosscheck_official.py --official /tmp/official --extra /tmp/vitpkg
"""
from __future__ import annotations

import argparse
import importlib.machinery
import os
import sys
import types

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class _AnyModule(types.ModuleType):
    """A stub module whose every attribute is a dummy class (import-time use only)."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return type(name, (), {})


def _stub_modules() -> None:
    for name in ("geopandas", "pyogrio", "pyarrow", "clearml", "pandas", "torchvision",
                 "torchvision.transforms", "torchvision.utils"):
        mod = _AnyModule(name)
        mod.__spec__ = importlib.machinery.ModuleSpec(name, None)
        sys.modules.setdefault(name, mod)
    dotenv = types.ModuleType("dotenv")
    dotenv.load_dotenv = lambda *a, **k: None
    sys.modules.setdefault("dotenv", dotenv)


def _official_model(name_dataset: str):
    import torch
    from maestro.conf.dataset.flair import FLAIRConfig
    from maestro.conf.dataset.pastis_hd import PASTISHDConfig
    from maestro.conf.dataset.s2_naip import S2NAIPConfig
    from maestro.conf.dataset.treesatai_ts import TreeSatAITSConfig
    from maestro.conf.datasets import DatasetsConfig
    from maestro.conf.mask import MaskConfig
    from maestro.ssl.mae import mae_tiny

    ds = DatasetsConfig(root_dir="/nonexistent", name_dataset=name_dataset,
                        treesatai_ts=TreeSatAITSConfig(rel_dir=""), pastis_hd=PASTISHDConfig(),
                        flair=FLAIRConfig(), s2_naip=S2NAIPConfig())
    torch.manual_seed(0)
    model = mae_tiny(datasets=ds, mask=MaskConfig(), interpolate="nearest",
                     fusion_mode="group", model="mae", inter_depth=3, num_levels=1,
                     type_head="attentive", fac_abs_enc=1.0, fac_date_enc=1.0).eval()
    with torch.no_grad():                    # every weight must matter, biases included
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def _inputs(shapes: dict[str, tuple[int, int, int]], batch: int = 2):
    """(official batch, our batch): same pixels and dates; ref_date [B, 1, 3] vs [B, 3]."""
    import torch

    gen = torch.Generator().manual_seed(1)
    data = {}
    for m, (t, c, px) in shapes.items():
        data[m] = torch.rand(batch, t, c, px, px, generator=gen)
        doy = torch.randint(1, 366, (batch, t), generator=gen).sort(1).values
        data[f"{m}_dates"] = torch.stack([torch.full_like(doy, 2019), doy,
                                          torch.zeros_like(doy)], -1)
    ref = torch.tensor([[2019, 182, 0]] * batch)
    official = {k: v.clone() for k, v in data.items()}
    official["ref_date"] = ref[:, None, :]
    ours = {k: v.clone() for k, v in data.items()}
    ours["ref_date"] = ref
    return official, ours


def _ours(mods, reference, grid, task, classes, head):
    from training.models import Maestro, MaestroConfig

    return Maestro(MaestroConfig(size="tiny", modalities=mods, reference_modality=reference,
                                 grid_pos_enc=grid, task=task, num_classes=classes,
                                 multilabel=task == "classification", head_name=head,
                                 inter_depth=3)).eval()


def _satellite_modalities(px: int):
    """Our configs of the official S2 and S1 (ascending + descending, one group) modalities
    at ``px`` pixels per side: 2 px patches, S2 spectral groups 4/4/2, 16 and 4 dates."""
    from training.models import ModalityConfig

    return [ModalityConfig("s2", 10, 2, px, norm_bands=[4, 4, 2], max_dates=16),
            ModalityConfig("s1_asc", 2, 2, px, group="s1", norm_bands=[1, 1], max_dates=4),
            ModalityConfig("s1_des", 2, 2, px, group="s1", norm_bands=[1, 1], max_dates=4)]


def _load_official(label: str, official, ours) -> None:
    """Load the official model's weights into ours and print the key report."""
    from training.official import map_state

    report = map_state(official.state_dict(), ours)
    print(f"{label} keys: loaded {report['loaded']}, missing {len(report['missing'])}, "
          f"unexpected {len(report['unexpected'])}, mismatched {len(report['mismatched'])}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", required=True, help="unpacked IGNF/MAESTRO repository")
    parser.add_argument("--extra", required=True, help="folder with vit-pytorch, hydra-zen...")
    args = parser.parse_args()
    sys.path[:0] = [args.extra, args.official, ROOT]
    _stub_modules()
    import torch

    import training.models.maestro as ours_module
    from training.models import ModalityConfig

    # ---- TreeSatAI-TS: classification, then pretraining loss with the official masks
    model = _official_model("treesatai_ts")
    mods = [ModalityConfig("aerial", 4, 20, 300, norm_bands=[1, 3]), *_satellite_modalities(6)]
    ours = _ours(mods, "aerial", 96, "classification", 15, "treesat_mlc_thresh")
    _load_official("TreeSatAI", model, ours)
    shapes = {"aerial": (1, 4, 300), "s2": (16, 10, 6), "s1_asc": (4, 2, 6), "s1_des": (4, 2, 6)}
    off_batch, our_batch = _inputs(shapes)
    with torch.no_grad():
        _, _, _, logits = model({k: v.clone() for k, v in off_batch.items()}, "finetune")
        diff = (logits["treesat_mlc_thresh"] - ours(our_batch)).abs().max().item()
    print(f"classification logits: max |official - ours| = {diff:.2e}")

    # Pretraining: the official run's masks are captured and given to ours. The official
    # unmasking places mask tokens in argsort order, which scrambles the per-modality
    # tokens inside a multi-modality group (s1): with one token for both orbits the two
    # losses must agree exactly; with distinct tokens they differ on s1 only.
    import maestro.layers.overlay  # noqa: F401  (needs the torchvision stub)
    for name in [k for k in sys.modules if k.startswith("torchvision")]:
        del sys.modules[name]                      # torchmetrics probes torchvision
    from maestro.train.model import SSLModule

    for same_token in (False, True):
        if same_token:
            with torch.no_grad():
                model.mask_token["s1_des"].copy_(model.mask_token["s1_asc"])
                ours.mask_token["s1_des"].copy_(ours.mask_token["s1_asc"])
        captured = {}
        seq = type(model).mask_seq

        def spy(self, x, mask_token, mask_rec, name_group, seq=seq, captured=captured):
            out = seq(self, x, mask_token, mask_rec, name_group)
            captured[name_group] = out[3][..., 0].clone()
            return out

        model.mask_seq = types.MethodType(spy, model)
        torch.manual_seed(5)
        with torch.no_grad():
            batch_out, pixels, masks, _ = model({k: v.clone() for k, v in off_batch.items()},
                                                "pretrain")
        fake = types.SimpleNamespace(
            model=model, norm_pix_loss=True, loss_fn=torch.abs,
            norm_bands={m.name: m.band_groups for m in mods},
            metrics={"loss_rec_train": types.SimpleNamespace(update=lambda v: None)})
        official_loss = SSLModule.compute_loss_rec(fake, batch_out, pixels, masks, "train")
        per_mod = {}
        for group, names in (("aerial", ["aerial"]), ("s2", ["s2"]),
                             ("s1", ["s1_asc", "s1_des"])):
            start = 0
            for m in names:
                t, l = shapes[m][0], ours.config.modality(m).tokens
                per_mod[m] = captured[group][:, start:start + t * l].reshape(-1, t, l)
                start += t * l
        original = ours_module.draw_masks
        ours_module.draw_masks = lambda *a, **k: (per_mod, per_mod)
        try:
            with torch.no_grad():
                our_loss = ours.pretrain_loss(our_batch)["loss"]
        finally:
            ours_module.draw_masks = original
        what = "one s1 mask token" if same_token else "distinct s1 mask tokens"
        print(f"pretraining loss ({what}): official {official_loss.item():.6f}, "
              f"ours {our_loss.item():.6f}")

    # ---- PASTIS-HD: segmentation (spot 10x10 resized to the s2 8x8 grid; grid_pos_enc 256)
    model = _official_model("pastis_hd")
    mods = [ModalityConfig("spot", 3, 16, 160), *_satellite_modalities(16)]
    ours = _ours(mods, "s2", 256, "segmentation", 19, "pastis_seg")
    _load_official("PASTIS", model, ours)
    off_batch, our_batch = _inputs({"spot": (1, 3, 160), "s2": (16, 10, 16),
                                    "s1_asc": (4, 2, 16), "s1_des": (4, 2, 16)})
    with torch.no_grad():
        _, _, _, logits = model(off_batch, "finetune")
        mine = ours(our_batch)
        diff = (logits["pastis_seg"].reshape(mine.shape) - mine).abs().max().item()
    print(f"segmentation logits: max |official - ours| = {diff:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
