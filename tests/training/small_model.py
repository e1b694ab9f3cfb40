"""Command-line overrides shrinking a config's model to a few thousand parameters, so that
the CLI, DDP and export tests run in seconds on CPU."""

SMALL = [f"--model.init_args.model.{k}={v}" for k, v in dict(
    embed_dim=24, depth=2, inter_depth=1, heads=2, dim_head=8, dec_dim=24, dec_depth=1,
    dec_heads=2, dec_dim_head=8, head_heads=2).items()]


def quick(root: str, epochs: int = 1, batches: int = 2) -> list[str]:
    """Trainer overrides: CPU, few batches, output under ``root``."""
    return ["--trainer.accelerator=cpu", "--trainer.devices=1", f"--trainer.max_epochs={epochs}",
            f"--trainer.limit_train_batches={batches}", "--trainer.limit_val_batches=1",
            "--trainer.limit_test_batches=1", "--trainer.check_val_every_n_epoch=1",
            "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
            f"--trainer.default_root_dir={root}", "--trainer.log_every_n_steps=1"]
