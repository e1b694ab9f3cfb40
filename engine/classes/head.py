"""A class head fitted with scikit-learn on frozen encoder features, merged into a copy of
the MAESTRO ONNX model as plain ONNX operators (the ``onnx`` package), so that the new model
follows the contract and runs with the engine like any other segmentation model.

Features per pixel (``F = D + 2 C``), what :mod:`engine.classes.features` computes for
training and the merged graph computes at run time:

1. the model's ``embeddings`` [B, D, h, w] resized to the reference tile [B, D, H, W]
   (``Resize`` linear, ``half_pixel``: bilinear between token centres, clamped at edges);
2. the reference modality's scaled input [B, T, C, H, W]: mean and standard deviation over
   the dates present (its date mask), [B, 2C, H, W].

Head: standardisation (``(x - mean) / scale`` from sklearn's StandardScaler) then a
multinomial logistic regression (one 1x1 ``Conv``) or a multi-layer perceptron (1x1 ``Conv``
+ ``Relu`` per hidden layer), giving ``logits`` [B, K, H, W]. Softmax(logits) is the
classifier's ``predict_proba``; argmax its ``predict``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError, ModelFileError

HEADS = ("logistic", "mlp")


@dataclass
class FittedHead:
    """A standardiser and a classifier as arrays.

    Attributes:
        mean, scale: float32 [F] standardisation.
        layers: [(weight [out, in], bias [out])], ReLU between them; the last gives K logits.
        kind: ``logistic`` or ``mlp``.
        classes_seen: class indices the classifier was fitted on, in its output order.
    """

    mean: np.ndarray
    scale: np.ndarray
    layers: list
    kind: str
    classes_seen: list = field(default_factory=list)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """float32 [N, K] for features [N, F] (what the merged graph computes per pixel)."""
        h = (x - self.mean) / self.scale
        for i, (w, b) in enumerate(self.layers):
            h = h @ w.T + b
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        return h.astype(np.float32)


def make_classifier(kind: str, seed: int = 0, threads: int = 1):
    """An unfitted scikit-learn pipeline (StandardScaler + the head)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "logistic":
        clf = LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced")
    elif kind == "mlp":
        clf = MLPClassifier(hidden_layer_sizes=(64,), alpha=1e-3, max_iter=500,
                            early_stopping=False, random_state=seed)
    else:
        raise InputError(f"head '{kind}' is not one of {HEADS}")
    return make_pipeline(StandardScaler(), clf)


def to_arrays(pipeline, n_classes: int) -> FittedHead:
    """The fitted pipeline as arrays with one logit per class 0..n_classes-1 (a class absent
    from the training labels gets a logit that never wins: -1e4)."""
    scaler, clf = pipeline[0], pipeline[-1]
    seen = [int(c) for c in clf.classes_]
    mean = scaler.mean_.astype(np.float32)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0).astype(np.float32)
    if hasattr(clf, "coefs_"):
        layers = [(w.T.astype(np.float32), b.astype(np.float32))
                  for w, b in zip(clf.coefs_, clf.intercepts_)]
        kind = "mlp"
        if len(seen) == 2:  # binary MLP: one logistic output unit -> two logits [0, z]
            w, b = layers[-1]
            layers[-1] = (np.concatenate([np.zeros_like(w), w]), np.concatenate([[0.0], b]))
    else:
        w, b = clf.coef_.astype(np.float32), clf.intercept_.astype(np.float32)
        if len(seen) == 2:
            w, b = np.concatenate([np.zeros_like(w), w]), np.concatenate([[0.0], b])
        layers, kind = [(w, b.astype(np.float32))], "logistic"
    w, b = layers[-1]
    full_w = np.zeros((n_classes, w.shape[1]), dtype=np.float32)
    full_b = np.full(n_classes, -1e4, dtype=np.float32)
    for row, k in enumerate(seen):
        full_w[k], full_b[k] = w[row], b[row]
    layers[-1] = (full_w, full_b)
    return FittedHead(mean, scale, [(np.asarray(a, np.float32), np.asarray(c, np.float32))
                                    for a, c in layers], kind, seen)


# ------------------------------------------------------------------------------ ONNX
def _load(path: str):
    try:
        import onnx
    except ImportError as exc:
        raise ImportError("the Python package 'onnx' is needed to write a trained model "
                          f"({exc}); install it with pip (onnx==1.23.2)") from exc
    try:
        return onnx.load(path)
    except Exception as exc:  # noqa: BLE001
        raise ModelFileError(f"'{path}' cannot be read as ONNX: {exc}") from exc


def _inputs_of(node) -> set[str]:
    """Names a node reads, including those its subgraphs (If/Loop/Scan bodies) read."""
    names = {i for i in node.input if i}
    for attr in node.attribute:
        for g in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
            for inner in g.node:
                names |= _inputs_of(inner)
    return names


def _prune(graph, keep_outputs: list[str]) -> None:
    """Remove the nodes no kept output depends on (the replaced head), and the initializers
    nothing reads any more."""
    needed = set(keep_outputs)
    kept = []
    for node in reversed(list(graph.node)):
        if any(o in needed for o in node.output):
            kept.append(node)
            needed |= _inputs_of(node)
    del graph.node[:]
    graph.node.extend(reversed(kept))
    used = set().union(*(_inputs_of(n) for n in graph.node)) if len(graph.node) else set()
    inits = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(inits)


