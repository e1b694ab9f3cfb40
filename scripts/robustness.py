"""Bad and unusual inputs, tried as a user would: the "Bad inputs" table of docs/robustness.md.

    python scripts/robustness.py            # run everything, print the table and the totals
    python scripts/robustness.py --write    # also rewrite the section of docs/robustness.md
    python scripts/robustness.py --only cli # only the kinds whose name contains "cli"

Every situation goes through a real interface in a child process: ``python -m engine
run|info|batch``, ``qgis_process run maestro:segment|model_info|batch_segment`` (through
``scripts/with-env.sh``) and ``python -m training import-official``. Its inputs are built from
``resources/sample`` (the bundled Slovenia patch and model) in a scratch folder; the sample
itself is never written to.

A situation is *handled* when the command either refuses it with a clear error naming the
problem (the expected words appear in its message, which is one line, without a Python
traceback) or gives a correct result, and in both cases leaves no partial output (no file
under the output name after a refusal, no temporary file after any run, every input file
unchanged). Anything else counts as not handled, including a failure of this script's own
set-up for that situation (reported as such).
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(ROOT, "resources", "sample")
MODEL = os.path.join(ROOT, "resources", "models", "maestro-tiny-slovenia-lulc.onnx")
DOC = os.path.join(ROOT, "docs", "robustness.md")
BEGIN, END = "<!-- BEGIN bad-inputs (scripts/robustness.py) -->", "<!-- END bad-inputs -->"
S2_NAMES = ["S2_L1C_20150711.tif", "S2_L1C_20150731.tif", "S2_L1C_20150820.tif",
            "S2_L1C_20150830.tif", "S2_L1C_20150909.tif"]
TEMP_RE = re.compile(r"\.(part|cog)\.tif|\.ovr\.tmp$|\.tmp(\.vrt|\.tif)?$")


# ----------------------------------------------------------------------------- running
@dataclass
class Proc:
    rc: int
    out: str
    err: str
    seconds: float

    @property
    def text(self) -> str:
        return self.out + "\n" + self.err


def _env() -> dict:
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    env.pop("MAESTRO_DEBUG", None)
    return env


def engine(*args, timeout=300) -> Proc:
    return _run([sys.executable, "-m", "engine", *map(str, args)], timeout)


def training(*args, timeout=300) -> Proc:
    return _run([sys.executable, "-m", "training", *map(str, args)], timeout)


def qgis(alg: str, params: list[tuple[str, str]], timeout=600) -> Proc:
    args = [f"{k}={v}" for k, v in params]
    return _run(["bash", os.path.join(ROOT, "scripts", "with-env.sh"), "qgis_process", "run",
                 f"maestro:{alg}", "--", *args], timeout)


def _run(cmd, timeout) -> Proc:
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True,
                           timeout=timeout)
        return Proc(p.returncode, p.stdout, p.stderr, time.perf_counter() - t0)
    except subprocess.TimeoutExpired as exc:
        return Proc(-9, exc.stdout or "", f"timed out after {timeout} s", time.perf_counter() - t0)


# ----------------------------------------------------------------------------- judging
def error_line(proc: Proc, interface: str) -> str:
    """The message a user reads: the engine CLI's 'error:' line, argparse's error line, or
    qgis_process's 'ERROR:' line."""
    if interface.startswith("qgis"):
        lines = [x for x in proc.text.splitlines() if x.startswith("ERROR:")]
        return lines[-1][len("ERROR:"):].strip() if lines else ""
    if interface.startswith("engine batch"):
        events = [json.loads(x) for x in proc.out.splitlines() if x.startswith('{"event": "error"')]
        if events:
            return events[-1]["message"]
    lines = [x for x in proc.err.strip().splitlines() if x.strip()]
    return lines[-1] if lines else ""


def refused(proc: Proc, interface: str, *needles: str, logged: bool = False) -> tuple[bool, str]:
    """Handled when the command failed with one clear line containing every needle
    (case-insensitive; ``"a|b"`` accepts either word): no traceback, no other line on stderr
    (argparse's usage line excepted; ``logged``: the run's log lines were asked for), not an
    "unexpected" error (the interfaces' wording for a bug)."""
    line = error_line(proc, interface)
    shown = line if line else (proc.err.strip().splitlines() or ["(no message)"])[-1]
    if proc.rc == 0:
        return False, f"exit 0 (not refused); {shown[:160]}"
    if "Traceback" in proc.text:
        return False, f"exit {proc.rc}, a Python traceback; last line: {shown[:160]}"
    if not line:
        return False, f"exit {proc.rc}, no error line; last: {shown[:160]}"
    if interface in ("engine run", "engine info", "training import-official") and not logged:
        others = [x for x in proc.err.strip().splitlines()
                  if x.strip() and x != line and not x.startswith("usage:")
                  and not x.startswith(" ")]
        if interface == "training import-official":  # torch/lightning import warnings
            others = [x for x in others if x.startswith(("ERROR", "error"))]
        if others:
            return False, f"exit {proc.rc}, other stderr lines ({others[0][:80]}): {line[:120]}"
    if "unexpected" in line.lower():
        return False, f"exit {proc.rc}, an unexpected error (a bug): {line[:160]}"
    missing = [n for n in needles
               if not any(alt.lower() in line.lower() for alt in n.split("|"))]
    if missing:
        return False, f"exit {proc.rc}, message lacks {missing}: {line[:160]}"
    return True, f"exit {proc.rc}: {line[:200]}"


def map_ok(path: str, shape=(101, 100)) -> tuple[bool, str]:
    """A finished class map: readable, the expected shape, classes within the model's."""
    import numpy as np
    import rasterio

    if not os.path.exists(path):
        return False, "no output file"
    with rasterio.open(path) as src:
        data = src.read(1)
    values = sorted(int(v) for v in np.unique(data))
    if data.shape != tuple(shape) or not set(values) <= {0, 1, 2, 3, 255} or values == [255]:
        return False, f"map {data.shape} classes {values}"
    return True, f"map {data.shape[1]}x{data.shape[0]} px, classes {values}"


def leftovers(folder: str) -> list[str]:
    """Temporary files (writer, COG, overviews, manifest/mosaic temporaries) under folder."""
    found = []
    for base, _, names in os.walk(folder):
        found += [os.path.join(base, n) for n in names if TEMP_RE.search(n)]
    return found


def digest_tree(folder: str, ignore_aux: bool = False) -> dict[str, str]:
    """relative path -> sha256 of every file under folder. ``ignore_aux`` leaves out
    ``.aux.xml`` sidecars: QGIS writes statistics beside the input rasters it loads (GDAL
    PAM), which changes no raster byte."""
    out = {}
    for base, _, names in os.walk(folder):
        for n in names:
            if ignore_aux and n.endswith(".aux.xml"):
                continue
            p = os.path.join(base, n)
            with open(p, "rb") as f:
                out[os.path.relpath(p, folder)] = hashlib.sha256(f.read()).hexdigest()
    return out


