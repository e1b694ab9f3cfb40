"""maestro:build_stack: Sentinel-2 products as downloaded -> one VRT per date, ready for the
S2 input of maestro:segment / classify / embed (engine/sentinel2.py does the work)."""
from __future__ import annotations

import datetime
import os

from qgis.core import (Qgis, QgsProcessingContext, QgsProcessingException,
                       QgsProcessingOutputMultipleLayers, QgsProcessingOutputString,
                       QgsProcessingParameterBoolean, QgsProcessingParameterEnum,
                       QgsProcessingParameterExtent, QgsProcessingParameterFile,
                       QgsProcessingParameterFolderDestination,
                       QgsProcessingParameterMultipleLayers, QgsProcessingParameterString)

from .base import DEFAULT_MODEL, MaestroAlgorithm, engine_log
from .inference import _advanced, _with_help, extent_and_crs

HELP = (
    "<p>Turns Sentinel-2 as downloaded into what MAESTRO reads: one VRT per date with the "
    "model's Sentinel-2 bands in its order, at its pixel size.</p>"
    "<p><b>INPUT</b>: Level-1C / Level-2A products (the .zip as downloaded, a .SAFE folder "
    "or its MTD_MSIL1C.xml / MTD_MSIL2A.xml; opened with GDAL's SENTINEL2 driver) and/or the "
    "band files of one or more dates (JP2 or GeoTIFF; the band is read from the file name: "
    "B02, B8A, ...; the date from a YYYYMMDD in it, else DATE). From qgis_process repeat "
    "INPUT=.</p>"
    "<p><b>MODEL</b>: the model whose S2 bands and pixel size are written (empty = the bundled "
    "default model).</p>"
    "<p><b>DATE</b>: the date of band files without one in their names (YYYY-MM-DD).</p>"
    "<p><b>CLOUD_MASK</b>: mark the product's clouds as nodata (a mask band): Level-2A scene "
    "classification (SCL) classes MASK_CLASSES, Level-1C MSK_CLASSI (opaque clouds, cirrus) "
    "or MSK_CLOUDS polygons; band files of one date use a file named SCL among them.</p>"
    "<p><b>AREA</b>: optional crop (any CRS), e.g. the map canvas extent.</p>"
    "<p>Each VRT carries the acquisition date (ACQUISITIONDATETIME), the band names, and the "
    "product's radiometric offset (RADIO_ADD_OFFSET / BOA_ADD_OFFSET, -1000 from processing "
    "baseline 04.00) as GDAL band offset, so values read with scale/offset are reflectance x "
    "QUANTIFICATION_VALUE (10000) before and after 2022; QUANTIFICATION_VALUE is recorded in "
    "the metadata. Nothing is copied: the VRTs read the product's files, which must stay "
    "where they are.</p>")


