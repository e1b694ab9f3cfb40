"""Downstream heads with attentive pooling.

official: maestro/layers/head.py (``AttentiveReduce``, ``ClassificationHead``,
``PixelifyHead``) and maestro/ssl/mim.py ``compute_logits``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .embed import unpatchify
from .transformer import key_keep_mask


class AttentiveReduce(nn.Module):
    """Pool a set of tokens into one vector with a single learned query.

    LayerNorm ``norm`` -> keys/values ``to_kv`` Linear(dim, 2 dim, no bias) -> ``heads``-head
    cross-attention of the learned ``query`` [dim] (scale (dim / heads)^-0.5, no output
    projection) -> heads concatenated -> LayerNorm ``norm_fc``.
    """

    def __init__(self, dim: int, heads: int = 8):
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.norm_fc = nn.LayerNorm(dim)
        self.to_kv = nn.Linear(dim, dim * 2, bias=False)
        self.query = nn.Parameter(torch.randn(dim))

    def forward(self, x: Tensor, key_padding: Tensor | None = None) -> Tensor:
        """x [N, S, dim], key_padding bool [N, S] (True = ignore) -> [N, dim]."""
        n, s = x.shape[0], x.shape[1]
        kv = self.to_kv(self.norm(x)).reshape(n, s, 2, self.heads, -1).permute(2, 0, 3, 1, 4)
        q = self.query.reshape(1, self.heads, 1, -1).expand(n, -1, -1, -1)   # [N, h, 1, d]
        # SDPA's default scale 1/sqrt(d) = (dim / heads)^-0.5 as in the official head.
        bias = key_keep_mask(key_padding)
        if bias is not None:
            bias = bias.to(kv.dtype)
        out = F.scaled_dot_product_attention(q, kv[0], kv[1], attn_mask=bias)
        return self.norm_fc(out.reshape(n, -1))


class ClassificationHead(nn.Module):
    """Attentive pooling over all tokens then ``linear`` Linear(dim, K)."""

    def __init__(self, dim: int, num_classes: int, heads: int = 8):
        super().__init__()
        self.reduce = AttentiveReduce(dim, heads)
        self.linear = nn.Linear(dim, num_classes)

    def forward(self, tokens: Tensor, key_padding: Tensor | None = None) -> Tensor:
        """tokens [B, N, dim], key_padding [B, N] -> logits [B, K]."""
        return self.linear(self.reduce(tokens, key_padding))


class PixelifyHead(nn.Module):
    """Segmentation head: attentive pooling per reference-grid location over the
    (modality, date) tokens, then a per-token linear pixel head ``conv`` 1x1 Conv(dim,
    K P^2) whose channels are unfolded in ``(p1 p2 c)`` order into P x P pixels."""

    def __init__(self, dim: int, num_classes: int, out_patch_px: int, heads: int = 8):
        super().__init__()
        self.num_classes = num_classes
        self.out_patch_px = out_patch_px
        self.reduce = AttentiveReduce(dim, heads)
        self.conv = nn.Conv2d(dim, num_classes * out_patch_px ** 2, kernel_size=1)

    def forward(self, tokens: Tensor, grid: int, key_padding: Tensor | None = None) -> Tensor:
        """tokens [B, S, L, dim] (S = stacked modality dates, L = grid^2 reference tokens),
        key_padding bool [B, S, L] (True = token missing at that location) or [B, S] (the
        same for every location) -> logits [B, K, grid P, grid P]. A location whose tokens
        are all missing gets a finite, meaningless value (:func:`key_keep_mask`)."""
        b, s, l, d = tokens.shape[0], tokens.shape[1], tokens.shape[2], tokens.shape[3]
        x = tokens.transpose(1, 2).reshape(b * l, s, d)
        pad = None
        if key_padding is not None:
            if key_padding.dim() == 2:
                key_padding = key_padding[:, :, None].expand(-1, -1, l)
            pad = key_padding.transpose(1, 2).reshape(b * l, s)
        pooled = self.reduce(x, pad).reshape(b, l, d)
        y = self.conv(pooled.transpose(1, 2).reshape(b, d, grid, grid))
        return unpatchify(y, self.out_patch_px, self.num_classes)
