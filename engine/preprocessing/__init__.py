"""The contract layer's preprocessing, shared by ``engine`` and ``training/datasets``.

Pure Python + numpy (rasterio is imported inside the functions that open a raster); no
onnxruntime, qgis or torch. Modules (docs/model-contract.md):

- :mod:`.dates`: every way a slice gets its date (explicit value, GDAL tags, file name), the
  time-of-day rule, MAESTRO's date triplet and the checks of a stack's dates;
- :mod:`.scaling`: the contract scaling ``(f(x) - mean) / std``;
- :mod:`.tokens`: pixel validity -> token mask, filling of partial tokens;
- :mod:`.bands`: which raster bands are the model's bands, matched by name;
- :mod:`.radiometry`: GDAL scale/offset, unit conversion, value checks, refused data types;
- :mod:`.geometry`: north-up grids, ground pixel size for any CRS, the grid of GCP rasters;
- :mod:`.reading`: the read plan of a raster for a modality (bands + radiometry), shared.
"""
