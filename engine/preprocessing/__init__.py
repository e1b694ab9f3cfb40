"""The contract layer's shared preprocessing (pure Python + numpy; rasterio only where a
dataset is read). Imported by ``engine`` and by ``training/datasets``."""
