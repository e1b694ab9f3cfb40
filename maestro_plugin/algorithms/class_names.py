"""maestro:class_names: add the model's class names and colours to features that carry a
class id (e.g. polygonised land cover), and style them by class when loaded.

The last step of the graphical model resources/models/maestro_landcover_areas.model3.
"""
from __future__ import annotations

from qgis.core import (Qgis, QgsCategorizedSymbolRenderer, QgsFeature, QgsFeatureSink,
                       QgsField, QgsFields, QgsProcessingException, QgsProcessingParameterField,
                       QgsProcessingParameterFeatureSink, QgsProcessingParameterFeatureSource,
                       QgsProcessingParameterFile, QgsProcessingLayerPostProcessorInterface,
                       QgsRendererCategory, QgsSymbol, QgsVectorLayer)
from qgis.PyQt.QtCore import QMetaType
from qgis.PyQt.QtGui import QColor

from .base import DEFAULT_MODEL, MaestroAlgorithm


def categorized_renderer(classes, field: str = "class_name") -> QgsCategorizedSymbolRenderer:
    """One category per class: value = class name, fill = the model's colour."""
    categories = []
    for c in classes:
        symbol = QgsSymbol.defaultSymbol(Qgis.GeometryType.Polygon)
        symbol.setColor(QColor(c.color))
        categories.append(QgsRendererCategory(c.name, symbol, c.name))
    return QgsCategorizedSymbolRenderer(field, categories)


class ClassStyler(QgsProcessingLayerPostProcessorInterface):
    """Categorised style by class name, applied when Processing loads the output."""

    def __init__(self, classes):
        super().__init__()
        self.classes = tuple(classes)

    def postProcessLayer(self, layer, context, feedback):
        try:
            if isinstance(layer, QgsVectorLayer) and layer.isValid():
                layer.setRenderer(categorized_renderer(self.classes))
                layer.triggerRepaint()
        except Exception as exc:  # noqa: BLE001 (a style problem must not fail the run)
            feedback.reportError(f"MAESTRO: could not style {layer.name()}: {exc}")


_KEEP: list[ClassStyler] = []


class ClassNamesAlgorithm(MaestroAlgorithm):
    INPUT = "INPUT"
    FIELD = "FIELD"
    MODEL = "MODEL"
    OUTPUT = "OUTPUT"

    def name(self):
        return "class_names"

    def displayName(self):
        return "Add class names and colours"

    def shortHelpString(self):
        return ("Adds the model's class name (class_name) and colour (color, #rrggbb) to "
                "every feature whose class id field holds one of the model's class ids, and "
                "styles the result by class (categorised, the model's colours) when it is "
                "loaded.\n\nINPUT: features with a class id (e.g. gdal:polygonize of a "
                "land-cover map).\nFIELD: the class id field (default class_id).\nMODEL: the "
                "MAESTRO model whose classes are used; empty = the bundled default model.\n"
                "A class id the model does not have is an error naming it.")

    def initAlgorithm(self, config=None):
        source = QgsProcessingParameterFeatureSource(self.INPUT, "Features with a class id")
        source.setHelp("Features whose class id field holds the model's class ids, e.g. "
                       "gdal:polygonize of a land-cover map.")
        self.addParameter(source)
        field = QgsProcessingParameterField(
            self.FIELD, "Class id field", defaultValue="class_id",
            parentLayerParameterName=self.INPUT,
            type=Qgis.ProcessingFieldParameterDataType.Numeric)
        field.setHelp("The numeric field holding the class id (default class_id).")
        self.addParameter(field)
        model = QgsProcessingParameterFile(
            self.MODEL, "MAESTRO model (.onnx; empty = bundled default)", extension="onnx",
            optional=True)
        model.setHelp("The model whose class names and colours are used.")
        self.addParameter(model)
        sink = QgsProcessingParameterFeatureSink(self.OUTPUT, "Classes")
        sink.setHelp("The input features with class_name and color added.")
        self.addParameter(sink)

    def processAlgorithm(self, parameters, context, feedback):
        from ..model_file import read_model_card

        path = self.parameterAsFile(parameters, self.MODEL, context) or DEFAULT_MODEL
        meta = self.engine_call(read_model_card, path)
        if not meta.classes:
            raise QgsProcessingException(f"model '{meta.name}' has no classes (task {meta.task})")
        by_id = {int(c.id): c for c in meta.classes}
        source = self.parameterAsSource(parameters, self.INPUT, context)
        field = self.parameterAsString(parameters, self.FIELD, context) or "class_id"
        index = source.fields().lookupField(field)
        if index < 0:
            raise QgsProcessingException(f"INPUT has no field '{field}'")
        fields = QgsFields(source.fields())
        fields.append(QgsField("class_name", QMetaType.Type.QString))
        fields.append(QgsField("color", QMetaType.Type.QString))
        sink, dest = self.parameterAsSink(parameters, self.OUTPUT, context, fields,
                                          source.wkbType(), source.sourceCrs())
        total = max(source.featureCount(), 1)
        for i, feature in enumerate(source.getFeatures()):
            if feedback.isCanceled():
                break
            value = feature[index]
            try:
                cls = by_id[int(value)]
            except (KeyError, TypeError, ValueError):
                raise QgsProcessingException(
                    f"feature {feature.id()}: class id {value!r} is not a class of model "
                    f"'{meta.name}' (ids {sorted(by_id)})") from None
            out = QgsFeature(fields)
            out.setGeometry(feature.geometry())
            out.setAttributes(list(feature.attributes()) + [cls.name, cls.color])
            sink.addFeature(out, QgsFeatureSink.Flag.FastInsert)
            feedback.setProgress(100.0 * (i + 1) / total)
        if context.willLoadLayerOnCompletion(dest):
            styler = ClassStyler(meta.classes)
            _KEEP.append(styler)
            context.layerToLoadOnCompletionDetails(dest).setPostProcessor(styler)
        return {self.OUTPUT: dest}
