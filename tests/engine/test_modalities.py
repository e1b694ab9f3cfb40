"""One description per modality (engine/modalities.py), read by the plugin, the training
recipes and the contract; the training datasets that use MAESTRO's default scaling agree."""
from __future__ import annotations

import os

import pytest

from engine.contract import read_model_metadata
from engine.modalities import MODALITIES, S2_BANDS, describe
from tests.conftest import ROOT

BUNDLED = os.path.join(ROOT, "resources", "models", "maestro-tiny-slovenia-lulc.onnx")


def test_the_plugin_has_one_parameter_per_described_modality():
    from maestro_plugin.inputs import MODALITY_PARAMS, MODALITY_TITLES

    assert MODALITY_PARAMS == ("AERIAL", "DEM", "S2", "S1_ASC", "S1_DESC", "S1", "SPOT")
    assert MODALITY_TITLES["S1_DESC"] == "Sentinel-1 descending time series"
    assert set(MODALITY_TITLES) == set(MODALITY_PARAMS)


def test_a_model_modality_links_to_its_description():
    meta = read_model_metadata(BUNDLED)
    s2 = meta.modality("s2").description
    assert s2 is MODALITIES["s2"] and s2.quantity == meta.modality("s2").radiometry.quantity
    # the bundled model's scaling is MAESTRO's for Sentinel-2
    assert s2.scaling(len(meta.modality("s2").bands))["std"] == list(meta.modality("s2").scaling.std)
    assert describe("S1_ASC").group == describe("s1_desc").group == "s1"
    assert describe("hyperspectral") is None


@pytest.mark.parametrize("dataset", ["flair", "treesatai"])
def test_datasets_with_maestros_scaling_agree_with_the_descriptions(dataset):
    pytest.importorskip("torch")
    import importlib

    table = importlib.import_module(f"training.datasets.{dataset}").MODALITIES
    for name, info in table.items():
        d = MODALITIES[name]
        assert (info.scaling.divisor, info.scaling.log) == (d.divisor, d.log), name
        assert (info.group or info.name) == d.group, name
        assert sorted(info.bands) == sorted(d.bands), name       # TreeSatAI orders aerial NIR,G,B,R
    assert MODALITIES["s2"].bands == S2_BANDS == table["s2"].bands


def test_recipe_divisors_and_radiometry_come_from_the_descriptions():
    pytest.importorskip("torch")
    from training.recipes.pretrain_data import DEM_DIVISOR, S2_DIVISOR

    assert (S2_DIVISOR, DEM_DIVISOR) == (5000.0, 1000.0)
    rad = MODALITIES["dem"].radiometry([(120.5, 1800)])
    assert rad == {"product": "digital elevation model", "quantity": "elevation", "units": "m",
                   "value_range": [[120.5, 1800.0]]}
