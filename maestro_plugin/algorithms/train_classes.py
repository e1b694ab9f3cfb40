"""maestro:train_classes: the analyst's own classes from drawn points/polygons -> a new
MAESTRO model file (engine/classes/train.py), plus a cross-validation report comparing it with
a per-pixel random forest on the same labels."""
from __future__ import annotations

import json

from qgis.core import (Qgis, QgsProcessingException, QgsProcessingOutputNumber,
                       QgsProcessingOutputString, QgsProcessingParameterBoolean,
                       QgsProcessingParameterEnum, QgsProcessingParameterFileDestination,
                       QgsProcessingParameterMultipleLayers, QgsProcessingParameterNumber,
                       QgsProcessingParameterString)

from .. import inputs as plugin_inputs
from .base import DEFAULT_MODEL, engine_log
from .inference import COMMON_HELP, InferenceAlgorithm, _advanced, _with_help

HEADS = ("logistic", "mlp")
#: colours for classes without a colour field (ColorBrewer Set1 + Dark2, distinct on maps)
PALETTE = ("#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#ff7f00", "#ffff33", "#a65628",
           "#f781bf", "#999999", "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e")

HELP = (
    "<p>Train your own classes on MAESTRO's encoder. Draw points or polygons, give each a "
    "class in a field (and optionally a colour #rrggbb in another), choose the same rasters "
    "as for a land-cover map, and this tool writes a <b>new MAESTRO model</b> (.onnx) with "
    "your class names and colours. Run it with maestro:segment like any other model.</p>"
    "<p>How: the model's encoder features (frozen; any MAESTRO model that gives them: an "
    "embedding model or a contract-2 segmentation/classification model) are computed around "
    "the labels, interpolated to the reference pixels and joined with the mean and standard "
    "deviation over dates of the reference modality's bands; a head (logistic regression or "
    "a small MLP, scikit-learn) is fitted on the labelled pixels (polygons label the pixels "
    "whose centre is inside, points their pixel) and merged into the model file.</p>"
    "<p>The report (HTML, and this log) gives spatially blocked cross-validation: overall "
    "accuracy, per-class F1, the confusion matrix and a learning curve, for the head and for a "
    "per-pixel random forest on every band and date of the same rasters and the same labels, "
    "and says which is better. The figures go into the model's provenance.</p>"
    "<p>Needs the Python packages scikit-learn and onnx.</p>"
    "<h3>Parameters</h3>"
    "<p><b>LABELS</b>: one or more layers of points, lines or polygons; <b>CLASS_FIELD</b>: "
    "the name of the field holding the class of each feature in every layer (text or number; "
    "classes are sorted by name, their order gives the class ids 0..K-1; labels differing "
    "only by case or spaces are one class, with a warning); "
    "<b>COLOR_FIELD</b> (optional): a colour per class (#rrggbb or a colour name).</p>"
    "<p><b>OUTPUT_MODEL</b>: the new .onnx; <b>REPORT</b>: HTML report.</p>"
    "<p><b>HEAD</b>: logistic (default) or mlp; <b>BLOCK_SIZE</b>: side of the "
    "cross-validation blocks in metres (0 = the model's tile); <b>FOLDS</b>; "
    "<b>COMPARE_RF</b>: also cross-validate the random forest; <b>THREADS</b>: cores used "
    "(0 = all).</p>") + COMMON_HELP.replace("<h3>Parameters</h3>", "", 1)



def merge_case_variants(items: list) -> tuple[list, list[str]]:
    """Labels that differ only by case or surrounding spaces ("Forest", "forest ") are one
    class, spelled as most of its labels are (the first in sorted order on a tie): a new-user
    trial got two classes, and cross-validated accuracy fell from 0.75 to 0.57.

    Args:
        items: (geometry, label) pairs.

    Returns:
        (the items with merged labels, warning lines naming what was merged).
    """
    from collections import Counter

    spellings: dict[str, Counter] = {}
    for _, label in items:
        spellings.setdefault(label.strip().casefold(), Counter())[label] += 1
    canonical, notes = {}, []
    for key, counts in spellings.items():
        best = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        for label in counts:
            canonical[label] = best.strip()
        if len(counts) > 1:
            notes.append(f"warning: class labels {', '.join(repr(x) for x in sorted(counts))} "
                         f"differ only by case or spaces: trained as one class '{best.strip()}'")
    return [(g, canonical[label]) for g, label in items], notes

