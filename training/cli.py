"""``python -m training``: Lightning's CLI for fit/validate/test, plus ``export`` and
``import-official``.

    python -m training fit --config training/configs/slovenia_tiny_finetune.yaml
    python -m training fit --config X.yaml --trainer.devices=4 --trainer.num_nodes=2
    python -m training export --config X.yaml --ckpt CKPT --output MODEL.onnx [--task embedding]
    python -m training import-official CKPT --config X.yaml --task segmentation --output M.onnx

A thin argparse dispatcher sits in front of ``LightningCLI``: the first argument picks the
subcommand; ``fit``/``validate``/``test``/``predict`` go to LightningCLI unchanged (YAML config,
``--trainer.*``/``--model.*``/``--data.*`` overrides, ``--ckpt_path`` to resume).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import torch

from engine.tasks import TASKS

LIGHTNING_SUBCOMMANDS = ("fit", "validate", "test", "predict")


def lightning_cli(args: list[str] | None = None, run: bool = True):
    """LightningCLI over any MaestroTask and MaestroDataModule subclass (``class_path`` in the
    YAML)."""
    from .datamodules.base import MaestroDataModule
    from .tasks.base import MaestroTask

    import warnings

    # Lightning warns when both args and sys.argv are set; sys.argv must stay intact because
    # its DDP launcher re-runs this command line in the other processes.
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
    torch.set_float32_matmul_precision("medium")  # as officially (TF32 on Ampere+ GPUs)
    return _cli_class()(MaestroTask, MaestroDataModule, subclass_mode_model=True,
                        subclass_mode_data=True, args=args, run=run,
                        save_config_kwargs={"overwrite": True})


def _cli_class():
    from lightning.pytorch.cli import LightningCLI

    class MaestroCLI(LightningCLI):
        """LightningCLI whose mixed precision falls back to fp32 where there is no GPU, so
        one config serves a GPU cluster (bf16/16-mixed) and a CPU test run."""

        def before_instantiate_classes(self) -> None:
            cfg = self.config[self.subcommand] if self.subcommand else self.config
            trainer = cfg.trainer
            mixed = str(trainer.precision or "").endswith("-mixed")
            if mixed and (trainer.accelerator == "cpu" or not torch.cuda.is_available()):
                print(f"training: no GPU, precision {trainer.precision} -> 32-true",
                      file=sys.stderr)
                trainer.precision = "32-true"

        def instantiate_classes(self) -> None:
            super().instantiate_classes()
            link_patches(self.model, self.datamodule)

    return MaestroCLI


def link_patches(task, dm) -> None:
    """Give the data module the model's patch per modality, so that its items carry the
    token masks the exported (contract version 2) model takes, built by the engine's own
    function (engine.preprocessing.tokens)."""
    config = getattr(getattr(task, "model", None), "config", None)
    if config is not None and hasattr(dm, "use_model_patches"):
        dm.use_model_patches({m.name: m.patch_px for m in config.modalities})


def load_from_config(config: str, ckpt: str | None = None, overrides: list[str] = ()):
    """(task module, datamodule) built from a YAML config, with the checkpoint's weights
    (model, EMA, metrics) when ``ckpt`` is given."""
    cli = lightning_cli(["--config", config, "--trainer.logger=false", *overrides], run=False)
    task, dm = cli.model, cli.datamodule
    if ckpt:
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        task.load_state_dict(state["state_dict"])
        task.on_load_checkpoint(state)
    return task, dm


def contract_metadata(task, dm, export_task: str, name: str, config: str,
                      metrics: dict | None = None, description: str = ""):
    """The contract metadata of a model trained with ``task`` on ``dm``'s data."""
    from engine.contract import build_metadata

    mcfg = task.model.config
    patch = {m.name: m.patch_px for m in mcfg.modalities}
    infos = {i.name: i for i in dm.info()}
    mods = []
    for m in mcfg.modalities:
        if m.name not in infos:
            raise ValueError(f"the data module has no modality {m.name!r} the model takes")
        mods.append(infos[m.name].contract(patch[m.name]))
    classes = dm.classes() if export_task != "embedding" else []
    if export_task != "embedding" and len(classes) != mcfg.num_classes:
        raise ValueError(f"the data has {len(classes)} classes, the model {mcfg.num_classes}")
    return build_metadata(
        name=name, task=export_task, reference_modality=mcfg.reference_modality,
        modalities=mods, classes=classes,
        multilabel=bool(mcfg.multilabel) and export_task == "classification",
        embedding_dim=mcfg.embed_dim if export_task == "embedding" else None,
        description=description,
        provenance={"training_data": dm.training_data, "licence": dm.licence,
                    "metrics": dict(metrics or {}), "config": os.path.basename(config)})


