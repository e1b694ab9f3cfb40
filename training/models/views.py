"""A Maestro for other input shapes that shares every weight of a given one.

The weights of MAESTRO do not depend on the tile size or the number of dates (official:
maestro/ssl/mim.py: patch embeddings, encoders and decoders act per token; only the 2D
position encoding depends on the token grid), so one set of weights can be pretrained on
crops of several shapes, e.g. the default model's 32 x 32 px Slovenia tiles and TreeSatAI's
4 x 4 px crops (``training.recipes.default_model``).
"""
from __future__ import annotations

import dataclasses

from .maestro import Maestro

#: The per-modality and per-group modules a view takes from the model it shares.
SHARED_DICTS = ("patch_embed", "encoder", "enc_to_dec", "decoder", "embed_to_rec", "mask_token",
                "heads")


def shared_view(model: Maestro, modalities: dict[str, dict]) -> Maestro:
    """A :class:`Maestro` holding only the modalities named in ``modalities``, each with the
    given :class:`ModalityConfig` fields changed (``tile_px``, ``max_dates``...), whose
    modules *are* ``model``'s (the same parameter objects: training the view trains
    ``model``). Only its position-encoding buffers are its own.

    Args:
        model: the network whose weights are shared.
        modalities: modality name -> field changes, e.g. ``{"s2": {"tile_px": 4}}``.

    Returns:
        The view (its own construction draws from torch's global RNG, then its weights are
        replaced by ``model``'s).

    Raises:
        KeyError: a modality ``model`` lacks. ValueError: changes that make an invalid
        configuration (e.g. a tile not a multiple of the patch) or change the bands or
        patch size (the weights would not fit).
    """
    base = model.config
    mods = []
    for name, changes in modalities.items():
        own = base.modality(name)
        for key in ("bands", "patch_px", "name", "group"):
            if key in changes and changes[key] != getattr(own, key):
                raise ValueError(f"a shared view cannot change {name}.{key} (the weights "
                                 "depend on it)")
        mods.append(dataclasses.replace(own, **changes))
    names = [m.name for m in mods]
    ref = base.reference_modality if base.reference_modality in names else names[0]
    view = Maestro(dataclasses.replace(base, modalities=mods, reference_modality=ref))
    for attr in SHARED_DICTS:
        mine, theirs = getattr(view, attr), getattr(model, attr)
        for key in list(mine.keys()):
            mine[key] = theirs[key]
    view.encoder_inter = model.encoder_inter
    return view
