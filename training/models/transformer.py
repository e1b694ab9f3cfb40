"""Pre-norm transformer blocks with the official state-dict layout.

The official encoders/decoders are ``vit_pytorch.vit.Transformer`` (vit-pytorch 1.10.1;
official: maestro/ssl/mae.py). Key layout reproduced here so checkpoints load unchanged:
``layers.{i}.0`` = attention (``norm``, ``to_qkv`` without bias, ``to_out.0``),
``layers.{i}.1.net`` = feed-forward ``[LayerNorm, Linear, GELU, Dropout, Linear, Dropout]``,
and a final ``norm`` LayerNorm closing every stack.

Attention is written by hand (``to_qkv`` then reshapes whose sizes come from the tensor and
``F.scaled_dot_product_attention``) so that the legacy ONNX exporter keeps batch and token
count dynamic (``nn.MultiheadAttention`` would freeze the sequence length).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


#: Added to the attention scores of excluded keys. A float (additive) mask rather than a
#: boolean one: torch exports a boolean SDPA mask as Where/IsNaN/Where over every
#: [B, heads, N, N] score matrix, about a fifth of onnxruntime's time on MAESTRO-tiny
#: (docs/performance.md); an additive mask exports as one Add. exp(-1e9) is 0 in float32, and
#: half-precision autocast turns it into -inf, which is still safe since no row is all masked.
MASKED_SCORE = -1e9


def key_keep_mask(key_padding: Tensor | None) -> Tensor | None:
    """Additive float attention mask [B, 1, 1, N] (0 = attend, MASKED_SCORE = excluded) from
    a padding mask [B, N] (True = padded key).

    A sample whose keys are all padding attends to all of them instead (its output is
    meaningless but finite): a row without any key would give NaN in the softmax.
    """
    if key_padding is None:
        return None
    if not torch.jit.is_tracing() and not torch.onnx.is_in_onnx_export() \
            and not bool(key_padding.any()):
        # Nothing padded: no mask, so SDPA may pick its fused kernels (an exported graph
        # keeps the mask path, whose padding varies at run time).
        return None
    all_pad = key_padding.all(dim=-1, keepdim=True)
    excluded = key_padding & ~all_pad
    bias = excluded.to(torch.float32) * MASKED_SCORE
    return bias[:, None, None, :]


class Attention(nn.Module):
    """Multi-head self-attention, pre-norm: LayerNorm -> to_qkv (no bias) -> softmax(QK^T /
    sqrt(dim_head)) V -> to_out.0 (Linear with bias).

    q, k, v are the three consecutive thirds of ``to_qkv``'s output, heads are
    ``(h d)``-major within each (the vit-pytorch layout).
    """

    def __init__(self, dim: int, heads: int, dim_head: int):
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.to_qkv = nn.Linear(dim, inner * 3, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, dim), nn.Dropout(0.0))

    def forward(self, x: Tensor, keep: Tensor | None = None) -> Tensor:
        """x [B, N, dim], keep: additive float mask [B, 1, 1, N] or None -> [B, N, dim]."""
        b, n = x.shape[0], x.shape[1]
        qkv = self.to_qkv(self.norm(x))
        qkv = qkv.reshape(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)  # [3, B, h, N, d]
        if keep is not None:
            keep = keep.to(qkv.dtype)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=keep)
        out = out.transpose(1, 2).reshape(b, n, -1)
        return self.to_out(out)


class FeedForward(nn.Module):
    """``net`` = [LayerNorm, Linear(dim, hidden), GELU, Dropout, Linear(hidden, dim), Dropout]."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.GELU(),
                                 nn.Dropout(0.0), nn.Linear(hidden, dim), nn.Dropout(0.0))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class Transformer(nn.Module):
    """``depth`` residual pre-norm blocks then a final LayerNorm ``norm``.

    official: vit_pytorch/vit.py ``Transformer`` as used by maestro/ssl/mae.py.
    """

    def __init__(self, dim: int, depth: int, heads: int, dim_head: int, mlp_dim: int):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList([Attention(dim, heads, dim_head), FeedForward(dim, mlp_dim)])
            for _ in range(depth))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor, key_padding: Tensor | None = None) -> Tensor:
        """x [B, N, dim]; key_padding bool [B, N] True = token excluded as a key."""
        keep = key_keep_mask(key_padding)
        for attn, ff in self.layers:
            x = attn(x, keep) + x
            x = ff(x) + x
        return self.norm(x)
