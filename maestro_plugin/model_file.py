"""Read a MAESTRO model's metadata from its ONNX file without onnxruntime or onnx.

The metadata is a JSON document stored in the ONNX ``ModelProto.metadata_props`` under the
key ``maestro`` (docs/model-contract.md). An ONNX file is a protocol-buffers message, so
the entries can be read with a small wire-format reader: ``ModelProto`` field 14 is
``repeated StringStringEntryProto metadata_props`` whose fields 1 and 2 are ``key`` and
``value`` (onnx/onnx.proto, the ONNX specification; wire format: protobuf "Encoding"
documentation, varints and wire types 0, 1, 2, 5). The graph (field 7, the bulk of the
file) is skipped with a seek, never read.

This lets the dock show what a model needs (modalities, bands, classes) before the user
installs onnxruntime. The graph itself is checked by the engine when the model runs.

Pure Python: no qgis, onnx or onnxruntime import; ``engine.contract`` parses the JSON.
"""
from __future__ import annotations

import os
from typing import BinaryIO

#: ModelProto field numbers (onnx.proto).
_METADATA_PROPS = 14
#: Wire types.
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


class ModelFileReadError(ValueError):
    """The file is missing, unreadable or not an ONNX protobuf (message names the file)."""


def _varint(fh: BinaryIO) -> int | None:
    """Read one base-128 varint; None at a clean end of file."""
    shift = result = 0
    while True:
        byte = fh.read(1)
        if not byte:
            if shift == 0:
                return None
            raise EOFError("truncated varint")
        b = byte[0]
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


def _fields(data: bytes):
    """(field number, wire type, value) of a small embedded message held in memory."""
    import io

    fh = io.BytesIO(data)
    while True:
        tag = _varint(fh)
        if tag is None:
            return
        number, wire = tag >> 3, tag & 7
        if wire == _VARINT:
            yield number, wire, _varint(fh)
        elif wire == _LEN:
            size = _varint(fh)
            yield number, wire, fh.read(size)
        elif wire == _I64:
            yield number, wire, fh.read(8)
        elif wire == _I32:
            yield number, wire, fh.read(4)
        else:
            raise ValueError(f"wire type {wire} is not protobuf")


def read_metadata_props(path: str) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX file as a dict.

    Args:
        path: an ``.onnx`` file (the graph is skipped, not loaded: fast on big files).

    Returns:
        key -> value (both str); empty when the file has no metadata entries.

    Raises:
        ModelFileReadError: file missing or unreadable, or bytes that are not a
            protocol-buffers message (e.g. a text file renamed .onnx).
    """
    if not path or not os.path.isfile(path):
        raise ModelFileReadError(f"model file not found: '{path}'")
    size = os.path.getsize(path)
    props: dict[str, str] = {}
    try:
        with open(path, "rb") as fh:
            while True:
                tag = _varint(fh)
                if tag is None:
                    break
                number, wire = tag >> 3, tag & 7
                if number == 0:
                    raise ValueError("field number 0")
                if wire == _VARINT:
                    _varint(fh)
                elif wire == _I64:
                    fh.seek(8, os.SEEK_CUR)
                elif wire == _I32:
                    fh.seek(4, os.SEEK_CUR)
                elif wire == _LEN:
                    length = _varint(fh)
                    if length is None or fh.tell() + length > size:
                        raise ValueError("a field runs past the end of the file")
                    if number == _METADATA_PROPS:
                        entry = {n: v for n, w, v in _fields(fh.read(length)) if w == _LEN}
                        props[entry.get(1, b"").decode("utf-8")] = entry.get(2, b"").decode("utf-8")
                    else:
                        fh.seek(length, os.SEEK_CUR)
                else:
                    raise ValueError(f"wire type {wire}")
                if fh.tell() > size:
                    raise ValueError("a field runs past the end of the file")
    except OSError as exc:
        raise ModelFileReadError(f"model file '{path}' cannot be read: {exc}") from exc
    except (ValueError, EOFError, UnicodeDecodeError) as exc:
        raise ModelFileReadError(f"'{path}' is not a valid ONNX model ({exc})") from exc
    return props


def read_model_card(path: str):
    """The model's ``engine.contract.ModelMetadata``, read without onnxruntime.

    Only the metadata is checked here (``engine.contract.parse_metadata``); the graph's
    inputs and outputs are checked by the engine when it opens the model to run it.

    Raises:
        ModelFileReadError: see :func:`read_metadata_props`.
        engine.errors.ContractError: no ``maestro`` entry, or invalid metadata.
    """
    from engine.contract import METADATA_KEY, parse_metadata
    from engine.errors import ContractError

    props = read_metadata_props(path)
    if METADATA_KEY not in props:
        raise ContractError(f"'{os.path.basename(path)}' is an ONNX file without MAESTRO "
                            "metadata: it was not exported by MAESTRO's training package")
    return parse_metadata(props[METADATA_KEY])
