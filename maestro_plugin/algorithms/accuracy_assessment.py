"""maestro:accuracy_assessment: accuracy and area estimates of a classified map from
reference sample points (Olofsson et al. 2014, engine/accuracy.py)."""
from __future__ import annotations

import json

from qgis.core import (QgsCoordinateReferenceSystem, QgsCoordinateTransform, QgsFeature,
                       QgsFeatureSink, QgsField, QgsFields, Qgis,
                       QgsProcessingException, QgsProcessingOutputNumber,
                       QgsProcessingParameterFeatureSink, QgsProcessingParameterFeatureSource,
                       QgsProcessingParameterField, QgsProcessingParameterFileDestination,
                       QgsProcessingParameterRasterLayer)
from qgis.PyQt.QtCore import QMetaType

from .base import MaestroAlgorithm

HELP = (
    "<p>Accuracy assessment and area estimation of a classified map from a reference sample, "
    "with the stratified estimators of Olofsson et al. (2014, Remote Sensing of Environment "
    "148, 42-57, 'Good practices for estimating area and assessing accuracy of land change'). "
    "The sample must be a probability sample: stratified random with the map classes as strata "
    "(the paper's recommendation), or simple random / systematic (then the estimates are "
    "post-stratified). Points digitised by hand where the map looks right are not a sample: "
    "their accuracies say nothing about the map.</p>"
    "<p><b>INPUT</b>: the classified map (band 1: class ids; its nodata is not a class). Class "
    "names come from the map's categories (maps written by maestro:segment carry them).</p>"
    "<p><b>REFERENCE</b>: points with the reference (true) class of each; points outside the "
    "map or on nodata are left out and counted in the log.</p>"
    "<p><b>CLASS_FIELD</b>: the reference class: a class name as the map names it (case does "
    "not matter; names first, so a model trained on labels coded 2, 3, 4, 8 is matched by "
    "those codes) or else a class id (number). A reference class the map never shows is kept "
    "(its producer's accuracy is 0) and named in a warning.</p>"
    "<p><b>OUTPUT</b>: a table, one row per class: mapped area and share, sample counts, user's "
    "and producer's accuracy with their 95 % confidence half-widths, the estimated area with "
    "its 95 % half-width, and the error matrix in area proportions (columns p_ref_&lt;id&gt;: "
    "row = map class, column = reference class). Areas in hectares for a projected map, in "
    "pixels for a geographic one.</p>"
    "<p><b>REPORT</b>: the same as an HTML page, with the sample counts.</p>"
    "<p>At least 2 sample points per mapped class are needed (the variances divide by "
    "n - 1).</p>")


