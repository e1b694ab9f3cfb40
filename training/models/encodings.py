"""Fixed position and date encodings (not learned, not in checkpoints).

official: maestro/layers/utils.py and maestro/ssl/mim.py. The first ``D - 8`` channels carry
the 2D sin-cos position encoding, the last 8 the date encoding; both are summed into the
tokens (before masking in the encoder, again with the decoder dim in the decoder).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .config import DATE_DIM

DAYS_PER_YEAR = 365.25


def sincos_2d(grid: int, dim: int) -> Tensor:
    """2D sin-cos encoding on a ``grid x grid`` reference grid.

    n = (dim - 8) / 4 frequencies, omega = 1 / 10000 ** (arange(n) / (n - 1)) (note n - 1),
    channels [sin(x w), cos(x w), sin(y w), cos(y w), 0 x 8], x = column, y = row.

    Returns:
        [grid, grid, dim] float32 (row, column, channel).
    """
    n = (dim - DATE_DIM) // 4
    # Built on the CPU whatever the default device (a model built on "meta" keeps real
    # encodings); Module.to() moves the buffers.
    cpu = dict(dtype=torch.float64, device="cpu")
    omega = 1.0 / 10000 ** (torch.arange(n, **cpu) / max(n - 1, 1))
    coords = torch.arange(grid, **cpu)
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    xw = x[..., None] * omega
    yw = y[..., None] * omega
    enc = torch.cat([xw.sin(), xw.cos(), yw.sin(), yw.cos(),
                     torch.zeros(grid, grid, DATE_DIM, **cpu)], dim=-1)
    return enc.float()


def position_encoding(grid_pos_enc: int, grid: int, dim: int) -> Tensor:
    """Encoding of a modality's ``grid x grid`` tokens: the reference-grid encoding
    block-averaged over each token's footprint. When ``grid_pos_enc`` is not a multiple of
    ``grid``, the reference grid is first resized bilinearly to grid * round(grid_pos_enc /
    grid) (official: ``reshape_encoding``).

    Returns:
        [grid * grid, dim] (tokens row-major).
    """
    ref = sincos_2d(grid_pos_enc, dim).permute(2, 0, 1)[None]       # [1, dim, G0, G0]
    if grid_pos_enc % grid:
        side = grid * max(round(grid_pos_enc / grid), 1)
        ref = F.interpolate(ref, size=(side, side), mode="bilinear", align_corners=False)
    ref = F.avg_pool2d(ref, kernel_size=ref.shape[-1] // grid)      # [1, dim, grid, grid]
    return ref[0].flatten(1).transpose(0, 1).contiguous()


def date_encoding(dates: Tensor, ref_date: Tensor, dim: int) -> Tensor:
    """Date encoding in the last 8 of ``dim`` channels.

    Args:
        dates: int [B, T, 3] (year, day_of_year 1..366, hour 0..23).
        ref_date: int [B, 3], origin of the year difference.

    Returns:
        [B, T, dim] float32: zeros, then [diff x 4, sin/cos(2 pi doy / 365.25),
        sin/cos(2 pi hour / 24)] with diff = (year + doy/365.25) - (ref_year + ref_doy/365.25)
        in years. **The hour is ignored** (contract schema version 2): the hour channels are
        those of hour 0 (0 and 1) whatever is passed, because MAESTRO's official datasets
        carry no time of day (official: maestro/dataset/utils.py ``dates_numpy``) and most
        date sources users have (file names, date-only tags) lack it too.
    """
    d = dates.to(torch.float32)
    r = ref_date.to(torch.float32)[:, None, :]
    diff = (d[..., 0] - r[..., 0]) + (d[..., 1] - r[..., 1]) / DAYS_PER_YEAR
    doy = 2 * math.pi * d[..., 1] / DAYS_PER_YEAR
    zero = torch.zeros_like(diff)
    enc = torch.stack([diff, diff, diff, diff, doy.sin(), doy.cos(), zero, zero + 1.0],
                      dim=-1)
    return F.pad(enc, (dim - DATE_DIM, 0))