# ----------------------------------------------------------------------------- inputs
class Inputs:
    """Everything the situations need, built once from resources/sample under ``root``."""

    def __init__(self, root: str):
        import numpy as np
        import rasterio

        self.root = root
        d = self.dir("inputs")
        self.s2 = [self.copy(os.path.join(SAMPLE, n), d) for n in S2_NAMES[:2]]
        self.s2_all = [self.copy(os.path.join(SAMPLE, n), d) for n in S2_NAMES[2:]]
        self.s2_all = self.s2 + self.s2_all
        self.dem = self.copy(os.path.join(SAMPLE, "dem.tif"), d)
        with rasterio.open(self.s2[0]) as src:
            self.profile, self.data = src.profile, src.read()
            self.desc, self.tags = src.descriptions, src.tags()
            self.bounds, self.transform = src.bounds, src.transform
        with rasterio.open(self.dem) as src:
            self.dem_profile, self.dem_data = src.profile, src.read()
        bad = self.dir("bad_inputs")
        # a truncated GeoTIFF: header intact, strips missing
        self.truncated = self.write(os.path.join(bad, "S2_20150711_truncated.tif"), self.data,
                                    compress=None, tiled=False)
        os.truncate(self.truncated, os.path.getsize(self.truncated) // 2)
        # a VRT whose source file is gone
        from osgeo import gdal

        src_copy = self.copy(self.s2[0], self.dir("gone"), "S2_20150711_src.tif")
        self.vrt_gone = os.path.join(bad, "S2_20150711_gone.vrt")
        gdal.BuildVRT(self.vrt_gone, [src_copy]).FlushCache()
        os.remove(src_copy)
        self.text_tif = os.path.join(bad, "S2_20150711_text.tif")
        with open(self.text_tif, "w") as f:
            f.write("this is not a raster\n")
        self.nine_bands = self.write(os.path.join(bad, "S2_20150711_9bands.tif"), self.data[:9],
                                     desc=self.desc[:9])
        self.no_crs = self.write(os.path.join(bad, "S2_20150711_nocrs.tif"), self.data, crs=None)
        self.all_nodata = self.write(os.path.join(bad, "S2_20150711_empty.tif"),
                                     np.zeros_like(self.data))
        self.undated = [self.write(os.path.join(bad, f"scene_{c}.tif"), self.data, tags={})
                        for c in "ab"]
        # two different scenes (the sample's 11 and 31 July) both named 11 July
        import rasterio as _rio

        with _rio.open(self.s2[1]) as src:
            second = src.read()
        self.dup_dates = [self.write(os.path.join(self.dir("dup"), f"S2_20150711_{c}.tif"),
                                     data, tags={}) for c, data in zip("ab", (self.data, second))]
        self.year_1900 = self.write(os.path.join(bad, "S2_19000711.tif"), self.data, tags={})
        self.future = self.write(os.path.join(bad, "S2_20990711.tif"), self.data, tags={})
        self.shuffled = self.write(os.path.join(bad, "S2_20150711_shuffled.tif"),
                                   self.data[::-1], desc=tuple(reversed(self.desc)))
        self.unnamed_bands = self.write(os.path.join(bad, "S2_20150711_nonames.tif"), self.data,
                                        desc=(None,) * len(self.desc))
        self.float_nan = self.write(os.path.join(bad, "S2_20150711_float.tif"),
                                    np.where(self.data == 0, np.nan, self.data).astype("float32"),
                                    dtype="float32", nodata=float("nan"))
        self.reflectance01 = self.write(os.path.join(bad, "S2_20150711_refl01.tif"),
                                        (self.data / 10000.0).astype("float32"),
                                        dtype="float32", nodata=0)
        self.tiny = self.write(os.path.join(bad, "S2_20150711_1px.tif"), self.data[:, :1, :1],
                               width=1, height=1)
        from affine import Affine

        t = self.transform
        self.south_up = self.write(os.path.join(bad, "S2_20150711_southup.tif"),
                                   self.data[:, ::-1, :],
                                   transform=Affine(t.a, 0, t.c, 0, -t.e, t.f - 101 * -t.e))
        # S2 and DEM both on the same rotated grid: the model sees the sample's pixels
        rot = Affine(t.a, 2.0, t.c, 2.0, t.e, t.f)
        self.rotated = self.write(os.path.join(bad, "S2_20150711_rotated.tif"), self.data,
                                  transform=rot)
        dt = self.dem_profile["transform"]
        self.dem_far = self.write(os.path.join(bad, "dem_far.tif"), self.dem_data,
                                  profile=self.dem_profile,
                                  transform=Affine(dt.a, 0, dt.c + 100000, 0, dt.e, dt.f))
        self.rotated_dem = self.write(os.path.join(bad, "dem_rotated.tif"), self.dem_data,
                                      profile=self.dem_profile, transform=rot)
        self.dem_3857 = os.path.join(bad, "dem_3857.tif")
        gdal.Warp(self.dem_3857, self.dem, dstSRS="EPSG:3857", xRes=20, yRes=20).FlushCache()
        # a larger input (4 x 4 copies of the patch) for interrupting runs mid-way
        big = self.dir("big")
        self.big_s2 = self.write(os.path.join(big, "S2_20150711.tif"),
                                 np.tile(self.data, (1, 4, 4)), width=400, height=404)
        self.big_dem = self.write(os.path.join(big, "dem.tif"), np.tile(self.dem_data, (1, 4, 4)),
                                  profile=self.dem_profile, width=400, height=404)
        self.models = Models(self.dir("models"))

    def dir(self, name: str) -> str:
        path = os.path.join(self.root, name)
        os.makedirs(path, exist_ok=True)
        return path

    @staticmethod
    def copy(src: str, folder: str, name: str | None = None) -> str:
        dst = os.path.join(folder, name or os.path.basename(src))
        shutil.copy2(src, dst)
        return dst

    def write(self, path, data, profile=None, desc=None, tags=None, **changes) -> str:
        import rasterio

        prof = dict(profile or self.profile)
        prof.update(count=data.shape[0], **changes)
        prof.pop("blockxsize", None), prof.pop("blockysize", None)
        if prof.get("tiled") is None:
            prof["tiled"] = False
        with rasterio.open(path, "w", **prof) as dst:
            dst.write(data.astype(prof.get("dtype", data.dtype)))
            if desc is not None or profile is None:
                d = desc if desc is not None else self.desc
                for i, name in enumerate(d[:data.shape[0]], start=1):
                    if name:
                        dst.set_band_description(i, name)
            t = self.tags if tags is None else tags
            if t:
                dst.update_tags(**t)
        return path

    def case_dir(self, name: str) -> str:
        path = os.path.join(self.root, "cases", re.sub(r"[^A-Za-z0-9_.-]+", "_", name))
        os.makedirs(path, exist_ok=True)
        return path


class Models:
    """The bundled model and variants with edited metadata (the ``maestro`` JSON)."""

    def __init__(self, folder: str):
        import onnx

        self.folder = folder
        self.good = Inputs.copy(MODEL, folder)
        model = onnx.load(MODEL)
        meta = json.loads(next(p.value for p in model.metadata_props if p.key == "maestro"))

        def variant(name: str, edit: Callable[[dict], object] | None = None,
                    raw: str | None = None) -> str:
            m = onnx.load(MODEL)
            doc = json.loads(json.dumps(meta))
            text = raw
            if edit is not None:
                result = edit(doc)
                text = result if isinstance(result, str) else json.dumps(doc)
            for p in m.metadata_props:
                if p.key == "maestro":
                    p.value = text
            path = os.path.join(folder, f"{name}.onnx")
            onnx.save(m, path)
            return path

        def set_mod(field, value, index=0):
            def edit(doc):
                doc["modalities"][index][field] = value
            return edit

        def set_all(field, value):
            def edit(doc):
                for mod in doc["modalities"]:
                    mod[field] = value
            return edit

        def set_scaling(field, value):
            def edit(doc):
                doc["modalities"][0]["scaling"][field] = value
            return edit

        self.tile16 = variant("tile16", set_all("tile_px", 16))
        self.classes3 = variant("classes3", lambda d: d.update(classes=d["classes"][:3]))
        self.std_nan = variant("std_nan", set_scaling("std", [float("nan")] * 10))
        self.std_zero = variant("std_zero", set_scaling("std", [0.0] * 10))
        self.gsd_nan = variant("gsd_nan", set_mod("gsd_m", float("nan")))
        self.nested = variant("nested", raw="[" * 100000 + "]" * 100000)
        self.not_json = variant("not_json", raw="{this is not json")
        self.task_unknown = variant("task_unknown", lambda d: d.update(task="detection"))
        self.bands_short = variant("bands_short", set_mod("bands", ["B02", "B03"]))
        self.huge_tile = variant("huge_tile", set_all("tile_px", 10 ** 9))
        self.no_meta = os.path.join(folder, "no_metadata.onnx")
        m = onnx.load(MODEL)
        del m.metadata_props[:]
        onnx.save(m, self.no_meta)
        self.truncated = os.path.join(folder, "truncated.onnx")
        with open(MODEL, "rb") as f:
            data = f.read()
        with open(self.truncated, "wb") as f:
            f.write(data[: len(data) // 3])
        self.text = os.path.join(folder, "text.onnx")
        with open(self.text, "w") as f:
            f.write("not a model\n")
        # a real classification model (our training code's tiny model, seeded weights)
        self.classification = os.path.join(folder, "tiny-classification.onnx")
        subprocess.run([sys.executable, "-c", "import sys; from tests.tiny_model import export_tiny;"
                        " export_tiny(sys.argv[1], task='classification')", self.classification],
                       cwd=ROOT, env=_env(), check=True, capture_output=True)


# ----------------------------------------------------------------------------- situations
@dataclass
class Situation:
    kind: str
    name: str
    interface: str
    expected: str
    check: Callable[[], tuple[bool, str]]
    owner: str = "safety"
    handled: bool = False
    observed: str = ""
    seconds: float = 0.0


@dataclass
class Suite:
    inp: Inputs
    items: list[Situation] = field(default_factory=list)

    def add(self, kind, name, interface, expected, owner="safety"):
        def deco(fn):
            self.items.append(Situation(kind, name, interface, expected, fn, owner))
            return fn
        return deco


def run_args(inp: Inputs, s2=None, dem=None, model=None) -> list[str]:
    args = ["run", "--model", model or inp.models.good, "--quiet", "--threads", "1"]
    for p in (s2 if s2 is not None else inp.s2):
        args += ["--input", f"s2={p}"]
    for p in ([dem] if isinstance(dem, str) else (dem if dem is not None else [inp.dem])):
        args += ["--input", f"dem={p}"]
    return args


def refusal_case(inp: Inputs, name: str, args: list, needles: tuple, interface="engine run",
                 out_name="map.tif", watch=None):
    """Run ``python -m engine <args> --output <case>/<out_name>`` expecting a refusal;
    handled = clear error, nothing written in the case folder, inputs unchanged."""
    folder = inp.case_dir(name)
    out = os.path.join(folder, out_name) if out_name is not None else None
    watched = [folder] + list(watch or [])
    before = {w: digest_tree(w) for w in watched}
    proc = engine(*args, *(["--output", out] if out is not None else []))
    ok, observed = refused(proc, interface, *needles)
    after = {w: digest_tree(w) for w in watched}
    if after != before:
        changed = sorted(set(after[folder]) ^ set(before[folder])) or ["an input changed"]
        return False, f"{observed}; files changed: {changed[:3]}"
    return ok, observed


def result_case(inp: Inputs, name: str, args: list, shape=(101, 100), interface="engine run"):
    """Expect a correct map and no temporaries."""
    folder = inp.case_dir(name)
    out = os.path.join(folder, "map.tif")
    proc = engine(*args, "--output", out)
    if proc.rc != 0:
        ok, observed = refused(proc, interface)
        return ok and False, observed if not ok else f"refused: {observed}"
    ok, observed = map_ok(out, shape)
    left = leftovers(folder)
    if left:
        return False, f"{observed}; temporaries left: {left[:2]}"
    return ok, f"exit 0, {observed}"


def reference_map(inp: Inputs):
    """The map of the sample's first S2 date + DEM, as the sample is (computed once)."""
    import rasterio

    if getattr(inp, "_reference", None) is None:
        out = os.path.join(inp.case_dir("reference"), "map.tif")
        proc = engine(*run_args(inp, [inp.s2[0]]), "--output", out)
        if proc.rc != 0:
            raise RuntimeError(f"the reference run failed: {proc.err.strip()[-200:]}")
        with rasterio.open(out) as src:
            inp._reference = src.read(1)
    return inp._reference


def result_or_refusal(inp, name, args, needles, shape=(101, 100), same_as_reference=False,
                      warning=False):
    """Either a correct map, or a clear refusal naming the problem (both fine).

    ``same_as_reference``: the input holds the same data as the sample's first date in
    another form, so a correct map equals the reference map pixel for pixel.
    ``warning``: a map is only fine with a log line naming the problem (the needles)."""
    import rasterio

    folder = inp.case_dir(name)
    out = os.path.join(folder, "map.tif")
    if warning:
        args = [a for a in args if a != "--quiet"]
    proc = engine(*args, "--output", out)
    if proc.rc == 0:
        ok, observed = map_ok(out, shape)
        ok = ok and not leftovers(folder)
        if same_as_reference and ok:
            with rasterio.open(out) as src:
                diff = int((src.read(1) != reference_map(inp)).sum())
            ok, observed = diff == 0, f"{observed}, {diff} px differ from the sample's map"
        if warning:
            said = [x for x in proc.err.splitlines()
                    if all(n.lower() in x.lower() for n in needles)
                    and any(w in x.lower() for w in ("warning", "duplicate", "outside",
                                                      "implausible", "unusual"))]
            ok = ok and bool(said)
            observed += f"; warned: {said[0][:100] if said else 'no'}"
        return ok, f"exit 0, {observed}"
    ok, observed = refused(proc, "engine run", *needles, logged=warning)
    return ok and not os.listdir(folder), observed


def build(inp: Inputs) -> Suite:
    s = Suite(inp)
    m = inp.models
    sample_digest = digest_tree(SAMPLE, ignore_aux=True)
    s.sample_digest = sample_digest

    # ------------------------------------------------------------ 1. data loss (outputs)
    K = "1. Output would destroy an input or another output"

    def copied_inputs(name):
        folder = inp.case_dir(name)
        s2 = [Inputs.copy(p, folder) for p in inp.s2]
        return folder, s2

    @s.add(K, "--output is an S2 input (same path)", "engine run", "refused, input unchanged")
    def _():
        folder, s2 = copied_inputs("out_is_input")
        return _refuse_out(inp, "out_is_input", s2, s2[0], folder, ("is the s2 input",))

    @s.add(K, "--output is an S2 input through a symbolic link", "engine run", "refused")
    def _():
        folder, s2 = copied_inputs("out_symlink")
        link = os.path.join(folder, "link.tif")
        os.symlink(s2[0], link)
        return _refuse_out(inp, "out_symlink", s2, link, folder, ("is the s2 input",))

    @s.add(K, "--output is an S2 input through a hard link", "engine run", "refused")
    def _():
        folder, s2 = copied_inputs("out_hardlink")
        link = os.path.join(folder, "hard.tif")
        os.link(s2[0], link)
        return _refuse_out(inp, "out_hardlink", s2, link, folder, ("is the s2 input",))

    @s.add(K, "--output is an S2 input spelled with '..'", "engine run", "refused")
    def _():
        folder, s2 = copied_inputs("out_dotdot")
        os.makedirs(os.path.join(folder, "sub"), exist_ok=True)
        alias = os.path.join(folder, "sub", "..", os.path.basename(s2[0]))
        return _refuse_out(inp, "out_dotdot", s2, alias, folder, ("is the s2 input",))

    @s.add(K, "--output is the DEM input", "engine run", "refused")
    def _():
        folder, s2 = copied_inputs("out_is_dem")
        dem = Inputs.copy(inp.dem, folder)
        return _refuse_out(inp, "out_is_dem", s2, dem, folder, ("is the dem input",), dem=dem)

    @s.add(K, "--output is a source file of a VRT input", "engine run", "refused")
    def _():
        from osgeo import gdal

        folder, s2 = copied_inputs("out_vrt_source")
        vrt = os.path.join(folder, "S2_20150711_mosaic.vrt")
        gdal.BuildVRT(vrt, [s2[0]]).FlushCache()
        return _refuse_out(inp, "out_vrt_source", [vrt, s2[1]], s2[0], folder,
                           ("a file it reads",))

    @s.add(K, "--confidence is the same file as --output", "engine run", "refused, nothing written")
    def _():
        folder = inp.case_dir("conf_is_out")
        return refusal_case(inp, "conf_is_out", run_args(inp) + [
            "--confidence", os.path.join(folder, "sub", "..", "map.tif")], ("same file",))

    @s.add(K, "--output is the model file", "engine run", "refused")
    def _():
        folder = inp.case_dir("out_is_model")
        model = Inputs.copy(inp.models.good, folder)
        return refusal_case(inp, "out_is_model", run_args(inp, model=model) + ["--output", model],
                            ("--output",), out_name=None)

    @s.add(K, "--output differs from an input only in case (case-sensitive file system)",
           "engine run", "a new map; the input untouched")
    def _():
        folder, s2 = copied_inputs("out_case")
        out = os.path.join(folder, os.path.basename(s2[0]).replace("S2_L1C", "s2_l1c"))
        before = digest_tree(folder)
        proc = engine(*run_args(inp, s2), "--output", out)
        if proc.rc != 0:
            return refused(proc, "engine run", "same")
        ok, observed = map_ok(out)
        unchanged = all(digest_tree(folder).get(k) == v for k, v in before.items())
        return ok and unchanged, f"exit 0, {observed}, inputs unchanged: {unchanged}"

    @s.add(K, "OUTPUT is an S2 input", "qgis segment", "refused, input unchanged")
    def _():
        folder, s2 = copied_inputs("qgis_out_is_input")
        before = digest_tree(folder, ignore_aux=True)
        proc = qgis("segment", [("S2", s2[0]), ("S2", s2[1]), ("DEM", inp.dem),
                                ("OUTPUT", s2[0])])
        ok, observed = refused(proc, "qgis segment", "is the s2 input")
        return ok and digest_tree(folder, ignore_aux=True) == before, observed

    @s.add(K, "CONFIDENCE is the OUTPUT file", "qgis segment", "refused, nothing written")
    def _():
        folder = inp.case_dir("qgis_conf_is_out")
        proc = qgis("segment", [("S2", inp.s2[0]), ("DEM", inp.dem),
                                ("OUTPUT", os.path.join(folder, "m.tif")),
                                ("CONFIDENCE", os.path.join(folder, "m.tif"))])
        ok, observed = refused(proc, "qgis segment", "same file")
        return ok and not os.listdir(folder), observed

    @s.add(K, "an input lies in the output folder's blocks/", "engine batch",
           "refused (a restart would delete it)")
    def _():
        folder = inp.case_dir("batch_input_in_blocks")
        os.makedirs(os.path.join(folder, "blocks"), exist_ok=True)
        s2 = Inputs.copy(inp.s2[0], os.path.join(folder, "blocks"))
        before = digest_tree(folder)
        proc = engine("batch", "--model", m.good, "--input", f"s2={s2}", "--input",
                      f"dem={inp.dem}", "--output", folder, "--workers", "1")
        ok, observed = refused(proc, "engine batch", "inside the output folder")
        return ok and digest_tree(folder) == before, observed

    # ------------------------------------------------------------ 2. command line
    K = "2. Command-line arguments"
    for name, extra, needles in [
        ("--output x.png (not a GeoTIFF name)", ["--output", "{dir}/x.png"], ("not a GeoTIFF",)),
        ("--output '' (empty)", ["--output", ""], ("empty",)),
        ("--output is an existing folder", ["--output", "{dir}"], ("folder",)),
        ("--output in a folder that does not exist", ["--output", "{dir}/missing/x.tif"],
         ("does not exist",)),
        ("--confidence x.jpg", ["--output", "{dir}/m.tif", "--confidence", "{dir}/c.jpg"],
         ("not a GeoTIFF",)),
        ("--bounds inverted (xmin > xmax)", ["--output", "{dir}/m.tif", "--bounds", "466000",
                                             "5079300", "465300", "5080200"], ("XMIN",)),
        ("--bounds with NaN", ["--output", "{dir}/m.tif", "--bounds", "nan", "5079300",
                               "465300", "5080200"], ("not a finite number",)),
        ("--bounds with inf", ["--output", "{dir}/m.tif", "--bounds", "465300", "5079300",
                               "inf", "5080200"], ("not a finite number",)),
        ("--bounds outside the raster", ["--output", "{dir}/m.tif", "--bounds", "0", "0", "10",
                                         "10"], ("do not overlap",)),
        ("--overlap 90", ["--output", "{dir}/m.tif", "--overlap", "90"], ("--overlap",)),
        ("--batch-size 0", ["--output", "{dir}/m.tif", "--batch-size", "0"], ("--batch-size",)),
        ("--threads 0", ["--output", "{dir}/m.tif", "--threads", "0"], ("--threads",)),
        ("--input without '='", ["--output", "{dir}/m.tif", "--input", "s2"],
         ("--input must be",)),
        ("--date 2015-13-45", ["--output", "{dir}/m.tif", "--date", "s2={s2}=2015-13-45"],
         ("not YYYY-MM-DD",)),
        ("--date for a file not given with --input", ["--output", "{dir}/m.tif", "--date",
                                                      "s2=/nowhere.tif=2015-07-11"],
         ("not given with --input",)),
        ("--input of a modality the model does not take", ["--output", "{dir}/m.tif",
                                                           "--input", "s1={s2}"], ("s1",)),
    ]:
        def make(name=name, extra=extra, needles=needles):
            def check():
                folder = inp.case_dir("cli_" + name)
                args = [a.format(dir=folder, s2=inp.s2[0]) for a in extra]
                # the engine writes nothing, not even in the parent folder (.aux.xml)
                parent = os.path.dirname(folder)
                before_parent = sorted(os.listdir(parent))
                ok, observed = refusal_case(inp, "cli_" + name, run_args(inp) + args, needles,
                                            out_name=None)
                if sorted(os.listdir(parent)) != before_parent:
                    return False, observed + "; a file appeared in the parent folder"
                return ok, observed
            return check
        s.add(K, name, "engine run", "refused up front, nothing written")(make())

    @s.add(K, "the DEM modality missing", "engine run", "refused naming dem")
    def _():
        return refusal_case(inp, "missing_dem", run_args(inp, dem=[]), ("dem",))

    @s.add(K, "--output already exists (a previous map)", "engine run",
           "replaced whole, no temporaries")
    def _():
        folder = inp.case_dir("out_exists")
        with open(os.path.join(folder, "map.tif"), "w") as f:
            f.write("old")
        return result_case(inp, "out_exists", run_args(inp))

    # ------------------------------------------------------------ 3. model files
    K = "3. Model file and metadata"
    for name, path, needles, owner in [
        ("model file missing", "/nonexistent/model.onnx", ("not found",), "safety"),
        ("model is a text file", m.text, ("onnx",), "safety"),
        ("model truncated", m.truncated, ("model",), "safety"),
        ("ONNX without MAESTRO metadata", m.no_meta, ("metadata",), "safety"),
        ("metadata is not JSON", m.not_json, ("json",), "safety"),
        ("metadata JSON nested 100,000 deep", m.nested, ("metadata",), "model-mask"),
        ("metadata task unknown", m.task_unknown, ("task",), "safety"),
        ("metadata tile_px 16, graph fixed at 32", m.tile16, ("tile_px",), "model-mask"),
        ("metadata lists 3 classes, graph outputs 4", m.classes3, ("classes",), "model-mask"),
        ("metadata std = NaN", m.std_nan, ("std",), "model-mask"),
        ("metadata std = 0", m.std_zero, ("std",), "model-mask"),
        ("metadata gsd_m = NaN", m.gsd_nan, ("gsd_m",), "model-mask"),
        ("metadata lists 2 bands, graph takes 10", m.bands_short, ("bands",), "model-mask"),
        ("metadata tile_px 10^9", m.huge_tile, ("tile_px",), "model-mask"),
    ]:
        def make_info(path=path, needles=needles):
            def check():
                proc = engine("info", path)
                return refused(proc, "engine info", *needles)
            return check
        s.add(K, name, "engine info", "refused naming the field", owner)(make_info())

    @s.add(K, "metadata std = NaN: a run", "engine run", "refused (never an all-class-0 map)",
           "model-mask")
    def _():
        return refusal_case(inp, "run_std_nan", run_args(inp, model=m.std_nan), ("std",))

    @s.add(K, "metadata lists 3 classes: a run", "engine run", "refused naming classes",
           "model-mask")
    def _():
        return refusal_case(inp, "run_classes3", run_args(inp, model=m.classes3), ("classes",))

    @s.add(K, "model file missing", "qgis model_info", "refused")
    def _():
        return refused(qgis("model_info", [("MODEL", "/nonexistent/model.onnx")]),
                       "qgis model_info", "not found")

    @s.add(K, "model is a text file", "qgis model_info", "refused")
    def _():
        return refused(qgis("model_info", [("MODEL", m.text)]), "qgis model_info", "onnx")

    @s.add(K, "metadata nested 100,000 deep", "qgis model_info", "refused", "model-mask")
    def _():
        return refused(qgis("model_info", [("MODEL", m.nested)]), "qgis model_info", "metadata")

    @s.add(K, "a classification model given to maestro:segment", "qgis segment",
           "refused naming the task")
    def _():
        folder = inp.case_dir("qgis_wrong_task")
        proc = qgis("segment", [("MODEL", m.classification), ("S2", inp.s2[0]),
                                ("DEM", inp.dem), ("OUTPUT", os.path.join(folder, "m.tif"))])
        ok, observed = refused(proc, "qgis segment", "classification")
        return ok and not os.listdir(folder), observed

    # ------------------------------------------------------------ 4. input rasters
    K = "4. Input rasters"
    for name, s2, dem, needles, owner in [
        ("S2 file missing", ["/nonexistent/S2_20150711.tif"], None, ("S2_20150711.tif",),
         "safety"),
        ("S2 'GeoTIFF' that is a text file", [inp.text_tif], None, ("S2_20150711_text.tif",),
         "safety"),
        ("S2 with 9 bands (model wants 10)", [inp.nine_bands], None, ("band",), "prep-bands"),
        ("S2 without a CRS", [inp.no_crs], None, ("CRS",), "safety"),
        ("S2 all nodata", [inp.all_nodata], None, ("nodata",), "safety"),
        ("DEM 100 km away (no overlap)", None, inp.dem_far, ("overlap",), "safety"),
        ("time series without any date", inp.undated, None, ("date",), "prep-dates"),
        ("truncated GeoTIFF (header intact)", [inp.truncated], None,
         ("InputError", "S2_20150711_truncated.tif"), "prep-bands"),
        ("VRT whose source file is gone", [inp.vrt_gone], None,
         ("InputError", "S2_20150711_src.tif"), "prep-bands"),
    ]:
        def make_in(name=name, s2=s2, dem=dem, needles=needles):
            def check():
                return refusal_case(inp, "in_" + name, run_args(inp, s2, dem), needles)
            return check
        s.add(K, name, "engine run", "refused naming the file/problem, no output", owner)(make_in())

    for name, s2, dem, needles, owner, kw in [
        ("two S2 files with the same date", inp.dup_dates, None, ("2015-07-11",), "prep-dates",
         dict(warning=True)),
        ("S2 dated 1900 (file name)", [inp.year_1900], None, ("1900",), "prep-dates",
         dict(warning=True)),
        ("S2 dated 2099 (file name)", [inp.future], None, ("2099",), "prep-dates",
         dict(warning=True)),
        ("S2 bands in reverse order (named)", [inp.shuffled], None, ("band",), "prep-bands",
         dict(same_as_reference=True)),
        ("S2 bands without names", [inp.unnamed_bands], None, ("band",), "prep-bands",
         dict(same_as_reference=True)),
        ("S2 float32 with NaN nodata", [inp.float_nan], None, ("nodata",), "prep-bands",
         dict(same_as_reference=True)),
        ("S2 reflectance 0-1 instead of x10000", [inp.reflectance01], None,
         ("range|smaller|larger|scale",),
         "prep-bands", dict(same_as_reference=True)),
        ("south-up S2 raster", [inp.south_up], None, ("south",), "prep-bands",
         dict(same_as_reference=True)),
        ("S2 and DEM on one rotated grid", [inp.rotated], inp.rotated_dem, ("rotat",),
         "prep-bands", dict(same_as_reference=True)),
        ("S2 of 1 x 1 pixel", [inp.tiny], None, ("pixel",), "safety", dict(shape=(1, 1))),
    ]:
        def make_either(name=name, s2=s2, dem=dem, needles=needles, kw=kw):
            def check():
                return result_or_refusal(inp, "in_" + name, run_args(inp, s2, dem), needles,
                                         **kw)
            return check
        expected = ("a map with a warning naming the date, or refused naming it"
                    if kw.get("warning") else
                    "the sample's map exactly, or refused naming the problem"
                    if kw.get("same_as_reference") else
                    "a map, or refused naming the problem")
        s.add(K, name, "engine run", expected, owner)(make_either())

    @s.add(K, "5 dates given, model takes 5 (all sample scenes)", "engine run", "a correct map")
    def _():
        return result_case(inp, "all_dates", run_args(inp, inp.s2_all))

    @s.add(K, "DEM in another CRS (EPSG:3857, 20 m)", "engine run", "a correct map")
    def _():
        return result_case(inp, "dem_3857", run_args(inp, dem=inp.dem_3857))

    @s.add(K, "truncated GeoTIFF", "qgis segment", "one line naming the file", "prep-bands")
    def _():
        folder = inp.case_dir("qgis_truncated")
        proc = qgis("segment", [("S2", inp.truncated), ("DEM", inp.dem),
                                ("OUTPUT", os.path.join(folder, "m.tif"))])
        ok, observed = refused(proc, "qgis segment", "S2_20150711_truncated.tif")
        return ok and not os.listdir(folder), observed

    @s.add(K, "S2 without a CRS", "qgis segment", "refused naming the file")
    def _():
        folder = inp.case_dir("qgis_nocrs")
        proc = qgis("segment", [("S2", inp.no_crs), ("DEM", inp.dem),
                                ("OUTPUT", os.path.join(folder, "m.tif"))])
        ok, observed = refused(proc, "qgis segment", "CRS")
        return ok and not os.listdir(folder), observed

    @s.add(K, "DATES override that is not a date", "qgis segment", "refused naming the entry")
    def _():
        folder = inp.case_dir("qgis_bad_dates")
        proc = qgis("segment", [("S2", inp.s2[0]), ("DEM", inp.dem),
                                ("DATES", "S2:S2_L1C_20150711.tif=2015-99-99"),
                                ("OUTPUT", os.path.join(folder, "m.tif"))])
        ok, observed = refused(proc, "qgis segment", "2015-99-99")
        return ok and not os.listdir(folder), observed

    @s.add(K, "OUTPUT named .png", "qgis segment", "refused")
    def _():
        folder = inp.case_dir("qgis_png")
        proc = qgis("segment", [("S2", inp.s2[0]), ("DEM", inp.dem),
                                ("OUTPUT", os.path.join(folder, "m.png"))])
        ok, observed = refused(proc, "qgis segment", "GeoTIFF")
        return ok and not os.listdir(folder), observed

    @s.add(K, "the sample as documented (2 dates + DEM)", "qgis segment", "a correct map")
    def _():
        folder = inp.case_dir("qgis_good")
        out = os.path.join(folder, "m.tif")
        proc = qgis("segment", [("S2", inp.s2[0]), ("S2", inp.s2[1]), ("DEM", inp.dem),
                                ("OUTPUT", out)])
        if proc.rc != 0:
            return False, refused(proc, "qgis segment")[1]
        ok, observed = map_ok(out)
        return ok and not leftovers(folder), f"exit 0, {observed}"

    # ------------------------------------------------------------ 5. interruptions
    K = "5. Interruptions and leftovers"
    big = ["run", "--model", m.good, "--input", f"s2={inp.big_s2}", "--input",
           f"dem={inp.big_dem}", "--overlap", "75", "--batch-size", "1", "--threads", "1"]

    def start_and_signal(folder, sig, args=big, group=False):
        out = os.path.join(folder, "map.tif")
        proc = subprocess.Popen([sys.executable, "-m", "engine", *args, "--output", out,
                                 "--confidence", os.path.join(folder, "conf.tif")],
                                cwd=ROOT, env=_env(), stderr=subprocess.PIPE, text=True,
                                start_new_session=group)
        seen = ""
        while "tile " not in seen and proc.poll() is None:
            seen += proc.stderr.readline()
        if proc.poll() is not None:
            return proc, seen + proc.stderr.read(), False
        (os.killpg(proc.pid, sig) if group else proc.send_signal(sig))
        rest = proc.stderr.read()
        proc.wait(timeout=120)
        return proc, seen + rest, True

    for sig, name in ((signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "Ctrl-C (SIGINT)")):
        def make_sig(sig=sig, name=name):
            def check():
                folder = inp.case_dir("sig_" + name)
                proc, err, interrupted = start_and_signal(folder, sig)
                if not interrupted:
                    return False, f"the run ended before the signal (exit {proc.returncode})"
                last = (err.strip().splitlines() or [""])[-1]
                left = os.listdir(folder)
                ok = (proc.returncode in (130, 143, -sig) and not left and "Traceback" not in err)
                return ok and "stopped" in last, (f"exit {proc.returncode}: {last[:140]}; files "
                                                  f"left: {left[:3]}")
            return check
        s.add(K, f"{name} during a run", "engine run",
              "stops like a cancel: one line, no file left")(make_sig())

    @s.add(K, "SIGKILL during a run, then the same run again", "engine run",
           "no final file after the kill; the next run removes the dead run's temporaries")
    def _():
        folder = inp.case_dir("sigkill")
        proc, err, interrupted = start_and_signal(folder, signal.SIGKILL)
        if not interrupted:
            return False, "the run ended before the signal"
        after_kill = sorted(os.listdir(folder))
        if "map.tif" in after_kill:
            return False, "a file under the final name after SIGKILL"
        again = engine(*run_args(inp), "--output", os.path.join(folder, "map.tif"))
        left = leftovers(folder)
        ok, observed = map_ok(os.path.join(folder, "map.tif"))
        return (again.rc == 0 and ok and not left,
                f"{len(after_kill)} temporaries after the kill; next run exit {again.rc}, "
                f"{observed}, temporaries left: {len(left)}")

    @s.add(K, "two runs write the same output at once", "engine run",
           "both succeed; the map is whole, no temporaries")
    def _():
        folder = inp.case_dir("concurrent")
        out = os.path.join(folder, "map.tif")
        procs = [subprocess.Popen([sys.executable, "-m", "engine", *run_args(inp), "--output",
                                   out], cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
        rcs = [p.wait(timeout=300) for p in procs]
        ok, observed = map_ok(out)
        left = leftovers(folder)
        return ok and rcs == [0, 0] and not left, f"exits {rcs}, {observed}, temporaries {left}"

    @s.add(K, "COG output: the temporary before conversion (2048 x 2048 map)",
           "engine API (RasterWriter)", "compressed, far below the raw 4 MiB")
    def _():
        folder = inp.case_dir("cog_tmp_size")
        code = ("import sys, os, numpy as np; from rasterio.transform import from_origin; "
                "from engine.writer import RasterWriter; "
                "w = RasterWriter(os.path.join(sys.argv[1], 'm.tif'), 2048, 2048, 1, 'uint8', "
                "'EPSG:32633', from_origin(0, 2048, 1, 1), cog=True); "
                "w.write_rows(0, (np.arange(2048 * 2048).reshape(1, 2048, 2048) // 99991 % 4)"
                ".astype('uint8')); w._dst.close(); print(os.path.getsize(w._tmp)); w.abort()")
        proc = _run([sys.executable, "-c", code, folder], 120)
        if proc.rc != 0:
            return False, f"exit {proc.rc}: {proc.err.strip()[-160:]}"
        size = int(proc.out.strip())
        return size < 2048 * 2048 // 8 and not os.listdir(folder), (
            f"temporary {size} bytes for {2048 * 2048} bytes of pixels; nothing left after abort: "
            f"{not os.listdir(folder)}")

    # ------------------------------------------------------------ 6. batch
    K = "6. Batch runner"
    batch_base = ["batch", "--model", m.good, "--input", f"s2={inp.s2[0]}", "--input",
                  f"s2={inp.s2[1]}", "--input", f"dem={inp.dem}", "--block-px", "48",
                  "--workers", "1", "--threads", "1"]

    for name, extra, needles in [
        ("--output is an existing file", ["--output", "{file}"], ("existing file",)),
        ("--output ''", ["--output", ""], ("empty",)),
        ("--area-bounds inverted", ["--output", "{dir}", "--area-bounds", "466000", "5079300",
                                    "465300", "5080200"], ("XMIN",)),
        ("--area-bounds NaN", ["--output", "{dir}", "--area-bounds", "nan", "5079300",
                               "465300", "5080200"], ("finite",)),
        ("--area-bounds outside the raster", ["--output", "{dir}", "--area-bounds", "0", "0",
                                              "10", "10"], ("does not intersect",)),
        ("--block-px 0", ["--output", "{dir}", "--block-px", "0"], ("--block-px",)),
        ("--area-crs unknown", ["--output", "{dir}", "--area-bounds", "0", "0", "1", "1",
                                "--area-crs", "EPSG:999999"], ("CRS",)),
    ]:
        def make_b(name=name, extra=extra, needles=needles):
            def check():
                folder = inp.case_dir("batch_" + name)
                a_file = os.path.join(folder, "a_file")
                with open(a_file, "w") as f:
                    f.write("keep")
                before = digest_tree(folder)
                args = [a.format(dir=os.path.join(folder, "job"), file=a_file) for a in extra]
                proc = engine(*batch_base, *args)
                ok, observed = refused(proc, "engine batch", *needles)
                after = digest_tree(folder)
                job = os.path.join(folder, "job")
                made = os.path.isdir(job) and os.listdir(job)
                return ok and after == before and not made, observed
            return check
        s.add(K, name, "engine batch", "refused up front, nothing written")(make_b())

    def start_batch(folder, extra=(), group=True):
        """A batch driver over 16 blocks of the big input, JSON progress on stdout."""
        return subprocess.Popen(
            [sys.executable, "-m", "engine", "batch", "--model", m.good,
             "--input", f"s2={inp.big_s2}", "--input", f"dem={inp.big_dem}",
             "--block-px", "32", "--workers", "1", "--threads", "1",
             "--area-bounds", *map(str, _big_area(inp)), "--output", folder,
             "--progress", "json", *extra],
            cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=group)

    def wait_blocks(proc, n=1, timeout=240):
        t0 = time.monotonic()
        while time.monotonic() < t0 + timeout and proc.poll() is None:
            line = proc.stdout.readline()
            if line.startswith("{"):
                ev = json.loads(line)
                if ev.get("event") == "progress" and ev.get("done", 0) >= n:
                    return True
        return False

    @s.add(K, "a second driver on a running job's folder", "engine batch",
           "refused naming the running job (pid, host, start)")
    def _():
        folder = inp.case_dir("batch_two_drivers")
        first = start_batch(folder)
        try:
            if not wait_blocks(first, 1):
                return False, "the first driver did not start computing"
            second = engine("batch", "--model", m.good, "--input", f"s2={inp.big_s2}",
                            "--input", f"dem={inp.big_dem}", "--block-px", "32",
                            "--area-bounds", *map(str, _big_area(inp)), "--workers", "1",
                            "--output", folder)
            return refused(second, "engine batch", f"pid {first.pid}", "started")
        finally:
            os.killpg(first.pid, signal.SIGTERM)
            first.wait(timeout=120)

    @s.add(K, "SIGTERM to the driver, then the same command", "engine batch",
           "stops cleanly (exit 130); the re-run resumes and leaves no temporaries")
    def _():
        folder = inp.case_dir("batch_sigterm")
        first = start_batch(folder, group=False)
        if not wait_blocks(first, 2):
            first.kill()
            return False, "the driver did not start computing"
        first.send_signal(signal.SIGTERM)
        rest = first.stdout.read()
        first.wait(timeout=120)
        again = engine("batch", "--model", m.good, "--input", f"s2={inp.big_s2}",
                       "--input", f"dem={inp.big_dem}", "--block-px", "32",
                       "--area-bounds", *map(str, _big_area(inp)), "--workers", "1",
                       "--threads", "1", "--output", folder)
        skipped = re.search(r"(\d+) skipped", again.out)
        left = leftovers(folder)
        ok = (first.returncode == 130 and again.rc == 0 and skipped and int(skipped.group(1)) >= 1
              and not left and "Traceback" not in rest)
        return bool(ok), (f"driver exit {first.returncode}; re-run exit {again.rc}, "
                          f"{skipped.group(0) if skipped else 'nothing skipped'}; "
                          f"temporaries left {len(left)}")

    @s.add(K, "driver and workers killed (SIGKILL), then the same command", "engine batch",
           "stale lock taken over, finished blocks kept, dead temporaries removed")
    def _():
        folder = inp.case_dir("batch_sigkill")
        first = start_batch(folder)
        if not wait_blocks(first, 2):
            os.killpg(first.pid, signal.SIGKILL)
            return False, "the driver did not start computing"
        time.sleep(0.3)  # let the manifest record what finished (it saves every 0.1 s); the
        # whole job takes about 2 s with batches in flight: a longer wait let it end first
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=60)
        lock_left = os.path.exists(os.path.join(folder, ".maestro-batch.lock"))
        again = engine("batch", "--model", m.good, "--input", f"s2={inp.big_s2}",
                       "--input", f"dem={inp.big_dem}", "--block-px", "32",
                       "--area-bounds", *map(str, _big_area(inp)), "--workers", "1",
                       "--threads", "1", "--output", folder)
        took = "Took over the lock" in again.out
        skipped = re.search(r"(\d+) skipped", again.out)
        left = leftovers(folder)
        ok = again.rc == 0 and took and skipped and int(skipped.group(1)) >= 1 and not left
        return bool(ok), (f"lock left by the kill: {lock_left}; re-run exit {again.rc}, "
                          f"took over the lock: {took}, "
                          f"{skipped.group(0) if skipped else 'nothing skipped'}, "
                          f"temporaries left {len(left)}")

    @s.add(K, "a corrupt block file, then the same command", "engine batch",
           "the block is detected and computed again")
    def _():
        folder = inp.case_dir("batch_corrupt")
        args = batch_base + ["--output", folder]
        first = engine(*args)
        if first.rc != 0:
            return False, f"first run failed: {refused(first, 'engine batch')[1]}"
        blocks = sorted(os.listdir(os.path.join(folder, "blocks")))
        target = os.path.join(folder, "blocks", next(b for b in blocks if b.endswith(".tif")))
        data = bytearray(open(target, "rb").read())
        data[len(data) // 2] ^= 0xFF
        open(target, "wb").write(bytes(data))
        again = engine(*args)
        done = [x for x in again.out.splitlines() if x.startswith(("Done:", "Block "))]
        return again.rc == 0 and "1 blocks computed" in again.out, "; ".join(done)[:240]

    @s.add(K, "the same folder with other parameters", "engine batch",
           "refused naming what differs")
    def _():
        folder = inp.case_dir("batch_mismatch")
        first = engine(*batch_base, "--output", folder)
        if first.rc != 0:
            return False, f"first run failed: {refused(first, 'engine batch')[1]}"
        again = engine(*batch_base, "--output", folder, "--overlap", "50")
        return refused(again, "engine batch", "differs in")

    @s.add(K, "OUTPUT_FOLDER is an existing file", "qgis batch_segment", "one line, file kept")
    def _():
        folder = inp.case_dir("qgis_batch_file")
        a_file = os.path.join(folder, "a_file")
        with open(a_file, "w") as f:
            f.write("keep")
        proc = qgis("batch_segment", [("S2", inp.s2[0]), ("DEM", inp.dem),
                                      ("OUTPUT_FOLDER", a_file), ("WORKERS", "1")])
        ok, observed = refused(proc, "qgis batch_segment", "existing file")
        return ok and open(a_file).read() == "keep", observed

    @s.add(K, "DEM missing", "qgis batch_segment", "refused naming DEM")
    def _():
        folder = inp.case_dir("qgis_batch_nodem")
        proc = qgis("batch_segment", [("S2", inp.s2[0]), ("OUTPUT_FOLDER", folder),
                                      ("WORKERS", "1")])
        ok, observed = refused(proc, "qgis batch_segment", "DEM")
        return ok and not os.listdir(folder), observed

    # ------------------------------------------------------------ 7. official checkpoints
    K = "7. Official checkpoint import"
    cfg = os.path.join(ROOT, "training", "configs", "official", "flair-hub-base.yaml")
    ck = inp.dir("checkpoints")

    def payload_ckpt():
        import pickle
        import zipfile

        class Evil:
            def __reduce__(self):
                return (os.system, ("echo pwned > " + os.path.join(ck, "pwned.txt"),))

        path = os.path.join(ck, "evil.ckpt")
        data = pickle.dumps({"state_dict": Evil()}, protocol=2)
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("evil/data.pkl", data)
            z.writestr("evil/version", "3\n")
        return path

    for name, make_ckpt, needles in [
        ("checkpoint missing", lambda: "/nonexistent/model.ckpt", ("not found",)),
        ("checkpoint is a text file", lambda: _write_text(os.path.join(ck, "text.ckpt"),
                                                          "hello"), ("cannot read",)),
        ("checkpoint is empty", lambda: _write_text(os.path.join(ck, "empty.ckpt"), ""),
         ("cannot read",)),
        ("checkpoint with a code-running pickle payload", payload_ckpt, ("refus",)),
    ]:
        def make_ck(name=name, make_ckpt=make_ckpt, needles=needles):
            def check():
                path = make_ckpt()
                out = os.path.join(inp.case_dir("ckpt_" + name), "m.onnx")
                proc = training("import-official", path, "--config", cfg, "--task",
                                "segmentation", "--output", out)
                ok, observed = refused(proc, "training import-official", *needles)
                pwned = os.path.exists(os.path.join(ck, "pwned.txt"))
                return ok and not os.path.exists(out) and not pwned, observed + (
                    "; THE PAYLOAD RAN" if pwned else "")
            return check
        s.add(K, name, "training import-official", "refused, nothing run or written")(make_ck())

    @s.add(K, "config file missing", "training import-official", "refused naming it")
    def _():
        out = os.path.join(inp.case_dir("ckpt_no_config"), "m.onnx")
        proc = training("import-official", _write_text(os.path.join(ck, "x.ckpt"), "x"),
                        "--config", "/nonexistent/config.yaml", "--task", "segmentation",
                        "--output", out)
        return refused(proc, "training import-official", "config.yaml")

    return s


def _write_text(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def _big_area(inp: Inputs) -> tuple[float, float, float, float]:
    """128 x 128 px at the top-left of the big input: 16 blocks of 32 px."""
    t = inp.transform
    return (t.c, t.f + 128 * t.e, t.c + 128 * t.a, t.f)


def _refuse_out(inp, name, s2, out, folder, needles, dem=None):
    before = digest_tree(folder)
    proc = engine(*run_args(inp, s2, dem), "--output", out)
    ok, observed = refused(proc, "engine run", *needles)
    after = digest_tree(folder)
    if after != before:
        return False, f"{observed}; files changed: {sorted(k for k in after if after[k] != before.get(k))[:3]}"
    return ok, observed


# ----------------------------------------------------------------------------- report
def table(items: list[Situation]) -> str:
    lines = []
    kinds = []
    for it in items:
        if it.kind not in kinds:
            kinds.append(it.kind)
    for kind in kinds:
        rows = [it for it in items if it.kind == kind]
        n_ok = sum(it.handled for it in rows)
        lines += [f"### {kind} ({n_ok}/{len(rows)} handled)", "",
                  "| situation | interface | expected | observed | handled | owner |",
                  "|---|---|---|---|---|---|"]
        for it in rows:
            obs = it.observed.replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {it.name} | {it.interface} | {it.expected} | {obs} | "
                         f"{'yes' if it.handled else '**no**'} | {it.owner} |")
        lines.append("")
    return "\n".join(lines)


def write_doc(body: str) -> None:
    with open(DOC, encoding="utf-8") as f:
        doc = f.read()
    start, end = doc.index(BEGIN) + len(BEGIN), doc.index(END)
    with open(DOC, "w", encoding="utf-8") as f:
        f.write(doc[:start] + "\n" + body.rstrip() + "\n" + doc[end:])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--write", action="store_true", help="rewrite the section of docs/robustness.md")
    ap.add_argument("--only", default="", help="run only situations whose kind or name contains this")
    ap.add_argument("--workdir", default=None, help="scratch folder (default: a temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    a = ap.parse_args(argv)
    work = a.workdir or tempfile.mkdtemp(prefix="maestro-robustness-")
    os.makedirs(work, exist_ok=True)
    t0 = time.perf_counter()
    try:
        inp = Inputs(work)
        suite = build(inp)
        items = [it for it in suite.items
                 if a.only.lower() in (it.kind + " " + it.name + " " + it.interface).lower()]
        for i, it in enumerate(items, 1):
            t = time.perf_counter()
            try:
                it.handled, it.observed = it.check()
            except Exception as exc:  # noqa: BLE001 (this script's own set-up failed)
                it.handled, it.observed = False, f"robustness script error: {type(exc).__name__}: {exc}"
            it.handled = bool(it.handled)
            it.observed = it.observed.replace(os.path.realpath(work), "<work>").replace(
                work, "<work>")
            it.seconds = time.perf_counter() - t
            print(f"[{i:3d}/{len(items)}] {'ok ' if it.handled else 'NO '} {it.interface:24s} "
                  f"{it.name[:60]:60s} {it.seconds:5.1f}s  {it.observed[:100]}", flush=True)
        sample_ok = digest_tree(SAMPLE, ignore_aux=True) == suite.sample_digest
    finally:
        if not a.keep and not a.workdir:
            shutil.rmtree(work, ignore_errors=True)
    n, ok = len(items), sum(it.handled for it in items)
    seconds = time.perf_counter() - t0
    by_owner = {}
    for it in items:
        tried, handled = by_owner.get(it.owner, (0, 0))
        by_owner[it.owner] = (tried + 1, handled + it.handled)
    owners = ", ".join(f"{o}: {h}/{t}" for o, (t, h) in sorted(by_owner.items()))
    summary = (f"**{n} tried / {ok} handled** (by owner of the fix: {owners}); "
               f"resources/sample unchanged: {'yes' if sample_ok else 'NO'}. "
               f"Run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
               f"commit {_commit()}, {seconds / 60:.1f} min, `python scripts/robustness.py --write`.")
    body = "\n".join([
        summary, "",
        "Handled = a clear one-line error naming the problem, or a correct result; and no "
        "partial output (no file under the output name after a refusal, no temporary file, "
        "inputs unchanged). *Owner* is the helper branch whose fix the situation needs "
        "(before the branches are merged, their situations may show as not handled). "
        "`<work>` is the script's scratch folder.", "",
        table(items)])
    print()
    print(summary)
    if a.write:
        write_doc(body)
        print(f"wrote {DOC}")
    return 0 if ok == n else 1


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True).stdout.strip() or "?"
    except OSError:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