class TrainClassesAlgorithm(InferenceAlgorithm):
    TASK = ""
    LABELS = "LABELS"
    CLASS_FIELD = "CLASS_FIELD"
    COLOR_FIELD = "COLOR_FIELD"
    OUTPUT_MODEL = "OUTPUT_MODEL"
    REPORT = "REPORT"
    HEAD = "HEAD"
    BLOCK_SIZE = "BLOCK_SIZE"
    FOLDS = "FOLDS"
    COMPARE_RF = "COMPARE_RF"
    THREADS = "THREADS"
    NAME = "NAME"
    CV_OA = "CV_OVERALL_ACCURACY"
    CV_OA_RF = "CV_OVERALL_ACCURACY_RF"
    VERDICT = "VERDICT"

    def name(self):
        return "train_classes"

    def displayName(self):
        return "Train your classes (new model from labels)"

    def shortHelpString(self):
        return HELP

    def add_parameters(self):
        super().add_parameters()
        self.removeParameter(self.OUTPUT)
        # engine.classes.train's embeddings run takes no float16 / batches in flight option
        self.removeParameter(self.FLOAT16)
        self.removeParameter(self.BATCHES_IN_FLIGHT)
        self.removeParameter(self.AREA)   # the labels choose the area
        self.addParameter(_with_help(QgsProcessingParameterMultipleLayers(
            self.LABELS, "Label layers (points, lines and/or polygons)",
            Qgis.ProcessingSourceType.VectorAnyGeometry),
            "Your labelled places: one or more vector layers (e.g. a point layer and a polygon "
            "layer) with the same class field."))
        self.addParameter(_with_help(QgsProcessingParameterString(
            self.CLASS_FIELD, "Class field (in every label layer)", defaultValue="class"),
            "Name of the field holding the class of each feature (text or number)."))
        self.addParameter(_with_help(QgsProcessingParameterString(
            self.COLOR_FIELD, "Colour field (#rrggbb or a colour name)", optional=True),
            "A colour per class; classes without one get a palette colour."))
        self.addParameter(_with_help(QgsProcessingParameterString(
            self.NAME, "Model name (empty = the file name)", optional=True),
            "Name written into the model's metadata."))
        self.addParameter(_with_help(QgsProcessingParameterEnum(
            self.HEAD, "Head", options=list(HEADS), defaultValue="logistic",
            usesStaticStrings=True), "logistic: multinomial logistic regression; mlp: one "
                                     "hidden layer of 64 units."))
        self.addParameter(_with_help(_advanced(QgsProcessingParameterNumber(
            self.BLOCK_SIZE, "Cross-validation block size (m, 0 = the model's tile)",
            Qgis.ProcessingNumberParameterType.Double, defaultValue=0, minValue=0)),
            "Side of the square blocks held out together in cross-validation."))
        self.addParameter(_with_help(_advanced(QgsProcessingParameterNumber(
            self.FOLDS, "Cross-validation folds", Qgis.ProcessingNumberParameterType.Integer,
            defaultValue=5, minValue=2, maxValue=20)), "Fewer when fewer blocks hold labels."))
        self.addParameter(_with_help(QgsProcessingParameterBoolean(
            self.COMPARE_RF, "Compare with a per-pixel random forest", defaultValue=True),
            "Cross-validate a random forest on every band and date with the same labels."))
        self.addParameter(_with_help(_advanced(QgsProcessingParameterNumber(
            self.THREADS, "Threads (0 = all cores)", Qgis.ProcessingNumberParameterType.Integer,
            defaultValue=0, minValue=0, maxValue=256)), "Cores for onnxruntime and scikit-learn."))
        self.addParameter(_with_help(QgsProcessingParameterFileDestination(
            self.OUTPUT_MODEL, "New model (.onnx)", "ONNX models (*.onnx)"),
            "The new MAESTRO model with your classes; run it with maestro:segment."))
        self.addParameter(_with_help(QgsProcessingParameterFileDestination(
            self.REPORT, "Training report (HTML)", "HTML files (*.html)", optional=True,
            createByDefault=True), "Cross-validation figures, confusion matrices, learning curve."))
        self.addOutput(QgsProcessingOutputNumber(self.CV_OA, "Blocked-CV overall accuracy (head)"))
        self.addOutput(QgsProcessingOutputNumber(self.CV_OA_RF,
                                                 "Blocked-CV overall accuracy (random forest)"))
        self.addOutput(QgsProcessingOutputString(self.VERDICT, "Which is better"))

    def model_metadata(self, parameters, context):
        path = self.parameterAsFile(parameters, self.MODEL, context) or DEFAULT_MODEL
        from engine.contract import read_model_metadata

        return path, self.engine_call(read_model_metadata, path)

    # ------------------------------------------------------------------ running
    def labels(self, parameters, context):
        """(shapes [(geojson, class index)], CRS WKT, [ClassDef]); every layer's geometries
        are transformed to the first layer's CRS."""
        from qgis.core import QgsCoordinateTransform

        from engine.classes.train import ClassDef

        layers = self.parameterAsLayerList(parameters, self.LABELS, context) or []
        if not layers:
            raise QgsProcessingException("LABELS: no layer given")
        field = self.parameterAsString(parameters, self.CLASS_FIELD, context).strip()
        color_field = self.parameterAsString(parameters, self.COLOR_FIELD, context).strip()
        crs = layers[0].crs()
        items, colours = [], {}
        for layer in layers:
            for key, name in ((self.CLASS_FIELD, field), (self.COLOR_FIELD, color_field)):
                if name and layer.fields().indexOf(name) < 0:
                    raise QgsProcessingException(
                        f"{key}: label layer '{layer.name()}' has no field '{name}' (fields: "
                        f"{', '.join(layer.fields().names())})")
            transform = (QgsCoordinateTransform(layer.crs(), crs, context.transformContext())
                         if layer.crs() != crs else None)
            for feature in layer.getFeatures():
                value = feature[field]
                geom = feature.geometry()
                if value is None or str(value).strip() in ("", "NULL") or geom is None \
                        or geom.isEmpty():
                    continue
                label = str(value).strip()
                if isinstance(value, float) and value.is_integer():
                    label = str(int(value))
                if transform is not None:
                    geom.transform(transform)
                items.append((json.loads(geom.asJson()), label))
                if color_field and label not in colours:
                    colours[label] = _colour(feature[color_field], label)
        items, self._label_notes = merge_case_variants(items)
        names = sorted({label for _, label in items}, key=_sort_key)
        if len(names) < 2:
            raise QgsProcessingException(
                f"CLASS_FIELD: the labels hold {len(names)} class(es) ({', '.join(names)}); at "
                "least 2 are needed")
        index = {n: i for i, n in enumerate(names)}
        classes = [ClassDef(n, colours.get(n) or PALETTE[i % len(PALETTE)])
                   for i, n in enumerate(names)]
        return [(g, index[label]) for g, label in items], crs.toWkt(), classes

    def prepareAlgorithm(self, parameters, context, feedback):
        """Read the label layers here: Processing calls this in the main thread (also for a
        background QgsProcessingAlgRunnerTask), where project layers may be read; a layer
        read from the task's thread can crash QGIS. A problem found here is raised by
        processAlgorithm, so that it reaches the user the same way as every other error."""
        try:
            self._labels = self.labels(parameters, context)
        except QgsProcessingException as exc:
            self._labels = exc
        return True

    def processAlgorithm(self, parameters, context, feedback):
        self.check_dependencies()
        model_path, meta = self.model_metadata(parameters, context)
        matched = self.matched_inputs(meta, self.layer_inputs(parameters, context), parameters,
                                      context)
        if isinstance(self._labels, Exception):
            raise self._labels
        shapes, crs, classes = self._labels
        for note in getattr(self, "_label_notes", []):
            feedback.pushWarning(note)
        out = self.parameterAsFileOutput(parameters, self.OUTPUT_MODEL, context)
        if not out.lower().endswith(".onnx"):
            raise QgsProcessingException(f"OUTPUT_MODEL: '{out}' must end in .onnx")
        from engine.classes.train import TrainOptions, train_classes, training_html

        threads = self.parameterAsInt(parameters, self.THREADS, context) or None
        options = TrainOptions(
            head=self.parameterAsEnumString(parameters, self.HEAD, context) or "logistic",
            block_m=self.parameterAsDouble(parameters, self.BLOCK_SIZE, context) or None,
            folds=self.parameterAsInt(parameters, self.FOLDS, context),
            compare_rf=self.parameterAsBoolean(parameters, self.COMPARE_RF, context),
            threads=threads, name=self.parameterAsString(parameters, self.NAME, context).strip(),
            tile_overlap_pct=self.parameterAsInt(parameters, self.TILE_OVERLAP, context),
            batch_size=self.parameterAsInt(parameters, self.BATCH_SIZE, context),
            device=self.parameterAsEnumString(parameters, self.DEVICE, context) or "auto")
        feedback.pushInfo(f"Base model: {meta.name} ({meta.task}), {model_path}; classes: "
                          + ", ".join(c.name for c in classes))

        def progress(fraction, message=""):
            feedback.setProgress(100.0 * fraction)
            if message:
                feedback.setProgressText(message)

        report = self.engine_call(train_classes, model_path,
                                  plugin_inputs.to_engine_inputs(matched), shapes, crs, classes,
                                  out, options, progress=progress,
                                  is_cancelled=feedback.isCanceled, log=engine_log(feedback))
        results = {self.OUTPUT_MODEL: out, self.CV_OA: report.head["overall_accuracy"],
                   self.CV_OA_RF: (report.forest or {}).get("overall_accuracy"),
                   self.VERDICT: report.verdict}
        html_path = self.parameterAsFileOutput(parameters, self.REPORT, context)
        if html_path:
            with open(html_path, "w", encoding="utf-8") as fh:
                fh.write(training_html(report))
            results[self.REPORT] = html_path
        return results


def _sort_key(name: str):
    """Numbers in numeric order, then names alphabetically."""
    return (0, int(name), "") if name.lstrip("-").isdigit() else (1, 0, name.lower())


def _colour(value, label: str) -> str | None:
    from qgis.PyQt.QtGui import QColor

    if value is None or str(value).strip() in ("", "NULL"):
        return None
    colour = QColor(str(value).strip())
    if not colour.isValid():
        raise QgsProcessingException(f"COLOR_FIELD: '{value}' (class '{label}') is not a colour "
                                     "(#rrggbb or a colour name)")
    return colour.name()