class BuildStackAlgorithm(MaestroAlgorithm):
    INPUT = "INPUT"
    MODEL = "MODEL"
    MODALITY = "MODALITY"
    DATE = "DATE"
    CLOUD_MASK = "CLOUD_MASK"
    MASK_CLASSES = "MASK_CLASSES"
    RESAMPLING = "RESAMPLING"
    AREA = "AREA"
    PREFIX = "PREFIX"
    OUTPUT_FOLDER = "OUTPUT_FOLDER"
    OUTPUT = "OUTPUT"
    DATES = "DATES"

    def name(self):
        return "build_stack"

    def displayName(self):
        return "Sentinel-2 products to a time stack (one VRT per date)"

    def shortHelpString(self):
        return HELP

    def initAlgorithm(self, config=None):
        from engine.sentinel2 import DEFAULT_SCL_MASKED, RESAMPLINGS

        self.addParameter(_with_help(QgsProcessingParameterMultipleLayers(
            self.INPUT, "Sentinel-2 products (.zip, .SAFE, MTD_*.xml) or band files",
            Qgis.ProcessingSourceType.File),
            "Products as downloaded and/or per-band files (band and date from the names)."))
        self.addParameter(_with_help(QgsProcessingParameterFile(
            self.MODEL, "MAESTRO model (.onnx; empty = bundled default)", extension="onnx",
            optional=True), "The model whose Sentinel-2 bands and pixel size are written."))
        self.addParameter(_with_help(QgsProcessingParameterString(
            self.DATE, "Date of band files without a date in their names (YYYY-MM-DD)",
            optional=True), "Products carry their own acquisition time; this is for band "
                            "files only."))
        self.addParameter(_with_help(QgsProcessingParameterBoolean(
            self.CLOUD_MASK, "Mask clouds as nodata (product's scene classification)",
            defaultValue=False),
            "L2A: SCL classes below; L1C: MSK_CLASSI opaque clouds and cirrus (or the "
            "MSK_CLOUDS polygons of older products)."))
        self.addParameter(_with_help(QgsProcessingParameterExtent(
            self.AREA, "Area (empty = the whole product)", optional=True),
            "Crop to this extent (any CRS): the map canvas, a layer's extent or drawn."))
        self.addParameter(_with_help(_advanced(QgsProcessingParameterString(
            self.MASK_CLASSES, "L2A SCL classes masked (comma separated)",
            defaultValue=",".join(str(c) for c in DEFAULT_SCL_MASKED))),
            "0 no data, 1 saturated/defective, 2 dark/cast shadows, 3 cloud shadows, "
            "4 vegetation, 5 not vegetated, 6 water, 7 unclassified, 8 cloud medium "
            "probability, 9 cloud high probability, 10 thin cirrus, 11 snow."))
        self.addParameter(_with_help(_advanced(QgsProcessingParameterEnum(
            self.RESAMPLING, "Resampling of bands at another pixel size", options=list(RESAMPLINGS),
            defaultValue="bilinear", usesStaticStrings=True)),
            "How 20 m / 60 m bands are brought to the model's pixel size."))
        self.addParameter(_with_help(_advanced(QgsProcessingParameterString(
            self.MODALITY, "Model modality to build for", defaultValue="s2")),
            "The model's Sentinel-2 modality (model_info lists them)."))
        self.addParameter(_with_help(_advanced(QgsProcessingParameterString(
            self.PREFIX, "File name prefix", defaultValue="S2")),
            "VRTs are named <prefix>_<YYYYMMDD>.vrt."))
        self.addParameter(_with_help(QgsProcessingParameterFolderDestination(
            self.OUTPUT_FOLDER, "Output folder"), "One VRT (+ _mask.tif) per date."))
        self.addOutput(QgsProcessingOutputMultipleLayers(self.OUTPUT, "VRT per date"))
        self.addOutput(QgsProcessingOutputString(self.DATES, "Dates written (ISO, sorted)"))

    # ------------------------------------------------------------------ running
    def _date(self, parameters, context):
        text = self.parameterAsString(parameters, self.DATE, context).strip()
        if not text:
            return None
        try:
            return datetime.date.fromisoformat(text)
        except ValueError as exc:
            raise QgsProcessingException(f"DATE: '{text}' is not a date (YYYY-MM-DD)") from exc

    def _classes(self, parameters, context):
        text = self.parameterAsString(parameters, self.MASK_CLASSES, context)
        try:
            classes = [int(c) for c in text.replace(";", ",").split(",") if c.strip()]
        except ValueError as exc:
            raise QgsProcessingException(
                f"MASK_CLASSES: '{text}' is not a comma-separated list of SCL classes") from exc
        bad = [c for c in classes if not 0 <= c <= 11]
        if bad:
            raise QgsProcessingException(f"MASK_CLASSES: {bad} are not SCL classes (0-11)")
        return classes

    def _modality(self, parameters, context):
        from engine.contract import read_model_metadata

        path = self.parameterAsFile(parameters, self.MODEL, context) or DEFAULT_MODEL
        meta = self.engine_call(read_model_metadata, path)
        name = self.parameterAsString(parameters, self.MODALITY, context).strip().lower() or "s2"
        if name not in meta.modality_names:
            raise QgsProcessingException(
                f"model '{meta.name}' has no modality '{name}' (it has "
                f"{', '.join(meta.modality_names)}); set MODALITY")
        return meta, meta.modality(name)

    def processAlgorithm(self, parameters, context, feedback):
        paths = self.parameterAsFileList(parameters, self.INPUT, context)
        if not paths:
            raise QgsProcessingException("INPUT: give Sentinel-2 products or band files")
        meta, spec = self._modality(parameters, context)
        folder = self.parameterAsFileOutput(parameters, self.OUTPUT_FOLDER, context)
        area = extent_and_crs(self, parameters, self.AREA, context)
        feedback.pushInfo(f"Model {meta.name}: {spec.name} bands {', '.join(spec.bands)} at "
                          f"{spec.gsd_m:g} m")
        from engine.sentinel2 import build_stack

        vrts = self.engine_call(
            build_stack, paths, spec.bands, spec.gsd_m, folder,
            date=self._date(parameters, context),
            prefix=self.parameterAsString(parameters, self.PREFIX, context) or "S2",
            mask=self.parameterAsBoolean(parameters, self.CLOUD_MASK, context),
            masked_classes=self._classes(parameters, context),
            bounds=area[0] if area else None, bounds_crs=area[1] if area else None,
            resampling=self.parameterAsEnumString(parameters, self.RESAMPLING, context)
            or "bilinear", log=engine_log(feedback))
        if context.project() is not None:
            for vrt in vrts:
                context.addLayerToLoadOnCompletion(vrt, QgsProcessingContext.LayerDetails(
                    os.path.splitext(os.path.basename(vrt))[0], context.project(), self.OUTPUT))
        dates = [os.path.splitext(os.path.basename(v))[0].rsplit("_", 1)[-1] for v in vrts]
        return {self.OUTPUT: vrts, self.OUTPUT_FOLDER: folder,
                self.DATES: ",".join(f"{d[:4]}-{d[4:6]}-{d[6:]}" for d in dates)}
