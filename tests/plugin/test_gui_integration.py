"""The algorithms in QGIS's own Processing GUI: the Toolbox dialog builds a widget for every
parameter, the words shown (group, labels, help), and the graphical model (children
resolved, readable output names, S1 and SPOT inputs, boxes on the canvas, not overlapping,
class names and categorised style of the area polygons)."""
import os


from tests.conftest import ROOT

MODEL3 = os.path.join(ROOT, "resources", "models", "maestro_landcover_areas.model3")


def test_toolbox_dialog_builds_every_parameter_widget(maestro, qgis_iface, monkeypatch):
    from processing.gui.AlgorithmDialog import AlgorithmDialog
    from qgis.core import QgsApplication
    from qgis.gui import QgsBrowserGuiModel

    # pytest-qgis' iface has no browser model (a MagicMock): give it a real one
    browser = QgsBrowserGuiModel()
    monkeypatch.setattr(qgis_iface, "browserModel", lambda: browser, raising=False)

    for name in ("segment", "classify", "embed", "model_info", "class_names"):
        alg = QgsApplication.processingRegistry().createAlgorithmById(f"maestro:{name}")
        dialog = AlgorithmDialog(alg, parent=qgis_iface.mainWindow())
        try:
            panel = dialog.mainWidget()
            expected = {p.name() for p in alg.parameterDefinitions()}
            assert expected == set(panel.wrappers), expected ^ set(panel.wrappers)
        finally:
            dialog.deleteLater()


def test_toolbox_words(maestro):
    """No 'MAESTRO > MAESTRO' group, no doubled '(optional' in labels, the default model's
    inputs named in labels and help, '1 band' in the model report."""
    from qgis.core import QgsApplication

    registry = QgsApplication.processingRegistry()
    provider = registry.providerById("maestro")
    assert provider.name() == "MAESTRO"
    for alg in provider.algorithms():
        assert alg.group() != provider.name(), alg.id()
        for param in alg.parameterDefinitions():
            assert "optional" not in param.description().lower(), (alg.id(), param.name())
    seg = registry.createAlgorithmById("maestro:segment")
    labels = {p.name(): p.description() for p in seg.parameterDefinitions()}
    assert labels["S2"] == "Sentinel-2 time series [S2] (needed by the default model)"
    assert labels["DEM"].endswith("(needed by the default model)")
    assert "needed" not in labels["AERIAL"] and "needed" not in labels["SPOT"]
    assert "The bundled default model needs this input" in \
        seg.parameterDefinition("S2").help()
    assert "Inputs the bundled default model needs: S2, DEM" in seg.shortHelpString()
    import processing

    report = processing.run("maestro:model_info", {"MODEL": ""})["REPORT"]
    assert "dem: 1 band (elevation)" in report and "1 bands" not in report


def _rect(comp):
    pos, size = comp.position(), comp.size()
    return (pos.x() - size.width() / 2, pos.y() - size.height() / 2,
            pos.x() + size.width() / 2, pos.y() + size.height() / 2)


def test_graphical_model_layout_inputs_and_outputs(maestro):
    from qgis.core import QgsProcessingModelAlgorithm

    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(MODEL3)
    children = model.childAlgorithms()
    assert set(children) == {"segment", "polygonize", "dissolve", "area_m2", "area_ha",
                             "class_names"}
    assert children["segment"].algorithm().id() == "maestro:segment"
    assert children["class_names"].algorithm().id() == "maestro:class_names"
    assert all(child.algorithm() is not None for child in children.values())
    names = {p.name() for p in model.parameterDefinitions()}
    assert {"MODEL", "AERIAL", "DEM", "S2", "S1_ASC", "S1_DESC", "S1", "SPOT"} <= names
    outputs = {p.name(): p.description() for p in model.destinationParameterDefinitions()}
    assert outputs == {"land_cover": "Land cover",
                       "class_areas": "Class areas"}
    # every box on the canvas (x, y >= 0) and no two boxes overlapping
    boxes = [(f"input {n}", _rect(c)) for n, c in model.parameterComponents().items()]
    boxes += [(f"step {n}", _rect(c)) for n, c in children.items()]
    boxes += [(f"output {n}", _rect(o)) for c in children.values()
              for n, o in c.modelOutputs().items()]
    for name, (x0, y0, _, _) in boxes:
        assert x0 >= 0 and y0 >= 0, name
    for i, (a, ra) in enumerate(boxes):
        for b, rb in boxes[i + 1:]:
            apart = ra[2] <= rb[0] or rb[2] <= ra[0] or ra[3] <= rb[1] or rb[3] <= ra[1]
            assert apart, (a, b)


def test_graphical_model_areas_have_class_names_and_categorised_style(
        maestro, qgis_iface, tiny_models, rasters, tmp_path):
    """Run in process as the Toolbox does (outputs loaded): the area polygons carry the
    model's class names and colours and are styled by class."""
    import processing
    from qgis.core import (QgsCategorizedSymbolRenderer, QgsProcessingContext,
                           QgsProcessingFeedback, QgsProject)

    from engine.contract import read_model_metadata

    meta = read_model_metadata(tiny_models["segmentation"])
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    areas_path = str(tmp_path / "areas.gpkg")
    params = {"MODEL": tiny_models["segmentation"], "S2": rasters.s2[:2], "DEM": [rasters.dem],
              "land_cover": str(tmp_path / "lc.tif"),
              "class_areas": areas_path}
    try:
        results = processing.runAndLoadResults("model:" + MODEL3, params, context=context,
                                               feedback=QgsProcessingFeedback())
    except Exception:  # noqa: BLE001 (older processing: run the model file as an algorithm)
        from qgis.core import QgsProcessingModelAlgorithm

        model = QgsProcessingModelAlgorithm()
        model.fromFile(MODEL3)
        results = processing.runAndLoadResults(model, params, context=context,
                                               feedback=QgsProcessingFeedback())
    layers = [lyr for lyr in QgsProject.instance().mapLayers().values()
              if lyr.source().split("|")[0] == areas_path]
    try:
        assert len(layers) == 1, results
        layer = layers[0]
        by_id = {c.id: c for c in meta.classes}
        rows = [(f["class_id"], f["class_name"], f["color"]) for f in layer.getFeatures()]
        assert rows and all(name == by_id[cid].name and color == by_id[cid].color
                            for cid, name, color in rows)
        renderer = layer.renderer()
        assert isinstance(renderer, QgsCategorizedSymbolRenderer)
        assert renderer.classAttribute() == "class_name"
        assert [(c.value(), c.symbol().color().name()) for c in renderer.categories()] == [
            (c.name, c.color.lower()) for c in meta.classes]
        assert layer.name() != "CLASS_AREAS"
    finally:
        layer = layers = renderer = None
        QgsProject.instance().removeAllMapLayers()
