"""The Maestro network: shapes, official key layout, sizes, padded dates."""
from __future__ import annotations

import pytest
import torch

from training.models import SIZES, Maestro, MaestroConfig, ModalityConfig

from .model_fixtures import small_batch, small_config, small_model


@pytest.mark.parametrize("task,shape", [("segmentation", (2, 5, 16, 16)),
                                        ("classification", (2, 5)),
                                        ("embedding", (2, 24, 4, 4))])
def test_forward_shapes_follow_the_contract(task, shape):
    model = small_model(task).eval()
    out = model(small_batch(model.config))
    assert tuple(out.shape) == shape
    assert torch.isfinite(out).all()


def test_encode_gives_tokens_per_modality():
    model = small_model(None).eval()
    enc = model.encode(small_batch(model.config, dates={"s2": 5, "s1_asc": 2, "s1_desc": 3}))
    assert {k: tuple(v.shape) for k, v in enc.items()} == {
        "s2": (2, 5, 16, 24), "s1_asc": (2, 2, 16, 24), "s1_desc": (2, 3, 16, 24),
        "dem": (2, 1, 4, 24)}


def test_state_dict_uses_the_official_key_layout():
    keys = set(small_model("segmentation", head_name="cosia").state_dict())
    expected = {
        "patch_embed.s2.patchify_bands.0.conv.weight", "patch_embed.s2.patchify_bands.0.norm.bias",
        "encoder.s2.layers.0.0.norm.weight", "encoder.s2.layers.0.0.to_qkv.weight",
        "encoder.s1.layers.1.0.to_out.0.bias", "encoder.s1.layers.1.1.net.0.weight",
        "encoder.dem.layers.1.1.net.1.weight", "encoder.dem.layers.1.1.net.4.bias",
        "encoder.s2.norm.weight", "encoder_inter.layers.0.0.to_qkv.weight",
        "encoder_inter.norm.bias", "enc_to_dec.s1.weight", "decoder.s1.layers.0.0.to_qkv.weight",
        "decoder.s2.norm.weight", "embed_to_rec.s1_desc.pixelify_bands.0.conv.weight",
        "mask_token.s1_asc", "heads.cosia.conv.weight", "heads.cosia.reduce.query",
        "heads.cosia.reduce.norm.weight", "heads.cosia.reduce.norm_fc.weight",
        "heads.cosia.reduce.to_kv.weight"}
    assert expected <= keys
    # Groups, not modalities, own encoders; no bias on to_qkv; no position buffers saved.
    assert not any(k.startswith(("encoder.s1_asc", "encoder.s1_desc")) for k in keys)
    assert "encoder.s2.layers.0.0.to_qkv.bias" not in keys
    assert not any("pos_enc" in k for k in keys)
    # depth 3 - inter_depth 1 = 2 blocks per group, 1 shared block.
    assert {k.split(".")[3] for k in keys if k.startswith("encoder.s2.layers.")} == {"0", "1"}
    assert {k.split(".")[2] for k in keys if k.startswith("encoder_inter.layers.")} == {"0"}


def test_official_shapes_of_the_base_size():
    cfg = MaestroConfig(size="base", modalities=[ModalityConfig("s2", 10, 2, 10, max_dates=16)],
                        reference_modality="s2", grid_pos_enc=160, inter_depth=3)
    with torch.device("meta"):          # shapes only: no memory, no weight init
        sd = Maestro(cfg).state_dict()
    assert sd["encoder.s2.layers.0.0.to_qkv.weight"].shape == (2304, 768)
    assert sd["encoder.s2.layers.0.1.net.1.weight"].shape == (3072, 768)
    assert sd["enc_to_dec.s2.weight"].shape == (512, 768)
    assert sd["decoder.s2.layers.0.0.to_qkv.weight"].shape == (1536, 512)
    assert sd["decoder.s2.layers.0.1.net.1.weight"].shape == (3072, 512)   # 768 * 4
    assert sd["embed_to_rec.s2.pixelify_bands.0.conv.weight"].shape == (40, 512, 1, 1)
    assert sd["mask_token.s2"].shape == (1, 1, 1, 1, 512)
    assert max(int(k.split(".")[3]) for k in sd if k.startswith("encoder.s2.layers.")) == 8
    assert SIZES["medium"] is SIZES["base"]


