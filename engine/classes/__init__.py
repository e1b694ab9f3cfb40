"""The analyst's own classes (issue 13): labels onto the reference grid, features from a
model's encoder, a head fitted with scikit-learn and merged into the model file, blocked
cross-validation, similarity and change. numpy + rasterio (+ scikit-learn and onnx where a
head is trained); never QGIS or torch."""
