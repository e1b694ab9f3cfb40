"""Model configuration: modalities, size presets, task.

Size presets follow the official ones (official: maestro/ssl/mae.py; see
/work/shared/reference/maestro-official-facts.md section 2.1). The paper's "base" is the
code's ``medium``; both names are accepted here.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

#: Official size presets. ``dec_mlp_ratio`` multiplies the *encoder* ``embed_dim``
#: (decoder MLP hidden = embed_dim * 4; official: maestro/ssl/mae.py ``MAE.__init__``).
SIZES: dict[str, dict[str, int]] = {
    "tiny": dict(embed_dim=192, depth=12, heads=3, dim_head=64, mlp_ratio=2,
                 dec_dim=512, dec_depth=1, dec_heads=16, dec_dim_head=32, dec_mlp_ratio=4),
    "small": dict(embed_dim=384, depth=12, heads=6, dim_head=64, mlp_ratio=2,
                  dec_dim=512, dec_depth=2, dec_heads=16, dec_dim_head=32, dec_mlp_ratio=4),
    "base": dict(embed_dim=768, depth=12, heads=12, dim_head=64, mlp_ratio=4,
                 dec_dim=512, dec_depth=3, dec_heads=16, dec_dim_head=32, dec_mlp_ratio=4),
    "large": dict(embed_dim=1024, depth=24, heads=16, dim_head=64, mlp_ratio=4,
                  dec_dim=512, dec_depth=4, dec_heads=16, dec_dim_head=32, dec_mlp_ratio=4),
}
SIZES["medium"] = SIZES["base"]

#: Number of channels carrying the date encoding (the last ones; official: date_dim=8).
DATE_DIM = 8
TASKS = ("segmentation", "classification", "embedding")


@dataclass
class ModalityConfig:
    """One input modality.

    Attributes:
        name: input name (``aerial``, ``dem``, ``s2``, ``s1_asc``...), key of its modules.
        bands: number of bands C.
        patch_px: tokenisation patch p (pixels); ``tile_px % patch_px == 0``.
        tile_px: tile side on the modality's grid (pixels).
        group: fusion group (shared encoder), default the modality's own name.
        norm_bands: sizes of the spectral groups used to normalise the reconstruction
            target (sum = bands); None = one group (official: norm_bands in
            maestro/conf/dataset/*.py).
        max_dates: largest number of dates (1 for single-date modalities).
        rescale_elev: DEM input (DSM, DTM): the model replaces channel 1 by
            30 * (channel 0 - channel 1), a scaled height above ground, before the patch
            embedding (official: ``resize_and_rescale`` with ``rescale_elev=True``).
    """

    name: str
    bands: int
    patch_px: int
    tile_px: int
    group: str | None = None
    norm_bands: list[int] | None = None
    max_dates: int = 1
    rescale_elev: bool = False

    def __post_init__(self):
        if self.rescale_elev and self.bands != 2:
            raise ValueError(f"modality {self.name}: rescale_elev needs 2 bands (DSM, DTM)")
        if self.tile_px % self.patch_px:
            raise ValueError(f"modality {self.name}: tile_px {self.tile_px} is not a multiple "
                             f"of patch_px {self.patch_px}")
        if self.norm_bands is not None and sum(self.norm_bands) != self.bands:
            raise ValueError(f"modality {self.name}: norm_bands {self.norm_bands} do not sum "
                             f"to bands={self.bands}")

    @property
    def group_name(self) -> str:
        return self.group or self.name

    @property
    def grid(self) -> int:
        """Token grid side h = w = tile_px / patch_px."""
        return self.tile_px // self.patch_px

    @property
    def tokens(self) -> int:
        """Tokens per date L = grid**2."""
        return self.grid ** 2

    @property
    def band_groups(self) -> list[int]:
        return list(self.norm_bands) if self.norm_bands else [self.bands]


@dataclass
class MaestroConfig:
    """Whole model configuration.

    Attributes:
        size: preset name in :data:`SIZES` (``tiny``, ``small``, ``base``/``medium``,
            ``large``); any of ``embed_dim, depth, heads, dim_head, mlp_ratio, dec_dim,
            dec_depth, dec_heads, dec_dim_head, dec_mlp_ratio`` given overrides the preset.
        modalities: the inputs, in contract order.
        reference_modality: output grid of segmentation / embedding.
        grid_pos_enc: side of the reference grid of the 2D position encoding
            (official: FLAIR 160, TreeSatAI 96, PASTIS 256, S2-NAIP 192).
        inter_depth: shared blocks after the per-group encoders (official default 3).
        task: ``segmentation``, ``classification``, ``embedding`` or None (pretraining).
        num_classes: K for the task head.
        multilabel: classification with independent sigmoids.
        head_name: key of the task head in ``heads`` (the official key is the target name,
            e.g. ``cosia``, ``treesat_mlc_thresh``).
        head_heads: heads of the attentive pooling (official 8).
    """

    modalities: list[ModalityConfig]
    reference_modality: str
    grid_pos_enc: int
    size: str = "tiny"
    inter_depth: int = 3
    task: str | None = None
    num_classes: int = 0
    multilabel: bool = False
    head_name: str = "target"
    head_heads: int = 8
    embed_dim: int | None = None
    depth: int | None = None
    heads: int | None = None
    dim_head: int | None = None
    mlp_ratio: float | None = None
    dec_dim: int | None = None
    dec_depth: int | None = None
    dec_heads: int | None = None
    dec_dim_head: int | None = None
    dec_mlp_ratio: float | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        self.modalities = [m if isinstance(m, ModalityConfig) else ModalityConfig(**m)
                           for m in self.modalities]
        if self.size not in SIZES:
            raise ValueError(f"unknown size {self.size!r}; expected one of {sorted(SIZES)}")
        preset = SIZES[self.size]
        for key, value in preset.items():
            if getattr(self, key) is None:
                setattr(self, key, value)
        names = [m.name for m in self.modalities]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate modality names in {names}")
        if self.reference_modality not in names:
            raise ValueError(f"reference_modality {self.reference_modality!r} not in {names}")
        if self.task is not None and self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; expected one of {TASKS}")
        if self.task in ("segmentation", "classification") and self.num_classes < 1:
            raise ValueError(f"task {self.task} needs num_classes >= 1")
        for dim, what in ((self.embed_dim, "embed_dim"), (self.dec_dim, "dec_dim")):
            if (dim - DATE_DIM) % 4 or dim <= DATE_DIM + 4:
                raise ValueError(f"{what}={dim}: {what} - {DATE_DIM} must be a positive "
                                 "multiple of 4 (2D sin-cos position encoding)")
        if self.embed_dim % self.head_heads:
            raise ValueError(f"embed_dim {self.embed_dim} not divisible by head_heads "
                             f"{self.head_heads}")
        if not 0 <= self.inter_depth <= self.depth:
            raise ValueError(f"inter_depth {self.inter_depth} outside 0..depth={self.depth}")

    @property
    def reference(self) -> ModalityConfig:
        return self.modality(self.reference_modality)

    def modality(self, name: str) -> ModalityConfig:
        for m in self.modalities:
            if m.name == name:
                return m
        raise KeyError(name)

    @property
    def groups(self) -> dict[str, list[str]]:
        """Group name -> its modality names, in order of first appearance."""
        out: dict[str, list[str]] = {}
        for m in self.modalities:
            out.setdefault(m.group_name, []).append(m.name)
        return out

    def to_dict(self) -> dict:
        doc = {f.name: getattr(self, f.name) for f in fields(self)}
        doc["modalities"] = [dict(vars(m)) for m in self.modalities]
        return doc
