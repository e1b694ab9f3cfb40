"""maestro_plugin.inputs: matching layers to the model's modalities and the DATES format
(pure Python, with the real metadata of the tiny test model)."""
import datetime

import pytest

from maestro_plugin.inputs import (LayerInput, PluginInputError, apply_date_overrides,
                                   match_modalities, parse_date_overrides)
from tests.tiny_model import tiny_metadata

META = tiny_metadata("segmentation")
S2 = [LayerInput("/data/s2/a_20200501.tif", "a"), LayerInput("/data/s2/b.tif", "scene b")]
DEM = [LayerInput("/data/dem.tif", "dem")]


def test_match_returns_lower_case_modalities_in_order():
    assert match_modalities(META, {"S2": S2, "DEM": DEM, "AERIAL": []}) == {"s2": S2, "dem": DEM}


@pytest.mark.parametrize("given, match", [
    ({"S2": S2}, r"needs the modality DEM: set DEM: 1 layer, 1 band \(elevation\), 20 m"),
    ({"DEM": DEM}, r"needs the modality S2: set S2: 1 to 6 layers"),
    ({"S2": S2, "DEM": DEM, "S1_DESC": DEM}, r"S1_DESC was given but .* uses S2, DEM"),
    ({"S2": S2, "DEM": DEM + DEM}, r"DEM is a single-date modality"),
])
def test_match_refuses(given, match):
    with pytest.raises(PluginInputError, match=match):
        match_modalities(META, given)


def test_model_modality_without_a_parameter_is_named():
    from dataclasses import replace

    meta = replace(META, modalities=(replace(META.modalities[0], name="planet"),
                                     META.modalities[1]))
    with pytest.raises(PluginInputError, match="uses the modalities PLANET, for which this "
                                               "plugin has no input parameter"):
        match_modalities(meta, {"S2": S2, "DEM": DEM})


def test_parse_dates_format():
    got = parse_date_overrides(" S2:a_20200501.tif=2021-01-02;\nscene b = 2021-03-04 ;;"
                               r"C:\data\x.tif=2021-05-06")
    assert got == [("S2", "a_20200501.tif", datetime.date(2021, 1, 2)),
                   (None, "scene b", datetime.date(2021, 3, 4)),
                   (None, r"C:\data\x.tif", datetime.date(2021, 5, 6))]  # a drive, not a modality
    for bad, match in (("a.tif", "is not LAYER=YYYY-MM-DD"), ("a.tif=2021-13-01", "month"),
                       ("a.tif=01/02/2021", "is not a date"), ("S2:=2021-01-01", "names no layer")):
        with pytest.raises(PluginInputError, match=match):
            parse_date_overrides(bad)


def test_apply_dates_by_path_file_name_or_layer_name():
    inputs = {"s2": S2, "dem": DEM}
    out = apply_date_overrides(inputs, parse_date_overrides(
        "S2:a_20200501.tif=2021-01-02; scene b=2021-03-04; /data/dem.tif=2021-05-06"))
    assert [x.date for x in out["s2"]] == [datetime.date(2021, 1, 2), datetime.date(2021, 3, 4)]
    assert out["dem"][0].date == datetime.date(2021, 5, 6)
    assert inputs["s2"][0].date is None  # the caller's lists are not modified
    with pytest.raises(PluginInputError, match="matches no input layer of DEM"):
        apply_date_overrides(inputs, parse_date_overrides("DEM:a_20200501.tif=2021-01-02"))