def export_model(config: str, ckpt: str | None, output: str, export_task: str | None = None,
                 name: str | None = None, overrides: list[str] = ()):
    """Export the checkpoint's network through the contract; returns the metadata read back."""
    from .export import export_onnx
    from .tasks.base import build_model

    task, dm = load_from_config(config, ckpt, overrides)
    net = task.eval_model()
    native = task.model.config.task
    export_task = export_task or native
    if export_task is None:
        export_task = "embedding"
    if export_task != native:
        if export_task != "embedding":
            raise ValueError(f"a {native or 'pretraining'} checkpoint cannot be exported as "
                             f"{export_task}; choose embedding or train a {export_task} model")
        emb = build_model(task.hparams.model, task="embedding", num_classes=0, multilabel=False)
        src = net.state_dict()
        emb.load_state_dict({k: v for k, v in src.items() if not k.startswith("heads.")},
                            strict=False)
        net = emb
    base = os.path.splitext(os.path.basename(config))[0]
    meta = contract_metadata(task, dm, export_task, name or f"maestro-{base}", config,
                             metrics=task.last_metrics)
    return export_onnx(net.eval(), meta, output)


def _export_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m training export",
                                description="Export a trained model to ONNX with the maestro "
                                            "metadata (docs/model-contract.md).")
    p.add_argument("--config", required=True, help="the YAML config the model was trained with")
    p.add_argument("--ckpt", help="Lightning checkpoint (default: the config's initial weights)")
    p.add_argument("--output", required=True, help="ONNX file to write")
    p.add_argument("--task", choices=tuple(TASKS),
                   help="default: the checkpoint's own task (embedding for pretraining)")
    p.add_argument("--name", help="model name in the metadata")
    a, rest = p.parse_known_args(argv)
    meta = export_model(a.config, a.ckpt, a.output, a.task, a.name, rest)
    print(json.dumps({"output": a.output, "task": meta.task, "name": meta.name,
                      "metrics": dict(meta.provenance.get("metrics", {}))}))
    return 0


def _import_official_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m training import-official",
                                description="Convert an official MAESTRO checkpoint to ONNX.")
    p.add_argument("ckpt", help="official Lightning .ckpt (e.g. IGNF/MAESTRO_FLAIR-HUB_base)")
    p.add_argument("--config", required=True, help="YAML config describing the model and data")
    p.add_argument("--task", required=True, choices=tuple(TASKS))
    p.add_argument("--output", required=True, help="ONNX file to write")
    p.add_argument("--weights", choices=("ema", "model"), default="ema",
                   help="ema: the EMA copy, which the official fine-tuning evaluates; model: "
                        "the trained weights (default: %(default)s)")
    a = p.parse_args(argv)
    from .official import OfficialCheckpointError, import_official

    try:
        report = import_official(a.ckpt, a.config, a.task, a.output, a.weights)
    except (OfficialCheckpointError, OSError) as exc:  # one line, not a traceback
        message = "; ".join(x.strip() for x in str(exc).splitlines() if x.strip())
        print(f"error: {type(exc).__name__}: {message}", file=sys.stderr)
        return 2
    print(json.dumps(report, default=str))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = ", ".join((*LIGHTNING_SUBCOMMANDS, "export", "import-official"))
    if not argv or argv[0] in ("-h", "--help"):
        print(f"usage: python -m training {{{commands}}} ...\n\n"
              "fit/validate/test/predict: Lightning CLI (python -m training fit --help)\n"
              "export: ONNX through the model contract (python -m training export --help)\n"
              "import-official: official checkpoint -> ONNX")
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    if cmd in LIGHTNING_SUBCOMMANDS:
        lightning_cli([cmd, *rest])
        return 0
    if cmd == "export":
        return _export_main(rest)
    if cmd == "import-official":
        return _import_official_main(rest)
    print(f"python -m training: unknown command {cmd!r}; expected one of {commands}",
          file=sys.stderr)
    return 2