class AccuracyAssessmentAlgorithm(MaestroAlgorithm):
    INPUT = "INPUT"
    REFERENCE = "REFERENCE"
    CLASS_FIELD = "CLASS_FIELD"
    OUTPUT = "OUTPUT"
    REPORT = "REPORT"
    OVERALL = "OVERALL_ACCURACY"
    OVERALL_CI = "OVERALL_ACCURACY_CI95"
    SAMPLE_SIZE = "SAMPLE_SIZE"

    def name(self):
        return "accuracy_assessment"

    def displayName(self):
        return "Accuracy assessment and area estimates"

    def shortHelpString(self):
        return HELP

    def initAlgorithm(self, config=None):
        def add(param, text):
            param.setHelp(text)
            self.addParameter(param)

        add(QgsProcessingParameterRasterLayer(self.INPUT, "Classified map"),
            "Band 1: integer class ids; its nodata value is not a class.")
        add(QgsProcessingParameterFeatureSource(
            self.REFERENCE, "Reference sample points", [Qgis.ProcessingSourceType.VectorPoint]),
            "A probability sample of points with their reference (true) class.")
        add(QgsProcessingParameterField(
            self.CLASS_FIELD, "Reference class field (id or name)",
            parentLayerParameterName=self.REFERENCE),
            "Class id (number) or class name as the map names it.")
        add(QgsProcessingParameterFeatureSink(
            self.OUTPUT, "Accuracy and area table", Qgis.ProcessingSourceType.Vector),
            "One row per class: accuracies, areas, 95 % half-widths, error matrix row.")
        add(QgsProcessingParameterFileDestination(
            self.REPORT, "HTML report", "HTML files (*.html)", optional=True,
            createByDefault=True), "The same figures as a page, with the sample counts.")
        self.addOutput(QgsProcessingOutputNumber(self.OVERALL, "Overall accuracy"))
        self.addOutput(QgsProcessingOutputNumber(self.OVERALL_CI, "Overall accuracy 95 % half-width"))
        self.addOutput(QgsProcessingOutputNumber(self.SAMPLE_SIZE, "Sample points used"))

    # ------------------------------------------------------------------ running
    def processAlgorithm(self, parameters, context, feedback):
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        source = self.parameterAsSource(parameters, self.REFERENCE, context)
        field = self.parameterAsString(parameters, self.CLASS_FIELD, context)
        if layer is None or source is None:
            raise QgsProcessingException("INPUT and REFERENCE are required")
        if source.fields().indexOf(field) < 0:
            raise QgsProcessingException(f"CLASS_FIELD: the reference layer has no field '{field}'")
        xs, ys, refs = self._points(source, field, layer.crs(), context, feedback)
        from engine.classmap import read_class_map

        cmap = self.engine_call(read_class_map, layer.source(), xs, ys,
                                progress=lambda f: feedback.setProgress(90 * f),
                                is_cancelled=feedback.isCanceled)
        assessment, names, skipped, warnings = self.engine_call(self._assess, cmap, refs)
        for line in warnings:
            feedback.pushWarning(line)
        if skipped:
            feedback.pushWarning(f"{skipped} reference point(s) outside the map or on nodata "
                                 "were left out")
        unit, scale = ("ha", cmap.pixel_area / 10000.0) if cmap.area_unit == "m2" else ("pixels", 1.0)
        self._log(feedback, assessment, names, unit, scale)
        sink_id = self._write_table(parameters, context, assessment, names, unit, scale)
        results = {self.OUTPUT: sink_id, self.OVERALL: assessment.overall,
                   self.OVERALL_CI: assessment.overall_ci, self.SAMPLE_SIZE: assessment.sample_size}
        report = self.parameterAsFileOutput(parameters, self.REPORT, context)
        if report:
            with open(report, "w", encoding="utf-8") as fh:
                fh.write(accuracy_html(assessment, names, unit, scale, layer.source(), skipped))
            results[self.REPORT] = report
        return results

    def _points(self, source, field, raster_crs, context, feedback):
        """Points in the raster's CRS and their reference values (None = empty, skipped)."""
        transform = None
        if source.sourceCrs().isValid() and raster_crs.isValid() and source.sourceCrs() != raster_crs:
            transform = QgsCoordinateTransform(source.sourceCrs(), raster_crs,
                                               context.transformContext())
        xs, ys, refs = [], [], []
        empty = 0
        for feature in source.getFeatures():
            value = feature[field]
            geom = feature.geometry()
            if value is None or str(value).strip() in ("", "NULL") or geom is None \
                    or geom.isEmpty():
                empty += 1
                continue
            if transform is not None:
                geom.transform(transform)
            for part in (geom.asMultiPoint() if geom.isMultipart() else [geom.asPoint()]):
                xs.append(part.x())
                ys.append(part.y())
                refs.append(value)
        if empty:
            feedback.pushWarning(f"{empty} reference feature(s) without a class or geometry "
                                 "were left out")
        if not refs:
            raise QgsProcessingException("REFERENCE: no point with a class value")
        return xs, ys, refs

    @staticmethod
    def _assess(cmap, refs):
        """(Assessment, class id -> name, points skipped) from the map read and the
        reference values."""
        from engine.accuracy import assess
        from engine.errors import InputError

        names = dict(cmap.names)
        ref_ids, warnings = reference_ids(refs, names, set(cmap.counts))
        pairs = [(int(m), r) for m, r in zip(cmap.at_points, ref_ids) if m >= 0]
        skipped = len(ref_ids) - len(pairs)
        if not pairs:
            raise InputError("no reference point falls on a classified pixel of the map")
        ids = sorted(set(cmap.counts) | {r for _, r in pairs})
        index = {c: i for i, c in enumerate(ids)}
        import numpy as np

        counts = np.zeros((len(ids), len(ids)), dtype=np.int64)
        for m, r in pairs:
            counts[index[m], index[r]] += 1
        area = np.array([cmap.counts.get(c, 0) for c in ids], dtype=np.float64)
        result = assess(counts, area, ids)
        for c in ids:
            names.setdefault(c, str(c))
        return result, names, skipped, warnings

    @staticmethod
    def _log(feedback, a, names, unit, scale):
        feedback.pushInfo(f"Sample points used: {a.sample_size}; overall accuracy "
                          f"{a.overall:.3f} ± {a.overall_ci:.3f} (95 %)")
        for row in a.rows():
            c = row["class"]
            feedback.pushInfo(
                f"{names[c]} ({c}): user's {_pm(row['users'], row['users_ci'])}, producer's "
                f"{_pm(row['producers'], row['producers_ci'])}, area "
                f"{row['area'] * scale:.6g} ± {row['area_ci'] * scale:.6g} {unit} (95 %)")

    def _write_table(self, parameters, context, a, names, unit, scale):
        fields = QgsFields()
        for name, kind in (("class_id", QMetaType.Type.Int), ("class_name", QMetaType.Type.QString),
                           (f"mapped_{unit}", QMetaType.Type.Double), ("mapped_share", QMetaType.Type.Double),
                           ("n_map", QMetaType.Type.Int), ("n_reference", QMetaType.Type.Int),
                           ("users_acc", QMetaType.Type.Double), ("users_ci95", QMetaType.Type.Double),
                           ("producers_acc", QMetaType.Type.Double), ("producers_ci95", QMetaType.Type.Double),
                           (f"area_{unit}", QMetaType.Type.Double), (f"area_ci95_{unit}", QMetaType.Type.Double),
                           ("area_share", QMetaType.Type.Double), ("area_share_se", QMetaType.Type.Double)):
            fields.append(QgsField(name, kind))
        for c in a.classes:
            fields.append(QgsField(f"p_ref_{c}", QMetaType.Type.Double))
        sink, dest = self.parameterAsSink(parameters, self.OUTPUT, context, fields,
                                          Qgis.WkbType.NoGeometry, QgsCoordinateReferenceSystem())
        if sink is None:
            raise QgsProcessingException("OUTPUT: the table cannot be created")
        for i, row in enumerate(a.rows()):
            f = QgsFeature(fields)
            values = [int(row["class"]), names[row["class"]], row["mapped_area"] * scale,
                      row["mapped_share"], row["n_map"], row["n_reference"], row["users"],
                      row["users_ci"], row["producers"], row["producers_ci"],
                      row["area"] * scale, row["area_ci"] * scale, row["area_proportion"],
                      row["area_proportion_se"]]
            values += [float(p) for p in a.proportions[i]]
            f.setAttributes(values)
            sink.addFeature(f, QgsFeatureSink.Flag.FastInsert)
        return dest


