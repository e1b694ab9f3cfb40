"""Error types of the engine. Every message names the problem and the file, field or
parameter concerned, so that the plugin can show it as it is."""


class MaestroError(Exception):
    """Base class of every error the engine raises on purpose."""


class ContractError(MaestroError):
    """The model's metadata or graph does not follow docs/model-contract.md."""


class ModelFileError(MaestroError):
    """The model file is missing, unreadable or not a valid ONNX model."""


class InputError(MaestroError):
    """An input raster, stack or parameter is unusable (names the input)."""


class OutputError(MaestroError):
    """The output cannot be written (names the path)."""


class RuntimeDependencyError(MaestroError):
    """A runtime dependency (onnxruntime, rasterio) is missing or unusable."""


class CancelledError(MaestroError):
    """The run was cancelled by the caller; no output is left behind."""
