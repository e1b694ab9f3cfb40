"""One module per Processing algorithm; ALGORITHMS is what the provider registers."""
from .model_info import ModelInfoAlgorithm

ALGORITHMS = [ModelInfoAlgorithm]
