"""The issue-13 algorithms are registered in the maestro provider with help on every
parameter."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.usefixtures("maestro")


@pytest.mark.parametrize("name", ["accuracy_assessment", "train_classes", "similarity", "change"])
def test_registered_with_help(name):
    from qgis.core import QgsApplication

    alg = QgsApplication.processingRegistry().algorithmById(f"maestro:{name}")
    assert alg is not None and alg.provider().id() == "maestro" and not alg.icon().isNull()
    assert all("optional" not in p.description().lower() for p in alg.parameterDefinitions())
    assert len(alg.shortHelpString()) > 300
    for param in alg.parameterDefinitions():
        assert param.help(), f"{name}.{param.name()} has no help"