def reference_ids(refs, names: dict, mapped: set) -> tuple[list[int], list[str]]:
    """Reference values -> class ids, and warning lines.

    A value that is one of the map's class names (exactly, else ignoring case) is that
    class, also when the names are numbers (a model trained on labels coded 2, 3, 4, 8 names
    its classes "2", "3", "4", "8" with ids 0-3: a reference "2" is the class named "2", not
    id 2). Otherwise a whole number is a class id. A value that is neither is kept as a
    reference class the map never shows (producer's accuracy 0), with a warning, as is an id
    that is not one of the map's classes (codes of another legend).

    Args:
        refs: the reference values (numbers or text). names: class id -> name of the map.
        mapped: the class ids present in the map.
    """
    exact = {str(n).strip(): i for i, n in names.items()}
    folded: dict[str, int] = {}
    for n, i in exact.items():
        folded.setdefault(n.lower(), i)
    known = set(names) | set(mapped)
    resolved: list[int | str] = []              # an id, or a text kept as a new class
    for value in refs:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        text = str(value).strip()
        if text in exact:
            resolved.append(exact[text])
        elif text.lower() in folded:
            resolved.append(folded[text.lower()])
        elif text.lstrip("-").isdigit():
            resolved.append(int(text))
        else:
            resolved.append(text)
    taken = known | {r for r in resolved if isinstance(r, int)}
    unknown_ids = {r for r in resolved if isinstance(r, int) and r not in known}
    extra: dict[str, int] = {}
    for r in resolved:                          # new ids after every id in use
        if isinstance(r, str) and r not in extra:
            extra[r] = max(taken | set(extra.values()) | {-1}) + 1
            names[extra[r]] = r
    ids = [extra[r] if isinstance(r, str) else r for r in resolved]
    warnings = []
    legend = ", ".join(f"{i} {names[i]}" for i in sorted(names) if i not in extra.values())
    if unknown_ids:
        warnings.append(f"reference value(s) {', '.join(map(str, sorted(unknown_ids)))} are not "
                        f"classes of the map ({legend or 'no class names'}): if they are codes of "
                        "another legend, translate them to the map's classes first; kept as "
                        "classes the map never shows (producer's accuracy 0)")
    if extra:
        warnings.append(f"reference class(es) {', '.join(repr(t) for t in extra)} are not among "
                        f"the map's classes ({legend or 'no class names'}): kept as classes the "
                        "map never shows (producer's accuracy 0)")
    return ids, warnings


