"""Per-modality patch embedding and pixel reconstruction heads.

official: maestro/layers/embed.py (``Patchify``/``PatchifyBands``, ``Pixelify``/
``PixelifyBands``). Every released config uses one band group per modality, so each
modality has exactly one ``patchify_bands.0`` / ``pixelify_bands.0``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class PatchifyBands(nn.Module):
    """Conv2d(C, D, kernel = stride = p) then GroupNorm(1, D) over the whole per-date image
    (all channels and all token positions of that date): embeddings depend on the tile's
    global statistics (official trap 2).

    With a token mask (contract schema version 2, docs/model-contract.md), the GroupNorm
    statistics of a date are computed over its *present* tokens only, so the values of
    missing tokens never reach a present token; missing tokens come out as zeros. With no
    token missing this is GroupNorm itself (same formula: biased variance, ``norm.eps``).
    """

    def __init__(self, in_chans: int, embed_dim: int, patch_px: int):
        super().__init__()
        self.patch_px = patch_px
        self.conv = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_px, stride=patch_px)
        self.norm = nn.GroupNorm(1, embed_dim)

    def forward(self, x: Tensor, missing: Tensor | None = None) -> Tensor:
        """x [B, T, C, H, W], missing bool [B, T, L] or None (True = token missing) ->
        tokens [B, T, L, D] with L = (H/p)(W/p), row-major."""
        b, t = x.shape[0], x.shape[1]
        y = self.conv(x.flatten(0, 1))                        # [B*T, D, h, w]
        if missing is None:
            y = self.norm(y)
            y = y.flatten(2).transpose(1, 2)                  # [B*T, L, D]
        else:
            y = masked_group_norm(y.flatten(2).transpose(1, 2), missing.flatten(0, 1),
                                  self.norm)
        return y.reshape(b, t, y.shape[1], y.shape[2])


def masked_group_norm(y: Tensor, missing: Tensor, norm: nn.GroupNorm) -> Tensor:
    """GroupNorm(1, D) of tokens y [N, L, D] whose statistics (mean and biased variance over
    all D channels of the present tokens) skip the tokens where ``missing`` [N, L] is True;
    then ``norm``'s per-channel affine. Missing tokens are set to 0 before the statistics
    (so NaN or Inf there cannot leak) and in the output. A row without any present token
    gives zeros.

    Returns:
        [N, L, D].
    """
    gone = missing[:, :, None]
    keep = (~gone).to(y.dtype)                                # [N, L, 1]
    y = torch.where(gone, torch.zeros_like(y), y)
    count = (keep.sum(dim=1, keepdim=True) * y.shape[2]).clamp(min=1.0)   # [N, 1, 1]
    mean = y.sum(dim=(1, 2), keepdim=True) / count
    centred = (y - mean) * keep
    var = (centred * centred).sum(dim=(1, 2), keepdim=True) / count
    out = centred * torch.rsqrt(var + norm.eps)
    if norm.affine:
        out = out * norm.weight + norm.bias
    return out * keep


class Patchify(nn.Module):
    """One :class:`PatchifyBands` over all bands (``patchify_bands.0``), shared by dates."""

    def __init__(self, bands: int, embed_dim: int, patch_px: int):
        super().__init__()
        self.patchify_bands = nn.ModuleList([PatchifyBands(bands, embed_dim, patch_px)])

    def forward(self, x: Tensor, missing: Tensor | None = None) -> Tensor:
        """x [B, T, C, H, W], missing bool [B, T, L] or None -> tokens [B, T, L, D]."""
        return self.patchify_bands[0](x, missing)


class PixelifyBands(nn.Module):
    """1x1 Conv(D -> C p^2) per token; output channels ordered ``(p1 p2 c)``."""

    def __init__(self, embed_dim: int, out_chans: int, patch_px: int):
        super().__init__()
        self.patch_px = patch_px
        self.out_chans = out_chans
        self.conv = nn.Conv2d(embed_dim, out_chans * patch_px ** 2, kernel_size=1)

    def forward(self, x: Tensor, grid: int) -> Tensor:
        """x [N, L, D] tokens of a ``grid x grid`` image -> pixels [N, C, grid p, grid p]."""
        n, d = x.shape[0], x.shape[2]
        y = self.conv(x.transpose(1, 2).reshape(n, d, grid, grid))   # [N, p*p*C, h, w]
        return unpatchify(y, self.patch_px, self.out_chans)


def unpatchify(y: Tensor, p: int, c: int) -> Tensor:
    """[N, (p1 p2 c), h, w] -> [N, c, h p, w p] (the official ``(p1 p2 c)`` order)."""
    n, h, w = y.shape[0], y.shape[2], y.shape[3]
    y = y.reshape(n, p, p, c, h, w).permute(0, 3, 4, 1, 5, 2)         # n c h p1 w p2
    return y.reshape(n, c, h * p, w * p)


class Pixelify(nn.Module):
    """Per-modality reconstruction head (``pixelify_bands.0.conv``)."""

    def __init__(self, embed_dim: int, bands: int, patch_px: int):
        super().__init__()
        self.pixelify_bands = nn.ModuleList([PixelifyBands(embed_dim, bands, patch_px)])

    def forward(self, x: Tensor, grid: int) -> Tensor:
        return self.pixelify_bands[0](x, grid)

    def token_pixels(self, x: Tensor) -> Tensor:
        """Per-token reconstruction [..., N, D] -> [..., N, p * p * C] in ``(p1 p2 c)``
        order (the 1x1 conv applied as a linear map, no reshaping to an image)."""
        conv = self.pixelify_bands[0].conv
        return F.linear(x, conv.weight.flatten(1), conv.bias)
