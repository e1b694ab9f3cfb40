"""maestro:model_info: validate an ONNX model and report its MAESTRO metadata."""
from __future__ import annotations

from qgis.core import (QgsProcessingOutputString, QgsProcessingParameterFile,
                       QgsProcessingParameterFileDestination)

from .base import DEFAULT_MODEL, MaestroAlgorithm


def describe_scaling(scaling) -> str:
    """'x / 5000', 'log(x) / 5' or '(x - mean) / std per band' for a contract Scaling."""
    f = "log(x)" if scaling.transform == "log" else "x"
    if len(set(scaling.std)) == 1 and not any(scaling.mean):
        return f"{f} / {scaling.std[0]:g}"
    return f"({f} - mean) / std per band"


def format_report(meta) -> str:
    """Human-readable summary of a ModelMetadata."""
    version = f" (version {meta.version})" if str(meta.version).strip() else ""
    lines = [f"Model: {meta.name}{version}",
             f"Task: {meta.task}" + (" (multilabel)" if meta.multilabel else ""),
             f"Reference modality (output grid): {meta.reference_modality}",
             "Modalities:"]
    for m in meta.modalities:
        dates = f"{m.min_dates}" if m.min_dates == m.max_dates else f"{m.min_dates}-{m.max_dates}"
        bands = f"{len(m.bands)} band{'s' if len(m.bands) != 1 else ''}"
        lines.append(f"  {m.name}: {bands} ({', '.join(m.bands)}), {m.gsd_m:g} m, "
                     f"tile {m.tile_px} px, patch {m.patch_px} px, dates {dates}, "
                     f"scaling {describe_scaling(m.scaling)}, group {m.group}")
    if meta.classes:
        lines.append("Classes:")
        lines.extend(f"  {c.id}: {c.name} {c.color}" for c in meta.classes)
    if meta.embedding_dim:
        lines.append(f"Embedding dimension: {meta.embedding_dim}")
    lines.append("Provenance:")
    for key in sorted(meta.provenance):
        lines.append(f"  {key}: {meta.provenance[key]}")
    return "\n".join(lines)


def format_precision(record, int8_support) -> str:
    """Lines saying a model's precision from its ``quantisation`` record
    (engine.quantize.read_quantisation; None = a float32 model) and, for an int8 variant,
    whether this CPU has int8 dot-product instructions (engine.quantize.cpu_int8_support:
    True, False, None = unknown)."""
    if not record:
        return "Precision: float32 (not quantised)"
    from engine.quantize import int8_support_message

    agreement = record.get("agreement") or {}
    calibration = record.get("calibration")
    calibrated = (f"{calibration} on {record.get('calibration_tiles', '?')} tiles"
                  if calibration else "none (activations quantised per batch at run time)")
    speed = record.get("speed_vs_float32_at_conversion")
    lines = [
        f"Precision: int8 ({record.get('method', '?')}, {record.get('format', '?')})",
        f"  Quantised operators: {', '.join(record.get('quantised_operators') or []) or '?'}; "
        f"activations {record.get('activations', '?')}; weights {record.get('weights', '?')}",
        f"  Calibration: {calibrated}",
        f"  Agreement with float32: {agreement.get('value', '?')} ({agreement.get('metric', '?')})"
        f" on {agreement.get('check_tiles', '?')} check tiles; threshold "
        f"{agreement.get('threshold', '?')}",
        "  Speed vs float32 at conversion: "
        + (f"{speed:g}x" if isinstance(speed, (int, float)) else "?")
        + f" (measured on the converting machine, onnxruntime {record.get('onnxruntime', '?')})",
        f"  Source model: {record.get('source_model', '?')}",
        f"  This CPU: {int8_support_message(int8_support)}",
    ]
    return "\n".join(lines)


class ModelInfoAlgorithm(MaestroAlgorithm):
    MODEL = "MODEL"
    OUTPUT = "OUTPUT"
    REPORT = "REPORT"
    METADATA_JSON = "METADATA_JSON"
    QUANTISATION_JSON = "QUANTISATION_JSON"

    def name(self):
        return "model_info"

    def displayName(self):
        return "Model information"

    def shortHelpString(self):
        return ("Reads a MAESTRO ONNX model, checks it against the model contract "
                "(docs/model-contract.md) and reports its task, modalities (bands, pixel size, "
                "tile size, dates, scaling), classes and provenance, and its precision: "
                "float32, or for an int8 variant made by maestro:quantize_model its "
                "quantisation record (method, format, agreement with float32 and threshold, "
                "check tiles, speed vs float32 measured at conversion, source model) and "
                "whether this CPU has int8 dot-product instructions (VNNI; without them an "
                "int8 variant is likely slower than float32).\n\n"
                "MODEL: the .onnx file; empty means the bundled default model.\n"
                "OUTPUT: optional JSON file that receives the validated metadata.\n\n"
                "A file that is not ONNX, or an ONNX file without valid MAESTRO metadata, "
                "fails with a message naming the problem.")

    def initAlgorithm(self, config=None):
        model = QgsProcessingParameterFile(
            self.MODEL, "MAESTRO model (.onnx; empty = bundled default)",
            extension="onnx", optional=True)
        model.setHelp("A MAESTRO ONNX model; empty = the bundled default model.")
        self.addParameter(model)
        output = QgsProcessingParameterFileDestination(
            self.OUTPUT, "Metadata (JSON)", fileFilter="JSON files (*.json)", optional=True,
            createByDefault=False)
        output.setHelp("Optional JSON file receiving the validated metadata.")
        self.addParameter(output)
        self.addOutput(QgsProcessingOutputString(self.REPORT, "Report"))
        self.addOutput(QgsProcessingOutputString(self.METADATA_JSON, "Metadata JSON"))
        self.addOutput(QgsProcessingOutputString(
            self.QUANTISATION_JSON, "Quantisation record (JSON; empty for float32 models)"))

    def processAlgorithm(self, parameters, context, feedback):
        path = self.parameterAsFile(parameters, self.MODEL, context) or DEFAULT_MODEL
        from engine.contract import read_model_metadata

        from engine.quantize import cpu_int8_support, read_quantisation

        meta = self.engine_call(read_model_metadata, path)
        record = self.engine_call(read_quantisation, path)
        support = cpu_int8_support() if record else None
        report = format_report(meta) + "\n" + format_precision(record, support)
        feedback.pushInfo(report)
        if record and support is False:
            from engine.quantize import int8_support_message

            feedback.pushWarning(int8_support_message(support))
        out = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
        if out:
            with open(out, "w", encoding="utf-8") as fh:
                fh.write(meta.to_json())
        import json

        return {self.REPORT: report, self.METADATA_JSON: meta.to_json(), self.OUTPUT: out or None,
                self.QUANTISATION_JSON: json.dumps(record, sort_keys=True) if record else ""}
