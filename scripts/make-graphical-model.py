"""Write resources/models/maestro_landcover_areas.model3: maestro:segment, then QGIS's own
steps: polygonise the land-cover map (gdal:polygonize), dissolve by class
(native:dissolve) and compute each class's area (native:fieldcalculator).

Run: bash scripts/with-env.sh .venv/bin/python scripts/make-graphical-model.py
(the .model3 is committed; this script documents how it was made and remakes it).
"""
import os
import sys

from qgis.core import (QgsApplication, QgsProcessingModelAlgorithm,
                       QgsProcessingModelChildAlgorithm, QgsProcessingModelChildParameterSource,
                       QgsProcessingModelOutput, QgsProcessingModelParameter,
                       QgsProcessingParameterFile, QgsProcessingParameterMultipleLayers,
                       QgsProcessing)
from qgis.PyQt.QtCore import QPointF

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "resources", "models", "maestro_landcover_areas.model3")
MODALITIES = ("AERIAL", "DEM", "S2", "S1_ASC", "S1_DESC")


def child_param(name):
    return [QgsProcessingModelChildParameterSource.fromModelParameter(name)]


def child_output(child, output):
    return [QgsProcessingModelChildParameterSource.fromChildOutput(child, output)]


def static(value):
    return [QgsProcessingModelChildParameterSource.fromStaticValue(value)]


def main():
    model = QgsProcessingModelAlgorithm("MAESTRO land cover and class areas", "MAESTRO",
                                        "maestro_landcover_areas")
    model.setHelpContent({
        "ALG_DESC": "Runs maestro:segment on the given rasters, then polygonises the land-cover "
                    "map, dissolves the polygons by class and computes each class's area "
                    "(square metres, in the land-cover map's CRS).",
        "LAND_COVER": "The land-cover map (GeoTIFF, class ids, 255 = nodata).",
        "CLASS_AREAS": "One multipolygon per class: class_id, area_m2, area_ha.",
        "MODEL": "MAESTRO segmentation model (.onnx); empty = the bundled default model.",
        **{name: f"{name} rasters, as maestro:segment's {name} (one layer per date for a time "
                 "series); give the modalities the model uses, leave the others empty."
           for name in MODALITIES},
    })
    y = 60
    model.addModelParameter(QgsProcessingParameterFile(
        "MODEL", "MAESTRO model (.onnx; empty = bundled default)", extension="onnx",
        optional=True), QgsProcessingModelParameter("MODEL"))
    for i, name in enumerate(MODALITIES):
        comp = QgsProcessingModelParameter(name)
        comp.setPosition(QPointF(120 + 180 * i, y))
        model.addModelParameter(QgsProcessingParameterMultipleLayers(
            name, f"{name} layers", QgsProcessing.TypeRaster, optional=True), comp)

    seg = QgsProcessingModelChildAlgorithm("maestro:segment")
    seg.setChildId("segment")
    seg.setDescription("Land-cover map (maestro:segment)")
    seg.setPosition(QPointF(400, 200))
    seg.addParameterSources("MODEL", child_param("MODEL"))
    for name in MODALITIES:
        seg.addParameterSources(name, child_param(name))
    out = QgsProcessingModelOutput("LAND_COVER", "Land-cover map")
    out.setChildOutputName("OUTPUT")
    out.setChildId("segment")
    seg.setModelOutputs({"LAND_COVER": out})
    model.addChildAlgorithm(seg)

    poly = QgsProcessingModelChildAlgorithm("gdal:polygonize")
    poly.setChildId("polygonize")
    poly.setDescription("Polygonize land cover")
    poly.setPosition(QPointF(400, 300))
    poly.addParameterSources("INPUT", child_output("segment", "OUTPUT"))
    poly.addParameterSources("BAND", static(1))
    poly.addParameterSources("FIELD", static("class_id"))
    poly.addParameterSources("EIGHT_CONNECTEDNESS", static(False))
    poly.addParameterSources("OUTPUT", static("TEMPORARY_OUTPUT"))
    poly.setDependencies([])
    model.addChildAlgorithm(poly)

    dissolve = QgsProcessingModelChildAlgorithm("native:dissolve")
    dissolve.setChildId("dissolve")
    dissolve.setDescription("Dissolve by class")
    dissolve.setPosition(QPointF(400, 400))
    dissolve.addParameterSources("INPUT", child_output("polygonize", "OUTPUT"))
    dissolve.addParameterSources("FIELD", static(["class_id"]))
    model.addChildAlgorithm(dissolve)

    area_m2 = QgsProcessingModelChildAlgorithm("native:fieldcalculator")
    area_m2.setChildId("area_m2")
    area_m2.setDescription("Class area (m²)")
    area_m2.setPosition(QPointF(400, 500))
    area_m2.addParameterSources("INPUT", child_output("dissolve", "OUTPUT"))
    area_m2.addParameterSources("FIELD_NAME", static("area_m2"))
    area_m2.addParameterSources("FIELD_TYPE", static(0))   # decimal
    area_m2.addParameterSources("FIELD_LENGTH", static(20))
    area_m2.addParameterSources("FIELD_PRECISION", static(1))
    area_m2.addParameterSources("FORMULA", static("area($geometry)"))
    model.addChildAlgorithm(area_m2)

    area_ha = QgsProcessingModelChildAlgorithm("native:fieldcalculator")
    area_ha.setChildId("area_ha")
    area_ha.setDescription("Class area (ha)")
    area_ha.setPosition(QPointF(400, 600))
    area_ha.addParameterSources("INPUT", child_output("area_m2", "OUTPUT"))
    area_ha.addParameterSources("FIELD_NAME", static("area_ha"))
    area_ha.addParameterSources("FIELD_TYPE", static(0))
    area_ha.addParameterSources("FIELD_LENGTH", static(20))
    area_ha.addParameterSources("FIELD_PRECISION", static(4))
    area_ha.addParameterSources("FORMULA", static('"area_m2" / 10000'))
    areas = QgsProcessingModelOutput("CLASS_AREAS", "Class areas")
    areas.setChildOutputName("OUTPUT")
    areas.setChildId("area_ha")
    area_ha.setModelOutputs({"CLASS_AREAS": areas})
    model.addChildAlgorithm(area_ha)

    model.updateDestinationParameters()
    if not model.toFile(OUT):
        sys.exit(f"could not write {OUT}")
    print(OUT)


if __name__ == "__main__":
    app = QgsApplication([], False)
    app.initQgis()
    main()
    app.exitQgis()
