"""Write resources/models/maestro_landcover_areas.model3: maestro:segment, then QGIS's own
steps: polygonise the land-cover map (gdal:polygonize), dissolve by class
(native:dissolve), compute each class's area (native:fieldcalculator) and add the class
names and colours (maestro:class_names, which also styles the result by class).

Run: bash scripts/with-env.sh .venv/bin/python scripts/make-graphical-model.py
(the .model3 is committed; this script documents how it was made and remakes it).
"""
import os
import sys

from qgis.core import (Qgis, QgsApplication, QgsProcessingModelAlgorithm,
                       QgsProcessingModelChildAlgorithm, QgsProcessingModelChildParameterSource,
                       QgsProcessingModelOutput, QgsProcessingModelParameter,
                       QgsProcessingParameterFile, QgsProcessingParameterMultipleLayers)
from qgis.PyQt.QtCore import QPointF

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "resources", "models", "maestro_landcover_areas.model3")
MODALITIES = ("AERIAL", "DEM", "S2", "S1_ASC", "S1_DESC", "S1", "SPOT")
#: short labels: a model box shows one line of about 25 characters
TITLES = {"AERIAL": "Aerial image", "DEM": "Elevation", "S2": "Sentinel-2 dates",
          "S1_ASC": "S1 asc.", "S1_DESC": "S1 desc.",
          "S1": "Sentinel-1", "SPOT": "SPOT 6-7 image"}
#: canvas layout: inputs on two rows of four, steps in one column below, outputs to their
#: right. Boxes are 200 x 30 px centred on their position (QgsProcessingModelComponent
#: size): 230 px between input centres, 70 px between rows and steps, nothing closer than
#: 20 px to x = 0 or y = 0.
INPUT_Y0, INPUT_DY, INPUT_X0, INPUT_DX, PER_ROW = 50, 70, 130, 230, 4
STEP_X, STEP_Y0, STEP_DY = 475, 230, 80
OUTPUT_DX = 300
LAND_COVER, CLASS_AREAS = "Land cover", "Class areas"


def child_param(name):
    return [QgsProcessingModelChildParameterSource.fromModelParameter(name)]


def child_output(child, output):
    return [QgsProcessingModelChildParameterSource.fromChildOutput(child, output)]


def static(value):
    return [QgsProcessingModelChildParameterSource.fromStaticValue(value)]


