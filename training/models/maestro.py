"""MAESTRO: per-modality tokenisation, per-group encoders, shared inter-group blocks, MAE
pretraining and attentive-pooling task heads.

official: maestro/ssl/mim.py (BaseMIM: embedding, encodings, heads) and maestro/ssl/mae.py
(MAE: encoders, decoders, masking); facts: /work/shared/reference/maestro-official-facts.md.
Module names reproduce the official state-dict keys (``patch_embed.<mod>``,
``encoder.<group>``, ``encoder_inter``, ``enc_to_dec.<group>``, ``decoder.<group>``,
``embed_to_rec.<mod>``, ``mask_token.<mod>``, ``heads.<name>``) so official checkpoints load
with little renaming (see training/official.py).

Batch dict (docs/model-contract.md, schema version 2): ``<m>`` float32 [B, T, C, H, W],
``<m>_dates`` int [B, T, 3] (year, day_of_year, hour; the hour is ignored), ``<m>_mask`` bool
[B, T, L] (True = token missing: padded date or no valid pixel in that patch; optional; the
version-1 form [B, T], True = padded date, is broadcast over the tokens), ``ref_date`` int
[B, 3].

Missing tokens are left out of everything: the patch embedding's GroupNorm statistics
(``embed.masked_group_norm``), attention keys in the group encoders, ``encoder_inter``, the
MAE decoder and the pooling heads, and the embedding average. Their pixel values never
matter (NaN included). A query without any present key gets a finite, meaningless output.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..masking import MaskConfig, draw_masks, n_masked
from ..targets import combine_losses, masked_l1, normalise_patches, patchify_pixels
from .config import MaestroConfig
from .embed import Patchify, Pixelify
from .encodings import date_encoding, position_encoding
from .heads import ClassificationHead, PixelifyHead
from .transformer import Transformer


class Maestro(nn.Module):
    """The MAESTRO network (fusion mode "group" with ``inter_depth`` shared blocks).

    Encoder: for each present modality, patch embedding [B, T, L, D] + position encoding
    (first D-8 channels) + date encoding (last 8); per group, the modalities' tokens
    (dates x locations) are concatenated into one sequence through the group's encoder
    (``depth - inter_depth`` blocks + LayerNorm); then all groups' tokens go jointly through
    ``encoder_inter`` (``inter_depth`` blocks + LayerNorm). Missing tokens (``<m>_mask``) are
    excluded as attention keys everywhere.
    """

    def __init__(self, config: MaestroConfig):
        super().__init__()
        self.config = cfg = config
        dim, dec = cfg.embed_dim, cfg.dec_dim
        self.groups = cfg.groups
        enc_depth = cfg.depth - cfg.inter_depth
        self.patch_embed = nn.ModuleDict(
            {m.name: Patchify(m.bands, dim, m.patch_px) for m in cfg.modalities})
        self.encoder = nn.ModuleDict(
            {g: Transformer(dim, enc_depth, cfg.heads, cfg.dim_head, int(dim * cfg.mlp_ratio))
             for g in self.groups})
        self.encoder_inter = (
            Transformer(dim, cfg.inter_depth, cfg.heads, cfg.dim_head, int(dim * cfg.mlp_ratio))
            if cfg.inter_depth > 0 else None)
        self.enc_to_dec = nn.ModuleDict({g: nn.Linear(dim, dec) for g in self.groups})
        # Decoder MLP width follows the encoder dim (official: mlp_dim=embed_dim*4).
        self.decoder = nn.ModuleDict(
            {g: Transformer(dec, cfg.dec_depth, cfg.dec_heads, cfg.dec_dim_head,
                            int(dim * cfg.dec_mlp_ratio)) for g in self.groups})
        self.embed_to_rec = nn.ModuleDict(
            {m.name: Pixelify(dec, m.bands, m.patch_px) for m in cfg.modalities})
        self.mask_token = nn.ParameterDict(
            {m.name: nn.Parameter(torch.randn(1, 1, 1, 1, dec)) for m in cfg.modalities})
        self.heads = nn.ModuleDict()
        ref = cfg.reference
        if cfg.task == "classification":
            self.heads[cfg.head_name] = ClassificationHead(dim, cfg.num_classes, cfg.head_heads)
        elif cfg.task == "segmentation":
            self.heads[cfg.head_name] = PixelifyHead(dim, cfg.num_classes, ref.patch_px,
                                                     cfg.head_heads)
        for m in cfg.modalities:
            self.register_buffer(f"pos_enc_{m.name}",
                                 position_encoding(cfg.grid_pos_enc, m.grid, dim), persistent=False)
            self.register_buffer(f"dec_pos_enc_{m.name}",
                                 position_encoding(cfg.grid_pos_enc, m.grid, dec), persistent=False)

    # ------------------------------------------------------------------ parameters
    def encoder_parameters(self) -> list[nn.Parameter]:
        """Everything a linear probe freezes: patch embeddings and encoders."""
        mods = [self.patch_embed, self.encoder]
        if self.encoder_inter is not None:
            mods.append(self.encoder_inter)
        return [p for mod in mods for p in mod.parameters()]

    def head_parameters(self) -> list[nn.Parameter]:
        return list(self.heads.parameters())

    def decoder_parameters(self) -> list[nn.Parameter]:
        """Pretraining-only parameters: enc_to_dec, decoders, pixel heads, mask tokens."""
        mods = [self.enc_to_dec, self.decoder, self.embed_to_rec]
        return [p for mod in mods for p in mod.parameters()] + list(self.mask_token.parameters())

    # ------------------------------------------------------------------ embedding
    def _present(self, batch: dict[str, Tensor]) -> list[str]:
        names = [m.name for m in self.config.modalities if m.name in batch]
        if not names:
            raise KeyError(f"batch holds none of the modalities "
                           f"{[m.name for m in self.config.modalities]}")
        return names

    def missing(self, batch: dict[str, Tensor], name: str) -> Tensor:
        """bool [B, T, L], True = token missing: ``<m>_mask`` [B, T, L] as given, a [B, T]
        date mask broadcast over the L tokens, all False when the mask is absent.

        Raises:
            ValueError: a mask whose shape fits neither form.
        """
        x = batch[name]
        l = self.config.modality(name).tokens
        mask = batch.get(f"{name}_mask")
        if mask is None:
            return torch.zeros(x.shape[0], x.shape[1], l, dtype=torch.bool, device=x.device)
        mask = mask.to(torch.bool)
        if mask.dim() == 2:
            return mask[:, :, None].expand(-1, -1, l)
        if not torch.jit.is_tracing() and (mask.dim() != 3 or mask.shape[2] != l
                                           or mask.shape[:2] != x.shape[:2]):
            raise ValueError(f"{name}_mask must be [B, T] or [B, T, {l}] for input "
                             f"{tuple(x.shape)}, got {tuple(mask.shape)}")
        return mask

    @staticmethod
    def _norm_mask(missing: Tensor) -> Tensor | None:
        """The mask handed to the patch embedding: None when nothing is missing in eager
        mode (plain GroupNorm, bit for bit the official computation); always the mask when
        tracing for export (the graph keeps the masked path)."""
        if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or bool(missing.any()):
            return missing
        return None

    def _encodings(self, batch: dict[str, Tensor], name: str, decoder: bool) -> Tensor:
        """Position + date encoding [B, T, L, dim] of a modality (encoder or decoder dim)."""
        dim = self.config.dec_dim if decoder else self.config.embed_dim
        pos = getattr(self, f"{'dec_' if decoder else ''}pos_enc_{name}")     # [L, dim]
        for key in (f"{name}_dates", "ref_date"):
            if key not in batch:
                raise KeyError(f"batch lacks {key!r} (dates are needed for the date encoding)")
        date = date_encoding(batch[f"{name}_dates"], batch["ref_date"], dim)  # [B, T, dim]
        return pos[None, None] + date[:, :, None, :]

    def pixels(self, batch: dict[str, Tensor], name: str) -> Tensor:
        """The modality's input as the patch embedding sees it: [B, T, C, H, W] (the DEM
        height rescaling applied when configured)."""
        x = batch[name]
        mc = self.config.modality(name)
        expected = (mc.bands, mc.tile_px, mc.tile_px)
        if not torch.jit.is_tracing() and (x.dim() != 5 or tuple(x.shape[2:]) != expected):
            raise ValueError(f"input {name!r} must be [B, T, {mc.bands}, {mc.tile_px}, "
                             f"{mc.tile_px}], got {tuple(x.shape)}")
        if mc.rescale_elev:
            # official: maestro/ssl/mim.py resize_and_rescale (DEM: 30 * (DSM - DTM)).
            x = torch.cat([x[:, :, :1], 30.0 * (x[:, :, :1] - x[:, :, 1:2])], dim=2)
        return x

    def embed(self, batch: dict[str, Tensor], name: str, missing: Tensor | None = None
              ) -> Tensor:
        """Patch tokens of one modality with encodings added: [B, T, L, D]; ``missing``
        [B, T, L] (default: :meth:`missing`)."""
        if missing is None:
            missing = self.missing(batch, name)
        return self.patch_embed[name](self.pixels(batch, name), self._norm_mask(missing)) \
            + self._encodings(batch, name, decoder=False)

    # ------------------------------------------------------------------ encoder
    def _run_encoders(self, seqs: dict[str, Tensor], pads: dict[str, Tensor]
                      ) -> dict[str, Tensor]:
        """Per-group encoders then the shared blocks. seqs: group -> [B, N_g, D],
        pads: group -> bool [B, N_g]. Returns group -> [B, N_g, D]."""
        out = {g: self.encoder[g](seqs[g], pads[g]) for g in seqs}
        if self.encoder_inter is None:
            return out
        names = list(out)
        joint = self.encoder_inter(torch.cat([out[g] for g in names], dim=1),
                                   torch.cat([pads[g] for g in names], dim=1))
        start = 0
        for g in names:
            n = out[g].shape[1]
            out[g] = joint[:, start:start + n]
            start = start + n
        return out

    def _group_members(self, names: list[str]) -> dict[str, list[str]]:
        return {g: [m for m in mods if m in names] for g, mods in self.groups.items()
                if any(m in names for m in mods)}

    def encode(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Encoder tokens per present modality [B, T, L, D] (no masking)."""
        names = self._present(batch)
        groups = self._group_members(names)
        missing = {m: self.missing(batch, m) for m in names}
        tokens = {m: self.embed(batch, m, missing[m]) for m in names}
        seqs, pads = {}, {}
        for g, mods in groups.items():
            seqs[g] = torch.cat([tokens[m].flatten(1, 2) for m in mods], dim=1)
            pads[g] = torch.cat([missing[m].flatten(1) for m in mods], dim=1)
        out = self._run_encoders(seqs, pads)
        result = {}
        for g, mods in groups.items():
            start = 0
            for m in mods:
                b, t, l, d = tokens[m].shape
                n = t * l
                result[m] = out[g][:, start:start + n].reshape(b, t, l, d)
                start = start + n
        return result

    def _token_padding(self, batch: dict[str, Tensor], name: str) -> Tensor:
        """bool [B, T * L]: the token mask flattened (dates major)."""
        return self.missing(batch, name).flatten(1)

    # ------------------------------------------------------------------ tasks
    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """The task output of the contract.

        Returns:
            segmentation: logits [B, K, H, W] on the reference tile grid;
            classification: logits [B, K];
            embedding: [B, D, h, w] on the reference token grid.
        """
        if self.config.task is None:
            raise RuntimeError("this Maestro has no task (pretraining only); "
                               "use encode() or pretrain_loss()")
        return self._task_output(batch, self.encode(batch))

    def contract_outputs(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Every graph output of contract schema version 2, from one encoder pass:
        ``logits`` (segmentation, classification) and ``embeddings`` [B, D, h, w]
        (:meth:`embedding`)."""
        if self.config.task is None:
            raise RuntimeError("this Maestro has no task (pretraining only)")
        enc = self.encode(batch)
        out = {"embeddings": self.embedding(batch, enc)}
        if self.config.task != "embedding":
            out = {"logits": self._task_output(batch, enc), **out}
        return out

    def _task_output(self, batch: dict[str, Tensor], enc: dict[str, Tensor]) -> Tensor:
        task = self.config.task
        if task == "classification":
            tokens = torch.cat([enc[m].flatten(1, 2) for m in enc], dim=1)
            pad = torch.cat([self._token_padding(batch, m) for m in enc], dim=1)
            return self.heads[self.config.head_name](tokens, pad)
        if task == "segmentation":
            return self._segment(batch, enc)
        return self.embedding(batch, enc)

    def _segment(self, batch: dict[str, Tensor], enc: dict[str, Tensor]) -> Tensor:
        """Each modality's token grid bilinearly resized to the reference token grid (its
        token mask with it, :func:`resize_tokens`), all (modality, date) tokens pooled per
        location over the present ones, then the per-token pixel head."""
        gr = self.config.reference.grid
        stacked, pads = [], []
        for m, tok in enc.items():
            missing = self.missing(batch, m)
            g = self.config.modality(m).grid
            if g != gr:
                tok, missing = resize_tokens(tok, missing, g, gr)
            stacked.append(tok)
            pads.append(missing)
        return self.heads[self.config.head_name](torch.cat(stacked, dim=1), gr,
                                                  torch.cat(pads, dim=1))

    def embedding(self, batch: dict[str, Tensor], enc: dict[str, Tensor] | None = None
                  ) -> Tensor:
        """Reference-modality encoder tokens averaged, per location, over that location's
        present tokens (0 where none): [B, D, h, w]. (Our choice: the fused tokens after
        ``encoder_inter``, so the embedding carries the other modalities' information
        through attention.)"""
        if enc is None:
            enc = self.encode(batch)
        ref = self.config.reference
        tok = enc[ref.name]                                               # [B, T, L, D]
        valid = (~self.missing(batch, ref.name)).to(tok.dtype)[..., None]  # [B, T, L, 1]
        mean = (tok * valid).sum(1) / valid.sum(1).clamp(min=1.0)        # [B, L, D]
        b, d = mean.shape[0], mean.shape[2]
        return mean.transpose(1, 2).reshape(b, d, ref.grid, ref.grid)

    # ------------------------------------------------------------------ pretraining
    # Three steps, as the reference MAE implementation (He et al. 2022; official MAESTRO:
    # maestro/ssl/mae.py): forward_encoder (mask, keep the visible tokens, encode),
    # forward_decoder (mask tokens back in, decode, pixels per token), forward_loss
    # (normalised-patch L1 on the masked present tokens); pretrain_loss runs all three.
    def forward_encoder(self, batch: dict[str, Tensor], mask: MaskConfig | None = None,
                        generator: torch.Generator | None = None) -> "MaskedEncoding":
        """Draw the pretraining masks and encode the visible tokens.

        Modalities absent from ``batch`` are skipped. ``generator`` (CPU) seeds the masks
        (``training.masking.draw_masks``: exactly ``n_masked(N, ratio)`` tokens per group,
        missing tokens first).

        Returns:
            :class:`MaskedEncoding`: per group the encoder output of the kept tokens
            [B, n_keep, D] and their indices, per modality the token masks [B, T, L].
        """
        mask = mask or MaskConfig()
        names = self._present(batch)
        groups = self._group_members(names)
        padding = {m: self.missing(batch, m) for m in names}
        embeds = {m: self.patch_embed[m](self.pixels(batch, m), self._norm_mask(padding[m]))
                  for m in names}
        tokens = {m: embeds[m] + self._encodings(batch, m, decoder=False) for m in names}
        shapes = {m: tuple(tokens[m].shape[:3]) for m in names}
        masked, struct = draw_masks(shapes, groups, mask, generator, padding)
        device = tokens[names[0]].device
        masked = {m: v.to(device) for m, v in masked.items()}

        seqs, pads, keep_ids = {}, {}, {}
        for g, mods in groups.items():
            seq = torch.cat([tokens[m].flatten(1, 2) for m in mods], dim=1)
            pad = torch.cat([padding[m].flatten(1) for m in mods], dim=1)
            hidden = torch.cat([masked[m].flatten(1) for m in mods], dim=1)
            n_keep = hidden.shape[1] - n_masked(hidden.shape[1], mask.ratio)
            ids = torch.argsort(hidden.to(torch.int8), dim=1, stable=True)[:, :n_keep]
            keep_ids[g] = ids
            seqs[g] = torch.gather(seq, 1, ids[..., None].expand(-1, -1, seq.shape[-1]))
            pads[g] = torch.gather(pad, 1, ids)
        return MaskedEncoding(groups=groups, shapes=shapes, missing=padding, masked=masked,
                              structural=struct, keep_ids=keep_ids,
                              encoded=self._run_encoders(seqs, pads), embeds=embeds)

    def forward_decoder(self, batch: dict[str, Tensor], enc: "MaskedEncoding"
                        ) -> dict[str, Tensor]:
        """Decode: per group, the encoded tokens projected to the decoder width and put
        back in place among mask tokens, decoder encodings added, the decoder run with the
        missing tokens as padding; then each modality's pixels per token.

        Returns:
            modality -> reconstruction [B, T, L, p, p, C].
        """
        preds = {}
        for g, mods in enc.groups.items():
            y = self.enc_to_dec[g](enc.encoded[g])                        # [B, n_keep, dec]
            b, dec = y.shape[0], y.shape[-1]
            full = torch.cat([self.mask_token[m].reshape(1, 1, dec).expand(
                b, enc.shapes[m][1] * enc.shapes[m][2], dec) for m in mods], dim=1)
            full = full.scatter(1, enc.keep_ids[g][..., None].expand(-1, -1, dec), y)
            full = full + torch.cat([self._encodings(batch, m, decoder=True).flatten(1, 2)
                                     for m in mods], dim=1)
            pad = torch.cat([enc.missing[m].flatten(1) for m in mods], dim=1)
            decoded = self.decoder[g](full, pad)
            start = 0
            for m in mods:
                _, t, l = enc.shapes[m]
                mc = self.config.modality(m)
                part = decoded[:, start:start + t * l]
                start += t * l
                pred = self.embed_to_rec[m].token_pixels(part)         # [B, T*L, p*p*C]
                preds[m] = pred.reshape(b, t, l, mc.patch_px, mc.patch_px, mc.bands)
        return preds

    def forward_loss(self, batch: dict[str, Tensor], enc: "MaskedEncoding",
                     preds: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """The loss: per modality the L1 between ``preds`` and the patch-normalised input
        (per patch and band group, unbiased variance + 1e-6; ``training.targets``) over its
        masked present tokens, then the modalities combined weighted by dates x tokens.

        Returns:
            (``{"loss", "loss_<m>", "mask_ratio"}``, modality -> target [B, T, L, p, p, C]).
        """
        losses, counts, weights, out, targets = {}, {}, {}, {}, {}
        for mods in enc.groups.values():
            for m in mods:
                _, t, l = enc.shapes[m]
                mc = self.config.modality(m)
                target = normalise_patches(
                    patchify_pixels(self.pixels(batch, m).detach(), mc.patch_px),
                    mc.band_groups)
                sel = enc.masked[m] & ~enc.missing[m]
                losses[m], counts[m] = masked_l1(preds[m], target, sel)
                weights[m] = float(t * l)
                out[f"loss_{m}"] = losses[m]
                targets[m] = target
        out["loss"] = combine_losses(losses, weights, counts)
        total = sum(v.numel() for v in enc.masked.values())
        out["mask_ratio"] = sum(v.sum() for v in enc.masked.values()).float() / total
        return out, targets

    def pretrain_loss(self, batch: dict[str, Tensor], mask: MaskConfig | None = None,
                      generator: torch.Generator | None = None,
                      return_details: bool = False) -> dict[str, Tensor]:
        """Masked-autoencoder loss on one batch: :meth:`forward_encoder`,
        :meth:`forward_decoder`, :meth:`forward_loss`.

        Modalities absent from ``batch`` are skipped. ``generator`` (CPU) seeds the masks.

        Returns:
            ``loss`` (scalar), ``loss_<m>`` per present modality, ``mask_ratio`` (masked
            share of all tokens). With ``return_details``: also ``details`` = dict with
            ``tokens`` (patch embeddings [B, T, L, D], grads retained), ``masked`` and
            ``structural`` (bool [B, T, L]), ``pred`` and ``target`` ([B, T, L, p, p, C]).
        """
        enc = self.forward_encoder(batch, mask, generator)
        if return_details:
            for t in enc.embeds.values():
                if t.requires_grad:
                    t.retain_grad()
        preds = self.forward_decoder(batch, enc)
        out, targets = self.forward_loss(batch, enc, preds)
        if return_details:
            out["details"] = {"tokens": enc.embeds, "masked": enc.masked,
                              "structural": enc.structural, "pred": preds, "target": targets}
        return out


@dataclass
class MaskedEncoding:
    """What :meth:`Maestro.forward_encoder` hands to the decoder and the loss.

    Attributes:
        groups: group -> its present modalities, in order.
        shapes: modality -> (B, T, L).
        missing: modality -> bool [B, T, L], True = token missing in the input.
        masked: modality -> bool [B, T, L], True = hidden from the encoder (missing tokens
            included).
        structural: modality -> bool [B, T, L] structural priorities (CPU).
        keep_ids: group -> int [B, n_keep] positions of the visible tokens in the group's
            flattened sequence (modalities, dates, locations).
        encoded: group -> encoder output of the visible tokens [B, n_keep, D].
        embeds: modality -> patch embeddings before the encodings [B, T, L, D].
    """

    groups: dict[str, list[str]]
    shapes: dict[str, tuple[int, int, int]]
    missing: dict[str, Tensor]
    masked: dict[str, Tensor]
    structural: dict[str, Tensor]
    keep_ids: dict[str, Tensor]
    encoded: dict[str, Tensor]
    embeds: dict[str, Tensor]


def resize_tokens(tok: Tensor, missing: Tensor, grid: int, out_grid: int
                  ) -> tuple[Tensor, Tensor]:
    """Bilinear resize (``align_corners=False``, as F.interpolate) of a token grid that
    skips missing tokens: the present tokens' values and their presence (1/0) are
    resized alike and divided (normalised convolution), so a missing token's value never
    reaches the output; an output location whose bilinear footprint holds no present token
    is missing. With nothing missing this is the plain bilinear resize (the weights of
    each output location sum to 1).

    Args:
        tok: [B, T, grid * grid, D]; missing: bool [B, T, grid * grid].

    Returns:
        (tokens [B, T, out_grid ** 2, D], missing bool [B, T, out_grid ** 2]).
    """
    b, t, d = tok.shape[0], tok.shape[1], tok.shape[3]
    keep = (~missing).to(tok.dtype)
    values = torch.where(missing[..., None], torch.zeros_like(tok), tok)
    values = values.reshape(b * t, grid, grid, d).permute(0, 3, 1, 2)
    weight = keep.reshape(b * t, 1, grid, grid)
    size = (out_grid, out_grid)
    values = F.interpolate(values, size=size, mode="bilinear", align_corners=False)
    weight = F.interpolate(weight, size=size, mode="bilinear", align_corners=False)
    present = weight > 1e-6
    values = values / torch.where(present, weight, torch.ones_like(weight))
    values = torch.where(present, values, torch.zeros_like(values))
    out = values.permute(0, 2, 3, 1).reshape(b, t, out_grid * out_grid, d)
    return out, (~present).reshape(b, t, out_grid * out_grid)
