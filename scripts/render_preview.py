"""Render a PNG preview of a land-cover run with QGIS's own renderer (a print layout).

Panels side by side: the Sentinel-2 true-colour composite (B04, B03, B02), the reference map
and the prediction, each a QgsLayoutItemMap, with a legend (QgsLayoutItemLegend) of the
classes, a scale bar and, optionally, the outline of the held-out area of the model's
spatial split.

    python scripts/render_preview.py --s2 S2.tif --reference ref.tif --prediction out.tif \
        --output out/landcover.png [--heldout XMIN,YMIN,XMAX,YMAX] [--title TEXT]

The classes (names and colours) of a paletted panel come from the raster itself: its GDAL
colour table and category names (the engine writes both; so does the sample's reference).
Only values that occur in the raster are listed. Run it with the project's environment
(``bash scripts/with-env.sh .venv/bin/python scripts/render_preview.py ...``).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

import numpy as np

PANEL_MM = 80.0
MARGIN_MM = 6.0
TITLE_MM = 10.0
LEGEND_MM = 75.0


def raster_classes(path: str) -> list[tuple[int, str, tuple[int, int, int, int]]]:
    """(value, name, rgba) for each value present in band 1 of ``path`` that has a colour
    table entry; the name is the GDAL category name, else the value."""
    from osgeo import gdal

    ds = gdal.Open(path)
    band = ds.GetRasterBand(1)
    table = band.GetColorTable()
    if table is None:
        raise ValueError(f"{path}: band 1 has no colour table: it is not a class raster")
    # gdal.Info loads the PAM side-car (.aux.xml) first; with GDAL 3.6's GTiff driver a bare
    # band.GetCategoryNames() can return None before that.
    names = gdal.Info(ds, format="json")["bands"][0].get("categories") or []
    nodata = band.GetNoDataValue()
    values = np.unique(band.ReadAsArray())
    out = []
    for v in values.tolist():
        if nodata is not None and v == nodata:
            continue
        if v >= table.GetCount():
            continue
        name = names[v] if v < len(names) and names[v] else str(v)
        out.append((int(v), name, table.GetColorEntry(int(v))))
    return out


def paletted_layer(path: str, name: str, nodata_label: str | None = None):
    """A paletted layer of a class raster; ``nodata_label``: a legend entry for its nodata
    pixels (drawn as the white page they leave)."""
    from qgis.core import QgsPalettedRasterRenderer, QgsRasterLayer
    from qgis.PyQt.QtGui import QColor

    layer = QgsRasterLayer(path, name)
    if not layer.isValid():
        raise ValueError(f"cannot open {path} as a raster layer")
    classes = [QgsPalettedRasterRenderer.Class(v, QColor(*rgba), label)
               for v, label, rgba in raster_classes(path)]
    nodata = layer.dataProvider().sourceNoDataValue(1)
    if nodata_label and layer.dataProvider().sourceHasNoDataValue(1):
        classes.append(QgsPalettedRasterRenderer.Class(int(nodata), QColor(255, 255, 255),
                                                       nodata_label))
    layer.setRenderer(QgsPalettedRasterRenderer(layer.dataProvider(), 1, classes))
    return layer


def true_colour_layer(path: str, name: str):
    """B04, B03, B02 (bands 3, 2, 1 of the bundled 10-band files) with a 2-98 % stretch."""
    from qgis.core import QgsContrastEnhancement, QgsMultiBandColorRenderer, QgsRasterLayer

    layer = QgsRasterLayer(path, name)
    if not layer.isValid():
        raise ValueError(f"cannot open {path} as a raster layer")
    provider = layer.dataProvider()
    red, green, blue = (_band_index(path, b, d) for b, d in (("B04", 3), ("B03", 2), ("B02", 1)))
    renderer = QgsMultiBandColorRenderer(provider, red, green, blue)
    for band, setter in ((red, renderer.setRedContrastEnhancement),
                         (green, renderer.setGreenContrastEnhancement),
                         (blue, renderer.setBlueContrastEnhancement)):
        ce = QgsContrastEnhancement(provider.dataType(band))
        ce.setContrastEnhancementAlgorithm(QgsContrastEnhancement.StretchToMinimumMaximum)
        lo, hi = _percentiles(path, band)
        ce.setMinimumValue(lo)
        ce.setMaximumValue(hi)
        setter(ce)
    layer.setRenderer(renderer)
    return layer


def _band_index(path: str, name: str, default: int) -> int:
    """1-based index of the band described as ``name`` (GDAL band description)."""
    import rasterio

    with rasterio.open(path) as ds:
        names = list(ds.descriptions)
    return names.index(name) + 1 if name in names else default


def _percentiles(path: str, band: int) -> tuple[float, float]:
    import rasterio

    with rasterio.open(path) as ds:
        data = ds.read(band, masked=True).compressed()
    lo, hi = np.percentile(data, [2, 98])
    return float(lo), float(hi)


def heldout_layer(bounds: tuple[float, float, float, float], crs):
    """A memory polygon layer outlining the held-out area (dashed, no fill)."""
    from qgis.core import QgsFeature, QgsFillSymbol, QgsGeometry, QgsRectangle, QgsVectorLayer

    layer = QgsVectorLayer(f"Polygon?crs={crs.authid()}", "held-out area (not trained on)",
                           "memory")
    feat = QgsFeature()
    feat.setGeometry(QgsGeometry.fromRect(QgsRectangle(*bounds)))
    layer.dataProvider().addFeatures([feat])
    layer.updateExtents()
    symbol = QgsFillSymbol.createSimple({"style": "no", "outline_color": "#00e5ff",
                                         "outline_width": "0.8", "outline_style": "dash"})
    layer.renderer().setSymbol(symbol)
    return layer


def _drop_band_caption(model, node) -> None:
    """Keep only the class entries of a raster layer's legend (QGIS adds a "Band 1: ..."
    caption node first)."""
    from qgis.core import QgsMapLayerLegendUtils, QgsSimpleLegendNode

    model.refreshLayerLegend(node)
    keep = [i for i, item in enumerate(model.layerOriginalLegendNodes(node))
            if not isinstance(item, QgsSimpleLegendNode)]
    QgsMapLayerLegendUtils.setLegendNodeOrder(node, keep)
    model.refreshLayerLegend(node)


def render(s2: str, reference: str | None, prediction: str | None, output: str,
           heldout: tuple[float, float, float, float] | None = None, title: str = "",
           dpi: int = 150, save_style: str | None = None) -> str:
    """Compose the layout and export it to ``output`` (PNG). Needs a QgsApplication."""
    with tempfile.TemporaryDirectory(prefix="maestro-preview-") as tmp:
        # QGIS may write statistics into a raster's .aux.xml: render from copies so that the
        # inputs (the bundled sample, say) stay untouched.
        s2, reference, prediction = (_copy(p, tmp, str(i)) for i, p in
                                     enumerate((s2, reference, prediction)))
        return _render(s2, reference, prediction, output, heldout, title, dpi, save_style)


def _copy(path: str | None, folder: str, tag: str) -> str | None:
    """Copy ``path`` and its GDAL side-car (.aux.xml) into ``folder/tag/``."""
    if not path:
        return None
    if not os.path.exists(path):
        raise FileNotFoundError(f"raster not found: {path}")
    dest = os.path.join(folder, tag)
    os.makedirs(dest)
    for src in (path, path + ".aux.xml"):
        if os.path.exists(src):
            shutil.copy(src, dest)
    return os.path.join(dest, os.path.basename(path))


def _render(s2, reference, prediction, output, heldout, title, dpi, save_style) -> str:
    from qgis.core import (QgsLayoutExporter, QgsLayoutItemLabel, QgsLayoutItemLegend,
                           QgsLayoutItemMap, QgsLayoutItemScaleBar, QgsLayoutPoint,
                           QgsLayoutSize, QgsPrintLayout, QgsProject, QgsUnitTypes)
    from qgis.PyQt.QtGui import QFont

    project = QgsProject.instance()
    panels = [("Sentinel-2 true colour", [true_colour_layer(s2, os.path.basename(s2))])]
    if reference:
        panels.append(("Reference land cover", [paletted_layer(reference, "reference",
                                                                nodata_label="no label")]))
    if prediction:
        predicted = paletted_layer(prediction, "predicted land cover")
        panels.append(("Prediction (default model)", [predicted]))
        if save_style:
            # A .qml beside the GeoTIFF: QGIS applies it when the raster is opened.
            message, ok = predicted.saveNamedStyle(save_style)
            if not ok:
                raise RuntimeError(f"could not save the style {save_style}: {message}")
    overlay = heldout_layer(heldout, panels[0][1][0].crs()) if heldout else None
    all_layers = [lyr for _, lyrs in panels for lyr in lyrs] + ([overlay] if overlay else [])
    project.addMapLayers(all_layers)
    extent = panels[0][1][0].extent()

    layout = QgsPrintLayout(project)
    layout.initializeDefaults()
    width = MARGIN_MM + len(panels) * (PANEL_MM + MARGIN_MM) + LEGEND_MM
    height = TITLE_MM + PANEL_MM + 2 * MARGIN_MM + 22
    layout.pageCollection().page(0).setPageSize(QgsLayoutSize(width, height))

    if title:
        label = QgsLayoutItemLabel(layout)
        label.setText(title)
        label.setFont(QFont("Open Sans", 13, QFont.Bold))
        layout.addLayoutItem(label)
        label.attemptMove(QgsLayoutPoint(MARGIN_MM, 2))
        label.attemptResize(QgsLayoutSize(width - 2 * MARGIN_MM, 8))

    maps = []
    for i, (caption, layers) in enumerate(panels):
        x = MARGIN_MM + i * (PANEL_MM + MARGIN_MM)
        item = QgsLayoutItemMap(layout)
        item.attemptMove(QgsLayoutPoint(x, TITLE_MM + 7))
        item.attemptResize(QgsLayoutSize(PANEL_MM, PANEL_MM))
        item.setLayers(([overlay] if overlay else []) + layers)
        item.setKeepLayerSet(True)
        item.setExtent(extent)
        item.setFrameEnabled(True)
        layout.addLayoutItem(item)
        maps.append(item)
        cap = QgsLayoutItemLabel(layout)
        cap.setText(caption)
        cap.setFont(QFont("Open Sans", 10))
        layout.addLayoutItem(cap)
        cap.attemptMove(QgsLayoutPoint(x, TITLE_MM + 1))
        cap.attemptResize(QgsLayoutSize(PANEL_MM, 6))

    bar = QgsLayoutItemScaleBar(layout)
    bar.setStyle("Single Box")
    bar.setLinkedMap(maps[0])
    bar.setUnits(QgsUnitTypes.DistanceMeters)
    bar.setUnitLabel("m")
    bar.setNumberOfSegments(2)
    bar.setNumberOfSegmentsLeft(0)
    bar.setUnitsPerSegment(250)
    layout.addLayoutItem(bar)
    bar.attemptMove(QgsLayoutPoint(MARGIN_MM, TITLE_MM + 8 + PANEL_MM + 1))

    legend = QgsLayoutItemLegend(layout)
    legend.setTitle("Legend")
    legend.setAutoUpdateModel(False)
    root = legend.model().rootGroup()
    root.removeAllChildren()
    headers = {"reference": "Reference", "predicted land cover": "Prediction"}
    for lyr in [lyrs[0] for _, lyrs in panels[1:]] + ([overlay] if overlay else []):
        node = root.addLayer(lyr)
        node.setCustomProperty("legend/title-label", headers.get(lyr.name(), lyr.name()))
        _drop_band_caption(legend.model(), node)
    legend.setLinkedMap(maps[-1])
    layout.addLayoutItem(legend)
    legend.attemptMove(QgsLayoutPoint(MARGIN_MM + len(panels) * (PANEL_MM + MARGIN_MM),
                                      TITLE_MM + 7))
    legend.adjustBoxSize()

    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    settings = QgsLayoutExporter.ImageExportSettings()
    settings.dpi = dpi
    settings.exportMetadata = False  # PNG cannot be updated in place by GDAL afterwards
    result = QgsLayoutExporter(layout).exportToImage(output, settings)
    project.removeAllMapLayers()
    if result != QgsLayoutExporter.Success:
        raise RuntimeError(f"layout export to {output} failed (code {result})")
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--s2", required=True, help="Sentinel-2 GeoTIFF for the true-colour panel")
    parser.add_argument("--reference", help="reference class raster (colour table)")
    parser.add_argument("--prediction", help="predicted class raster (colour table)")
    parser.add_argument("--output", required=True, help="PNG to write")
    parser.add_argument("--heldout", help="XMIN,YMIN,XMAX,YMAX of the held-out area (outlined)")
    parser.add_argument("--title", default="")
    parser.add_argument("--dpi", type=int, default=150)
    parser.add_argument("--save-style", help="also save the prediction's style to this .qml")
    args = parser.parse_args(argv)
    heldout = tuple(float(v) for v in args.heldout.split(",")) if args.heldout else None

    from qgis.core import QgsApplication

    app = QgsApplication([], False)
    app.initQgis()
    try:
        render(args.s2, args.reference, args.prediction, args.output, heldout, args.title,
               args.dpi, args.save_style)
    finally:
        app.exitQgis()
    print(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
