"""The dock's similarity map tool: click a place on the map canvas -> the similarity map of
the current stack to that place (``maestro:similarity`` with the clicked point as the
example), added as a styled layer that replaces the previous one.

The encoder features of a stack are computed once (``maestro:embed`` into QGIS's temporary
folder) and reused for the next clicks while the model and the input rows stay the same;
each click then only runs ``maestro:similarity`` with ``EMBEDDINGS``.
"""
from __future__ import annotations

import os
import uuid

from qgis.core import QgsProcessingUtils, QgsProject, QgsRasterLayer
from qgis.gui import QgsMapTool
from qgis.PyQt.QtCore import Qt, pyqtSignal

from .widgets import OUTPUT_PROPERTY

SIMILARITY_PROPERTY = "maestro/similarity"


class SimilarityMapTool(QgsMapTool):
    """A map tool emitting ``clicked(QgsPointXY)`` (map coordinates, the canvas CRS) on a
    left click."""

    clicked = pyqtSignal(object)

    def __init__(self, canvas):
        super().__init__(canvas)
        self.setCursor(Qt.CursorShape.CrossCursor)

    def canvasReleaseEvent(self, event):
        if event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit(event.mapPoint())


def write_example_point(point, crs, folder: str | None = None) -> str:
    """A GeoPackage holding one point (the clicked place), for maestro:similarity's
    EXAMPLES (a file, so the background task opens it in its own thread).

    Args:
        point: QgsPointXY in ``crs``.
        crs: QgsCoordinateReferenceSystem of the point.
    Returns: the file path.
    """
    from osgeo import ogr, osr

    folder = folder or QgsProcessingUtils.tempFolder()
    path = os.path.join(folder, f"similarity-example-{uuid.uuid4().hex[:8]}.gpkg")
    srs = osr.SpatialReference()
    srs.ImportFromWkt(crs.toWkt())
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(path)
    layer = ds.CreateLayer("example", srs, ogr.wkbPoint)
    feature = ogr.Feature(layer.GetLayerDefn())
    feature.SetGeometry(ogr.CreateGeometryFromWkt(f"POINT ({point.x()!r} {point.y()!r})"))
    layer.CreateFeature(feature)
    feature = layer = ds = None
    return path


def add_similarity_layer(path: str, name: str, project=None) -> QgsRasterLayer:
    """Load the similarity raster styled (Viridis, -1..1) on top of the Layers panel; the
    previous similarity layer is removed.

    Raises:
        RuntimeError: the raster does not open.
    """
    from .algorithms.similarity import ramp_renderer

    project = project or QgsProject.instance()
    layer = QgsRasterLayer(path, name, "gdal")
    if not layer.isValid():
        raise RuntimeError(f"the similarity map {path} cannot be opened")
    layer.setRenderer(ramp_renderer(layer, "Viridis", -1.0, 1.0))
    layer.setCustomProperty(SIMILARITY_PROPERTY, True)
    layer.setCustomProperty(OUTPUT_PROPERTY, "similarity")
    for old in list(project.mapLayers().values()):
        if old.customProperty(SIMILARITY_PROPERTY):
            project.removeMapLayer(old.id())
    project.addMapLayer(layer, False)
    project.layerTreeRoot().insertLayer(0, layer)
    return layer


class SimilarityRunner:
    """The runs behind one click: embeddings (unless cached for this stack), then the
    similarity map. Owned by the dock; ``done(ok, layer id or message)`` is the dock's
    callback.

    Attributes:
        cache: (key, embeddings path) of the last stack whose features were computed.
        run: the AlgorithmRun in progress, or None.
    """

    def __init__(self, dock, done):
        self.dock = dock
        self.done = done
        self.cache: tuple | None = None
        self.run = None
        self.cancelled = False

    @staticmethod
    def stack_key(params: dict) -> tuple:
        """What the features depend on: the model file (path and modification time), the
        input sources, dates and run settings."""
        keys = sorted(k for k in params if k not in ("EXAMPLES", "OUTPUT", "EMBEDDINGS"))
        model = params.get("MODEL") or ""
        try:
            stamp = os.path.getmtime(model) if model else 0.0
        except OSError:
            stamp = 0.0
        return (("model mtime", stamp), *((k, repr(params[k])) for k in keys))

    def start(self, point, crs, params: dict) -> None:
        """Start the runs for a click at ``point`` (QgsPointXY in ``crs``)."""
        self.cancelled = False
        examples = write_example_point(point, crs)
        name = f"similarity to {point.x():.0f}, {point.y():.0f}"
        key = self.stack_key(params)
        cached = self.cache[1] if self.cache and self.cache[0] == key else None
        if cached and os.path.isfile(cached):
            self._similarity(cached, examples, name)
            return
        from .alg_task import AlgorithmRun

        emb = os.path.join(QgsProcessingUtils.tempFolder(),
                           f"maestro-embeddings-{uuid.uuid4().hex[:8]}.tif")
        run = AlgorithmRun("maestro:embed", {**params, "OUTPUT": emb},
                           "MAESTRO: encoder features for the similarity map", use_project=False)
        run.progress.connect(lambda v: self.dock.progress_bar.setValue(int(0.8 * v)))
        run.done.connect(lambda ok, res, msg: self._embedded(ok, res, msg, key, examples, name))
        self.run = run
        run.start()

    def _embedded(self, ok, results, message, key, examples, name):
        self.run = None
        if not ok or self.cancelled:
            self.done(False, message or "cancelled")
            return
        path = results.get("OUTPUT")
        self.cache = (key, path)
        self._similarity(path, examples, name)

    def _similarity(self, embeddings, examples, name):
        from .alg_task import AlgorithmRun

        out = os.path.join(QgsProcessingUtils.tempFolder(),
                           f"maestro-similarity-{uuid.uuid4().hex[:8]}.tif")
        run = AlgorithmRun("maestro:similarity",
                           {"EMBEDDINGS": embeddings, "EXAMPLES": examples, "OUTPUT": out},
                           "MAESTRO: similarity map", use_project=False)
        run.progress.connect(lambda v: self.dock.progress_bar.setValue(int(80 + 0.2 * v)))
        run.done.connect(lambda ok, res, msg: self._finished(ok, res, msg, name))
        self.run = run
        run.start()

    def _finished(self, ok, results, message, name):
        self.run = None
        if not ok or self.cancelled:
            self.done(False, message or "cancelled")
            return
        try:
            layer = add_similarity_layer(results.get("OUTPUT"), name)
        except RuntimeError as exc:
            self.done(False, str(exc))
            return
        self.done(True, layer.id())

    def cancel(self) -> None:
        self.cancelled = True
        if self.run is not None:
            self.run.cancel()