def merge_head(base_path: str, out_path: str, head: FittedHead, metadata_json: str,
               reference: str, patch_px: int, schema_version: int, tile_px: int) -> None:
    """Write ``out_path``: the base model's graph, its ``embeddings`` output kept, and the
    head producing ``logits`` [B, K, H, W]; ``metadata_json`` as the ``maestro`` metadata.

    Args:
        reference: the reference modality (its input feeds the per-pixel statistics).
        patch_px: reference pixels per token (the Resize factor).
        tile_px: reference tile side (the logits' fixed height and width).
        schema_version: of the base model (1: ``m_mask`` [B, T]; 2: [B, T, tokens]).

    Raises:
        ModelFileError: the base cannot be read or has no ``embeddings`` output.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = _load(base_path)
    graph = model.graph
    outputs = {o.name: o for o in graph.output}
    if "embeddings" not in outputs:
        raise ModelFileError(f"'{base_path}' has no 'embeddings' output to put a head on")
    emb_out = outputs["embeddings"]
    _prune(graph, ["embeddings"])
    del graph.output[:]
    graph.output.append(emb_out)
    opset = max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    if opset < 13:
        raise ModelFileError(f"'{base_path}' uses ONNX opset {opset}; heads need opset >= 13")
    n = []
    inits = []

    def const(name, array, dtype=np.float32):
        inits.append(numpy_helper.from_array(np.asarray(array, dtype=dtype), name))
        return name

    p = "own_head/"
    x, mask = reference, f"{reference}_mask"
    # 1. embeddings -> reference pixels
    n.append(helper.make_node("Resize", ["embeddings", "", const(p + "scales",
                              [1, 1, patch_px, patch_px])], [p + "emb_px"], mode="linear",
                              coordinate_transformation_mode="half_pixel"))
    # 2. per-date presence weights [B, T, 1, 1, 1]
    n.append(helper.make_node("Cast", [mask], [p + "mask_f"], to=TensorProto.FLOAT))
    if schema_version >= 2:
        if opset >= 18:
            n.append(helper.make_node("ReduceMin", [p + "mask_f", const(p + "ax2", [2], np.int64)],
                                      [p + "missing"], keepdims=0))
        else:
            n.append(helper.make_node("ReduceMin", [p + "mask_f"], [p + "missing"], axes=[2],
                                      keepdims=0))
        missing = p + "missing"
    else:
        missing = p + "mask_f"
    n.append(helper.make_node("Sub", [const(p + "one", 1.0), missing], [p + "present"]))
    n.append(helper.make_node("Unsqueeze", [p + "present", const(p + "ax234", [2, 3, 4], np.int64)],
                              [p + "w"]))
    ax1 = const(p + "ax1", [1], np.int64)
    n.append(helper.make_node("Mul", [x, p + "w"], [p + "xw"]))
    n.append(helper.make_node("Mul", [p + "xw", x], [p + "xxw"]))
    n.append(helper.make_node("ReduceSum", [p + "xw", ax1], [p + "s1"], keepdims=0))
    n.append(helper.make_node("ReduceSum", [p + "xxw", ax1], [p + "s2"], keepdims=0))
    n.append(helper.make_node("ReduceSum", [p + "w", ax1], [p + "cnt0"], keepdims=0))
    n.append(helper.make_node("Max", [p + "cnt0", const(p + "one_b", 1.0)], [p + "cnt"]))
    n.append(helper.make_node("Div", [p + "s1", p + "cnt"], [p + "mean"]))
    n.append(helper.make_node("Div", [p + "s2", p + "cnt"], [p + "m2"]))
    n.append(helper.make_node("Mul", [p + "mean", p + "mean"], [p + "mean_sq"]))
    n.append(helper.make_node("Sub", [p + "m2", p + "mean_sq"], [p + "var0"]))
    n.append(helper.make_node("Max", [p + "var0", const(p + "zero", 0.0)], [p + "var"]))
    n.append(helper.make_node("Sqrt", [p + "var"], [p + "sd"]))
    # 3. features, standardised
    n.append(helper.make_node("Concat", [p + "emb_px", p + "mean", p + "sd"], [p + "feat"], axis=1))
    f = head.mean.shape[0]
    n.append(helper.make_node("Sub", [p + "feat", const(p + "mu", head.mean.reshape(1, f, 1, 1))],
                              [p + "centred"]))
    n.append(helper.make_node("Div", [p + "centred", const(p + "sigma",
                                                          head.scale.reshape(1, f, 1, 1))],
                              [p + "h0"]))
    h = p + "h0"
    for i, (w, b) in enumerate(head.layers):
        out = "logits" if i == len(head.layers) - 1 else f"{p}h{i + 1}"
        n.append(helper.make_node("Conv", [h, const(f"{p}w{i}", w[:, :, None, None]),
                                           const(f"{p}b{i}", b)], [out + ("" if out == "logits"
                                                                          else "_lin")]))
        if out != "logits":
            n.append(helper.make_node("Relu", [out + "_lin"], [out]))
        h = out
    graph.node.extend(n)
    graph.initializer.extend(inits)
    graph.output.insert(0, helper.make_tensor_value_info("logits", TensorProto.FLOAT,
                                                         ["batch", len(head.layers[-1][1]),
                                                          tile_px, tile_px]))
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = "maestro", metadata_json
    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # noqa: BLE001
        raise ModelFileError(f"the merged model does not pass the ONNX checker: {exc}") from exc
    onnx.save(model, out_path)


def base_metadata_doc(path: str) -> dict:
    """The base model's ``maestro`` metadata as a JSON document (all fields, any version)."""
    from ..session import inspect_model

    meta_map, _, _ = inspect_model(path)
    if "maestro" not in meta_map:
        raise ModelFileError(f"'{path}' has no 'maestro' metadata")
    return json.loads(meta_map["maestro"])