def test_flair_tiny_parameter_counts_match_the_official_figures():
    """facts 2.1: FLAIR tiny = 22.3M parameters in total, 12.2M on the encoder side."""
    mods = [ModalityConfig("aerial", 4, 16, 512, norm_bands=[1, 3]),
            ModalityConfig("dem", 2, 32, 512, rescale_elev=True),
            ModalityConfig("s2", 10, 2, 10, norm_bands=[4, 4, 2], max_dates=16),
            ModalityConfig("s1_asc", 2, 2, 10, group="s1", norm_bands=[1, 1], max_dates=4),
            ModalityConfig("s1_des", 2, 2, 10, group="s1", norm_bands=[1, 1], max_dates=4)]
    cfg = MaestroConfig(size="tiny", modalities=mods, reference_modality="aerial",
                        grid_pos_enc=160, task="segmentation", num_classes=15, head_name="cosia")
    with torch.device("meta"):
        model = Maestro(cfg)
    total = sum(p.numel() for p in model.parameters())
    encoder = sum(p.numel() for p in model.encoder_parameters())
    assert round(total / 1e6, 1) == 22.3
    assert round(encoder / 1e6, 1) == 12.2
    assert model.state_dict()["heads.cosia.conv.weight"].shape == (3840, 192, 1, 1)


def test_padded_dates_do_not_change_any_output():
    """Padded dates are excluded as keys everywhere: their pixels, their dates and how
    many there are leave every task output unchanged."""
    for task in ("segmentation", "classification", "embedding"):
        model = small_model(task).eval()
        short = small_batch(model.config, dates={"s2": 2, "s1_asc": 2, "s1_desc": 1})
        long = small_batch(model.config, dates={"s2": 5, "s1_asc": 4, "s1_desc": 1}, seed=9)
        for m, t in (("s2", 2), ("s1_asc", 2), ("s1_desc", 1), ("dem", 1)):
            long[m][:, :t] = short[m]
            long[f"{m}_dates"][:, :t] = short[f"{m}_dates"]
            long[f"{m}_mask"][:, t:] = True
        with torch.no_grad():
            a, b = model(short), model(long)
        assert torch.allclose(a, b, atol=1e-5), task


def test_a_sample_with_every_date_padded_stays_finite():
    model = small_model("classification").eval()
    batch = small_batch(model.config)
    for m in ("s2", "s1_asc", "s1_desc", "dem"):
        batch[f"{m}_mask"][0] = True
    with torch.no_grad():
        out = model(batch)
    assert torch.isfinite(out).all()


def test_encoder_and_head_parameters_split():
    model = small_model("classification")
    enc = {id(p) for p in model.encoder_parameters()}
    head = {id(p) for p in model.head_parameters()}
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(names[i].startswith(("patch_embed", "encoder")) for i in enc)
    assert all(names[i].startswith("heads.") for i in head)
    assert enc and head and not enc & head


def test_bad_configs_are_refused_with_the_field_named():
    with pytest.raises(ValueError, match="embed_dim"):
        small_config(embed_dim=30)
    with pytest.raises(ValueError, match="norm_bands"):
        ModalityConfig("s2", bands=10, patch_px=2, tile_px=10, norm_bands=[4, 4])
    with pytest.raises(ValueError, match="tile_px"):
        ModalityConfig("s2", bands=10, patch_px=3, tile_px=10)
    with pytest.raises(ValueError, match="reference_modality"):
        small_config(reference_modality="aerial")
    model = small_model("segmentation")
    batch = small_batch(model.config)
    batch["s2"] = batch["s2"][:, :, :5]
    with pytest.raises(ValueError, match="s2"):
        model(batch)


def test_dem_height_rescaling():
    model = small_model(None)
    batch = small_batch(model.config)
    x = model.pixels(batch, "dem")
    assert torch.equal(x[:, :, 0], batch["dem"][:, :, 0])
    assert torch.allclose(x[:, :, 1], 30 * (batch["dem"][:, :, 0] - batch["dem"][:, :, 1]))


def test_treesatai_base_parameter_counts_match_the_official_figures():
    """facts 2.1: TreeSatAI base = 254.9M parameters in total, 213.9M encoder side."""
    mods = [ModalityConfig("aerial", 4, 20, 300, norm_bands=[1, 3]),
            ModalityConfig("s2", 10, 2, 6, norm_bands=[4, 4, 2], max_dates=16),
            ModalityConfig("s1_asc", 2, 2, 6, group="s1", max_dates=4),
            ModalityConfig("s1_des", 2, 2, 6, group="s1", max_dates=4)]
    cfg = MaestroConfig(size="medium", modalities=mods, reference_modality="aerial",
                        grid_pos_enc=96, task="classification", num_classes=15,
                        multilabel=True, head_name="treesat_mlc_thresh")
    with torch.device("meta"):
        model = Maestro(cfg)
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 1) == 254.9
    assert round(sum(p.numel() for p in model.encoder_parameters()) / 1e6, 1) == 213.9