def _pm(value, ci):
    return "–" if value is None else f"{value:.3f} ± {ci:.3f}"


def accuracy_html(a, names, unit, scale, map_path, skipped=0) -> str:
    """The HTML report of an assessment."""
    from engine.classes import report as H

    labels = [f"{names[c]} ({c})" for c in a.classes]
    parts = [H.paragraph(f"Map: {map_path}. Sample points used: {a.sample_size}"
                         + (f" ({skipped} outside the map or on nodata left out)" if skipped else "")
                         + f". Overall accuracy {a.overall:.3f} ± {a.overall_ci:.3f} "
                         "(95 % confidence interval)."),
             H.heading("Accuracy and area per class"),
             H.table(["class", f"mapped ({unit})", "mapped share", "user's", "± 95 %",
                      "producer's", "± 95 %", f"estimated area ({unit})", "± 95 %"],
                     [[lab, r["mapped_area"] * scale, r["mapped_share"], r["users"], r["users_ci"],
                       r["producers"], r["producers_ci"], r["area"] * scale, r["area_ci"] * scale]
                      for lab, r in zip(labels, a.rows())]),
             H.heading("Error matrix in area proportions (rows: map, columns: reference)"),
             H.table(["map \\ reference", *labels, "total"],
                     [[lab, *[float(p) for p in a.proportions[i]], float(a.proportions[i].sum())]
                      for i, lab in enumerate(labels)]
                     + [["total", *[float(x) for x in a.proportions.sum(0)], 1.0]]),
             H.heading("Sample counts (rows: map, columns: reference)"),
             H.table(["map \\ reference", *labels, "total"],
                     [[lab, *[int(x) for x in a.counts[i]], int(a.counts[i].sum())]
                      for i, lab in enumerate(labels)]),
             H.paragraph("Estimators: Olofsson, P., Foody, G.M., Herold, M., Stehman, S.V., "
                         "Woodcock, C.E., Wulder, M.A. (2014). Good practices for estimating area "
                         "and assessing accuracy of land change. Remote Sensing of Environment "
                         "148, 42-57, equations 1-11 (stratified random sample, strata = map "
                         "classes; post-stratified for a simple random or systematic sample). "
                         "Intervals: estimate ± 1.96 standard errors.", note=True),
             f"<!-- {json.dumps({'overall': a.overall, 'overall_ci': a.overall_ci})} -->"]
    return H.page("MAESTRO accuracy assessment", parts)