def main():
    model = QgsProcessingModelAlgorithm("Land cover and class areas", "",
                                        "maestro_landcover_areas")
    model.setHelpContent({
        "ALG_DESC": "Runs maestro:segment on the given rasters, then polygonises the land-cover "
                    "map, dissolves the polygons by class, computes each class's area (square "
                    "metres and hectares on the ground whatever the map's CRS: measured in "
                    "EPSG:6933, WGS 84 / NSIDC EASE-Grid 2.0 Global, an equal-area projection; "
                    "NULL for a CRS without an authority code) and adds the model's "
                    "class names and colours (styled by class when loaded).",
        LAND_COVER: "The land-cover map (GeoTIFF, class ids, 255 = nodata).",
        CLASS_AREAS: "One multipolygon per class: class_id, area_m2, area_ha, class_name, color.",
        "MODEL": "MAESTRO segmentation model (.onnx); empty = the bundled default model.",
        **{name: f"{TITLES[name]}: as maestro:segment's {name} (one layer per date for a time "
                 "series); give the modalities the model uses (the default model: S2 and DEM), "
                 "leave the others empty."
           for name in MODALITIES},
    })
    def place(comp, i):
        comp.setPosition(QPointF(INPUT_X0 + INPUT_DX * (i % PER_ROW),
                                 INPUT_Y0 + INPUT_DY * (i // PER_ROW)))

    comp = QgsProcessingModelParameter("MODEL")
    place(comp, 0)
    model.addModelParameter(QgsProcessingParameterFile(
        "MODEL", "Model (empty = default)", extension="onnx", optional=True), comp)
    for i, name in enumerate(MODALITIES, start=1):
        comp = QgsProcessingModelParameter(name)
        place(comp, i)
        model.addModelParameter(QgsProcessingParameterMultipleLayers(
            name, f"{TITLES[name]} [{name}]" if TITLES[name] != name else name,
            Qgis.ProcessingSourceType.Raster, optional=True),
            comp)

    def step(child_id, alg, description, row):
        child = QgsProcessingModelChildAlgorithm(alg)
        child.setChildId(child_id)
        child.setDescription(description)
        child.setPosition(QPointF(STEP_X, STEP_Y0 + STEP_DY * row))
        return child

    def output(child, name, description, row):
        out = QgsProcessingModelOutput(name, description)
        out.setChildOutputName("OUTPUT")
        out.setChildId(child.childId())
        out.setPosition(QPointF(STEP_X + OUTPUT_DX, STEP_Y0 + STEP_DY * row))
        child.setModelOutputs({name: out})

    seg = step("segment", "maestro:segment", "Land-cover map", 0)
    seg.addParameterSources("MODEL", child_param("MODEL"))
    for name in MODALITIES:
        seg.addParameterSources(name, child_param(name))
    output(seg, LAND_COVER, "Land cover", 0)
    model.addChildAlgorithm(seg)

    poly = step("polygonize", "gdal:polygonize", "Polygonize land cover", 1)
    poly.addParameterSources("INPUT", child_output("segment", "OUTPUT"))
    poly.addParameterSources("BAND", static(1))
    poly.addParameterSources("FIELD", static("class_id"))
    poly.addParameterSources("EIGHT_CONNECTEDNESS", static(False))
    poly.addParameterSources("OUTPUT", static("TEMPORARY_OUTPUT"))
    model.addChildAlgorithm(poly)

    dissolve = step("dissolve", "native:dissolve", "Dissolve by class", 2)
    dissolve.addParameterSources("INPUT", child_output("polygonize", "OUTPUT"))
    dissolve.addParameterSources("FIELD", static(["class_id"]))
    model.addChildAlgorithm(dissolve)

    area_m2 = step("area_m2", "native:fieldcalculator", "Class area (m²)", 3)
    area_m2.addParameterSources("INPUT", child_output("dissolve", "OUTPUT"))
    area_m2.addParameterSources("FIELD_NAME", static("area_m2"))
    area_m2.addParameterSources("FIELD_TYPE", static(0))   # decimal
    area_m2.addParameterSources("FIELD_LENGTH", static(20))
    area_m2.addParameterSources("FIELD_PRECISION", static(1))
    # ground area whatever the map's CRS: area($geometry) is planar in the layer's units
    # (2.07x too large for EPSG:3857 at 45.9 N, square degrees for EPSG:4326) and qgis_process
    # has no project ellipsoid for $area; EPSG:6933 (WGS 84 / NSIDC EASE-Grid 2.0 Global) is
    # equal-area, so the planar area there is the area on the ellipsoid. @layer_crs is the
    # authority id (empty for a custom CRS: the area is then NULL, not silently wrong).
    area_m2.addParameterSources("FORMULA", static(
        "area(transform($geometry, @layer_crs, 'EPSG:6933'))"))
    model.addChildAlgorithm(area_m2)

    area_ha = step("area_ha", "native:fieldcalculator", "Class area (ha)", 4)
    area_ha.addParameterSources("INPUT", child_output("area_m2", "OUTPUT"))
    area_ha.addParameterSources("FIELD_NAME", static("area_ha"))
    area_ha.addParameterSources("FIELD_TYPE", static(0))
    area_ha.addParameterSources("FIELD_LENGTH", static(20))
    area_ha.addParameterSources("FIELD_PRECISION", static(4))
    area_ha.addParameterSources("FORMULA", static('"area_m2" / 10000'))
    model.addChildAlgorithm(area_ha)

    names = step("class_names", "maestro:class_names", "Class names and colours", 5)
    names.addParameterSources("INPUT", child_output("area_ha", "OUTPUT"))
    names.addParameterSources("FIELD", static("class_id"))
    names.addParameterSources("MODEL", child_param("MODEL"))
    output(names, CLASS_AREAS, "Class areas", 5)
    model.addChildAlgorithm(names)

    model.updateDestinationParameters()
    if not model.toFile(OUT):
        sys.exit(f"could not write {OUT}")
    print(OUT)


if __name__ == "__main__":
    app = QgsApplication([], False)
    app.initQgis()
    # maestro:class_names and maestro:segment must resolve: load the plugin's provider
    sys.path.insert(0, ROOT)
    sys.path.append(os.path.join(QgsApplication.pkgDataPath(), "python", "plugins"))
    import processing  # noqa: F401 (QGIS's processing plugin on sys.path via with-env.sh)
    from processing.core.Processing import Processing

    Processing.initialize()
    from tests.conftest import load_plugin

    plugin = load_plugin()  # noqa: F841 (kept alive: it owns the provider)
    main()
    app.exitQgis()
