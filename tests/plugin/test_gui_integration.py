"""The algorithms in QGIS's own Processing GUI: the Toolbox dialog builds a widget for every
parameter, and the graphical model loads with maestro:segment resolved as a child."""
import os

from tests.conftest import ROOT


def test_toolbox_dialog_builds_every_parameter_widget(maestro, qgis_iface, monkeypatch):
    from processing.gui.AlgorithmDialog import AlgorithmDialog
    from qgis.core import QgsApplication
    from qgis.gui import QgsBrowserGuiModel

    # pytest-qgis' iface has no browser model (a MagicMock): give it a real one
    browser = QgsBrowserGuiModel()
    monkeypatch.setattr(qgis_iface, "browserModel", lambda: browser, raising=False)

    for name in ("segment", "classify", "embed", "model_info"):
        alg = QgsApplication.processingRegistry().createAlgorithmById(f"maestro:{name}")
        dialog = AlgorithmDialog(alg, parent=qgis_iface.mainWindow())
        try:
            panel = dialog.mainWidget()
            expected = {p.name() for p in alg.parameterDefinitions()}
            assert expected == set(panel.wrappers), expected ^ set(panel.wrappers)
        finally:
            dialog.deleteLater()


def test_graphical_model_loads_with_the_maestro_child(maestro):
    from qgis.core import QgsProcessingModelAlgorithm

    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(os.path.join(ROOT, "resources", "models",
                                       "maestro_landcover_areas.model3"))
    children = model.childAlgorithms()
    assert set(children) == {"segment", "polygonize", "dissolve", "area_m2", "area_ha"}
    assert children["segment"].algorithm().id() == "maestro:segment"
    assert all(child.algorithm() is not None for child in children.values())
    names = {p.name() for p in model.parameterDefinitions()}
    assert {"MODEL", "S2", "DEM", "segment:LAND_COVER", "area_ha:CLASS_AREAS"} <= names
