"""Write resources/models/maestro_own_classes.model3: maestro:train_classes (your labels ->
a new model), maestro:segment with that new model, then maestro:accuracy_assessment of the map
against reference sample points (accuracies and area estimates with 95 % intervals).

Run: bash scripts/with-env.sh .venv/bin/python scripts/make-own-classes-model.py
(the .model3 is committed; this script documents how it was made and remakes it).
"""
import os
import sys

from qgis.core import (QgsApplication, QgsProcessing, QgsProcessingModelAlgorithm,
                       QgsProcessingModelChildAlgorithm, QgsProcessingModelChildParameterSource,
                       QgsProcessingModelOutput, QgsProcessingModelParameter,
                       QgsProcessingParameterFeatureSource, QgsProcessingParameterField,
                       QgsProcessingParameterFile, QgsProcessingParameterMultipleLayers,
                       QgsProcessingParameterString)
from qgis.PyQt.QtCore import QPointF

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "resources", "models", "maestro_own_classes.model3")
MODALITIES = ("AERIAL", "DEM", "S2", "S1_ASC", "S1_DESC")


def param(name):
    return [QgsProcessingModelChildParameterSource.fromModelParameter(name)]


def child(child_id, output):
    return [QgsProcessingModelChildParameterSource.fromChildOutput(child_id, output)]


def output(child_alg, name, child_output, description):
    out = QgsProcessingModelOutput(name, description)
    out.setChildOutputName(child_output)
    out.setChildId(child_alg.childId())
    return out


def add_param(model, definition, x, y):
    comp = QgsProcessingModelParameter(definition.name())
    comp.setPosition(QPointF(x, y))
    model.addModelParameter(definition, comp)


def main():
    model = QgsProcessingModelAlgorithm("MAESTRO: train your classes, map them, assess the map",
                                        "MAESTRO", "maestro_own_classes")
    model.setHelpContent({
        "ALG_DESC": "Trains a new MAESTRO model on your labelled points/polygons "
                    "(maestro:train_classes), maps your classes with it (maestro:segment) and "
                    "assesses the map against reference sample points "
                    "(maestro:accuracy_assessment: accuracies and area estimates with 95 % "
                    "confidence intervals, Olofsson et al. 2014). The reference points must be a "
                    "probability sample (e.g. stratified random by mapped class) independent of "
                    "the training labels.",
        "MODEL": "Base MAESTRO model giving encoder features; empty = the bundled default model.",
        "LABELS": "Training labels: point and/or polygon layers with the class field.",
        "CLASS_FIELD": "Name of the class field in the label layers.",
        "COLOR_FIELD": "Optional colour field (#rrggbb) in the label layers.",
        "REFERENCE": "Reference sample points with the true class (name or id).",
        "REFERENCE_FIELD": "The reference points' class field.",
        **{name: f"{name} rasters (one layer per date for a time series); give the modalities "
                 "the base model uses, leave the others empty." for name in MODALITIES},
    })
    add_param(model, QgsProcessingParameterFile(
        "MODEL", "Base MAESTRO model (.onnx; empty = bundled default)", extension="onnx",
        optional=True), 80, 60)
    for i, name in enumerate(MODALITIES):
        add_param(model, QgsProcessingParameterMultipleLayers(
            name, f"{name} layers", QgsProcessing.TypeRaster, optional=True), 260 + 170 * i, 60)
    add_param(model, QgsProcessingParameterMultipleLayers(
        "LABELS", "Training labels (points and/or polygons)", QgsProcessing.TypeVectorAnyGeometry),
        80, 150)
    add_param(model, QgsProcessingParameterString("CLASS_FIELD", "Class field", "class"), 260, 150)
    add_param(model, QgsProcessingParameterString("COLOR_FIELD", "Colour field",
                                                  optional=True), 430, 150)
    add_param(model, QgsProcessingParameterFeatureSource(
        "REFERENCE", "Reference sample points", [QgsProcessing.TypeVectorPoint]), 80, 420)
    add_param(model, QgsProcessingParameterField(
        "REFERENCE_FIELD", "Reference class field", parentLayerParameterName="REFERENCE"),
        260, 420)

    train = QgsProcessingModelChildAlgorithm("maestro:train_classes")
    train.setChildId("train")
    train.setDescription("Train your classes (maestro:train_classes)")
    train.setPosition(QPointF(600, 250))
    for name in ("MODEL", "LABELS", "CLASS_FIELD", "COLOR_FIELD", *MODALITIES):
        train.addParameterSources(name, param(name))
    train.setModelOutputs({
        "NEW_MODEL": output(train, "NEW_MODEL", "OUTPUT_MODEL", "New model (.onnx)"),
        "TRAINING_REPORT": output(train, "TRAINING_REPORT", "REPORT", "Training report (HTML)")})
    model.addChildAlgorithm(train)

    seg = QgsProcessingModelChildAlgorithm("maestro:segment")
    seg.setChildId("segment")
    seg.setDescription("Map your classes (maestro:segment)")
    seg.setPosition(QPointF(600, 360))
    seg.addParameterSources("MODEL", child("train", "OUTPUT_MODEL"))
    for name in MODALITIES:
        seg.addParameterSources(name, param(name))
    seg.setModelOutputs({"MAP": output(seg, "MAP", "OUTPUT", "Map of your classes")})
    model.addChildAlgorithm(seg)

    acc = QgsProcessingModelChildAlgorithm("maestro:accuracy_assessment")
    acc.setChildId("accuracy")
    acc.setDescription("Accuracy and area estimates (maestro:accuracy_assessment)")
    acc.setPosition(QPointF(600, 470))
    acc.addParameterSources("INPUT", child("segment", "OUTPUT"))
    acc.addParameterSources("REFERENCE", param("REFERENCE"))
    acc.addParameterSources("CLASS_FIELD", param("REFERENCE_FIELD"))
    acc.setModelOutputs({
        "ACCURACY_TABLE": output(acc, "ACCURACY_TABLE", "OUTPUT", "Accuracy and area table"),
        "ACCURACY_REPORT": output(acc, "ACCURACY_REPORT", "REPORT", "Accuracy report (HTML)")})
    model.addChildAlgorithm(acc)

    model.updateDestinationParameters()
    if not model.toFile(OUT):
        sys.exit(f"could not write {OUT}")
    print(OUT)


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    app = QgsApplication([], False)
    app.initQgis()
    main()
    app.exitQgis()
