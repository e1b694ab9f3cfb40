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
                       ("a.tif=01/02/2021", "is not a date"), ("S2:=2021-01-01", "names no layer"),
                       ("a.tif=20211301", "month"), ("a.tif=2021071", "is not a date"),
                       ("a.tif=", "is not a date")):
        with pytest.raises(PluginInputError, match=match):
            parse_date_overrides(bad)


@pytest.mark.parametrize("text", ["20150712", "2015-07-12", " 20150712 "])
def test_dates_take_what_the_command_line_date_option_takes(text):
    """YYYYMMDD as well as YYYY-MM-DD: the engine's --date parser decides (same formats)."""
    import argparse

    from engine.cli_common import parse_date

    assert parse_date_overrides(f"a.tif={text}") == [(None, "a.tif", datetime.date(2015, 7, 12))]
    assert parse_date(f"s2=a.tif={text.strip()}")[2] == datetime.date(2015, 7, 12)
    with pytest.raises(argparse.ArgumentTypeError):
        parse_date("s2=a.tif=12.07.2015")
    with pytest.raises(PluginInputError, match="is not a date YYYY-MM-DD"):
        parse_date_overrides("a.tif=12.07.2015")


def test_apply_dates_by_path_file_name_or_layer_name():
    inputs = {"s2": S2, "dem": DEM}
    out = apply_date_overrides(inputs, parse_date_overrides(
        "S2:a_20200501.tif=2021-01-02; scene b=2021-03-04; /data/dem.tif=2021-05-06"))
    assert [x.date for x in out["s2"]] == [datetime.date(2021, 1, 2), datetime.date(2021, 3, 4)]
    assert out["dem"][0].date == datetime.date(2021, 5, 6)
    assert inputs["s2"][0].date is None  # the caller's lists are not modified
    with pytest.raises(PluginInputError, match="matches no input layer of DEM"):
        apply_date_overrides(inputs, parse_date_overrides("DEM:a_20200501.tif=2021-01-02"))


STACKS = [LayerInput(f"/d/dirs/{day}/stack.tif", "stack") for day in ("20150711", "20150731")]


@pytest.mark.parametrize("key", ["stack.tif", "S2:stack.tif", "stack", "S2:stack"])
def test_a_key_naming_several_layers_is_refused_naming_them(key):
    """The new-user trial: folders of files all named stack.tif (layer name 'stack')."""
    with pytest.raises(PluginInputError) as caught:
        apply_date_overrides({"s2": STACKS, "dem": DEM},
                             parse_date_overrides(f"{key}=2015-07-11"))
    message = str(caught.value)
    assert message.startswith(f"DATES entry '{key}=2015-07-11' matches 2 input layers (S2 "
                              "/d/dirs/20150711/stack.tif; S2 /d/dirs/20150731/stack.tif)")
    assert "full file path, e.g. '/d/dirs/20150711/stack.tif=2015-07-11'" in message
    assert "prefix the modality" not in message  # both in S2: the prefix would not help
    with pytest.raises(PluginInputError, match=r"matches 3 input layers .*; DEM /data/dem.tif "
                                               r"\(layer 'stack'\)\).*full file path.*, or "
                                               r"prefix the modality, e.g. 'S2:stack="):
        apply_date_overrides({"s2": STACKS, "dem": [LayerInput("/data/dem.tif", "stack")]},
                             parse_date_overrides("stack=2015-07-11"))


def test_full_paths_win_over_names_and_relative_paths_are_from_the_current_folder(
        tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    a, b = (str(tmp_path / "dirs" / day / "stack.tif") for day in ("20150711", "20150731"))
    renamed = [LayerInput(a, "stack"), LayerInput(b, a)]  # b's layer name is a's path
    out = apply_date_overrides({"s2": renamed}, parse_date_overrides(
        f"{a}=20150711; dirs/20150731/../20150731/stack.tif=2015-07-31"))
    assert [x.date for x in out["s2"]] == [datetime.date(2015, 7, 11), datetime.date(2015, 7, 31)]


def test_one_file_twice_in_a_modality_is_one_layer_but_in_two_modalities_is_ambiguous():
    twice = {"s2": [STACKS[0], STACKS[0]], "dem": DEM}
    out = apply_date_overrides(twice, parse_date_overrides("stack.tif=2015-07-11"))
    assert [x.date for x in out["s2"]] == [datetime.date(2015, 7, 11)] * 2
    both = {"s2": [LayerInput("/data/x.tif", "x")], "dem": [LayerInput("/data/x.tif", "x")]}
    with pytest.raises(PluginInputError, match=r"matches 2 input layers \(S2 /data/x.tif; DEM "
                                               r"/data/x.tif\): which one it dates is "
                                               r"ambiguous; prefix the modality, e.g. "
                                               r"'S2:/data/x.tif=2015-07-11'$"):
        apply_date_overrides(both, parse_date_overrides("/data/x.tif=2015-07-11"))
    out = apply_date_overrides(both, parse_date_overrides("DEM:x.tif=2015-07-11"))
    assert out["dem"][0].date == datetime.date(2015, 7, 11) and out["s2"][0].date is None


def test_two_entries_giving_one_layer_two_dates_are_refused():
    with pytest.raises(PluginInputError, match=r"DATES entries 'stack=2015-07-11' and "
                                               r"'/d/dirs/20150711/stack.tif=2015-07-12' give "
                                               r"the layer /d/dirs/20150711/stack.tif two dates"):
        apply_date_overrides({"s2": STACKS[:1]}, parse_date_overrides(
            "stack=2015-07-11; /d/dirs/20150711/stack.tif=2015-07-12"))
    same = apply_date_overrides({"s2": STACKS[:1]}, parse_date_overrides(
        "stack=2015-07-11; /d/dirs/20150711/stack.tif=20150711"))
    assert same["s2"][0].date == datetime.date(2015, 7, 11)
