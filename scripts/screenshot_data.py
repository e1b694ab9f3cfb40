"""Inputs for the dock screenshot (scripts/screenshots.sh): a model and GeoTIFFs from
the real eo-learn Slovenia patch shaped for it.

Usage: python scripts/screenshot_data.py OUT_DIR  -> prints OUT_DIR/inputs.json
The bundled default model is used when present, else a tiny model exported by our
training code. Supports models whose modalities are s2 (bands chosen by name from the
13 L1C bands) and dem.
"""
import json
import os
import sys

import numpy as np
import rasterio
from rasterio.transform import from_origin

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
SLOVENIA = os.path.join(os.path.dirname(ROOT), "shared", "data", "eolearn-slovenia-lulc")
L1C = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]
DATES = ["20150820", "20150731", "20150909", "20150830", "20150711"]
DEFAULT_MODEL = os.path.join(ROOT, "resources", "models", "maestro-tiny-slovenia-lulc.onnx")


def write(path, array, transform, nodata, dtype):
    with rasterio.open(path, "w", driver="GTiff", width=array.shape[2], height=array.shape[1],
                       count=array.shape[0], dtype=dtype, crs="EPSG:32633", transform=transform,
                       nodata=nodata) as dst:
        dst.write(array.astype(dtype))
    return path


def main(out):
    from engine.contract import read_model_metadata

    os.makedirs(out, exist_ok=True)
    model = DEFAULT_MODEL
    if not os.path.isfile(model):
        from tests.tiny_model import export_tiny

        model = os.path.join(out, "tiny-segmentation.onnx")
        export_tiny(model, task="segmentation")
    meta = read_model_metadata(model)
    with open(os.path.join(SLOVENIA, "bbox.geojson"), encoding="utf-8") as fh:
        ring = json.load(fh)["coordinates"][0]
    x0, y0 = min(p[0] for p in ring), max(p[1] for p in ring)
    inputs = {"model": model, "layers": {}}
    for spec in meta.modalities:
        if spec.name == "s2":
            scenes = np.load(os.path.join(SLOVENIA, "s2_l1c_reference_scenes.npy"))
            idx = [L1C.index(b) for b in spec.bands]
            dn = np.clip(np.round(scenes[..., idx] * 10000), 1, 65535).transpose(0, 3, 1, 2)
            n = min(spec.max_dates, 3)
            inputs["layers"]["S2"] = [
                write(os.path.join(out, f"S2_{DATES[i]}.tif"), dn[i],
                      from_origin(x0, y0, 10, 10), 0, "uint16") for i in range(n)]
        elif spec.name == "dem":
            dem = np.load(os.path.join(SLOVENIA, "dem.npy"))[:100, :, 0]
            step = int(round(spec.gsd_m / 10))
            dem = dem.reshape(100 // step, step, 100 // step, step).mean(axis=(1, 3))
            inputs["layers"]["DEM"] = [write(os.path.join(out, "dem.tif"), dem[None],
                                             from_origin(x0, y0, spec.gsd_m, spec.gsd_m),
                                             -9999, "float32")]
        else:
            sys.exit(f"screenshot data: modality {spec.name} is not supported here")
    path = os.path.join(out, "inputs.json")
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(inputs, fh)
    print(path)


if __name__ == "__main__":
    main(sys.argv[1])
