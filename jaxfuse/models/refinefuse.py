"""RefineFuse: "an end-to-end network for multi-scale refinement fusion of multi-modality images"
(Song, Li, Xu, Wu, Kittler, Visual Intelligence 2025). No official code exists: what the paper
fixes is implemented as written, what it leaves open is a named config field (``docs/refinefuse.md``,
choices C1-C12; the tie-breaker is PSFusion, which the paper cites for PSIM and the loss).

Two encoders (one per modality; 3x3 convs, stride 1 then 2, Sec. 3.1) give levels 1..L at
1, 1/2, 1/4, ... of the input. Each level's pair is fused by its module (``level_modules``):
SFIM (Eq. 1-2) on levels 1-2, PSIM (Eq. 3-4) on levels 3-4. Decoders D_L..D_2 (1x1 conv, 3x3
conv, bilinear up to the next level's exact size) climb back, joining each level by
concatenation, except level 2, where FIM (Eq. 5) joins D_3 with F_2; D_1 (four 3x3 convs, the last
with tanh) gives the image, (tanh + 1) / 2 in [0, 1]. Any H x W in, the same size out.

Loss (Sec. 3.5): L = lambda L_int + L_text (Eq. 9, lambda = 5), L_int on the masks of Eq. 6
(segmentation labels or the contrast rule) by Eq. 7, L_text the Sobel term of Eq. 8; the Table 8
variants are ``loss.intensity = plain | max`` and ``loss.texture_weight = 0``. Masks are computed
on the training crop (zero padding at its border), not on the full image.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp
from absl import logging

from jaxfuse import losses
from jaxfuse.models.spec import ModelSpec, Stage
from jaxfuse.nn import PAIR_FUSION
from jaxfuse.nn.layers import Conv2d, resize_bilinear
from jaxfuse.nn.spatial_channel import FIM

Dtype = Any


class Encoder(nn.Module):
    """Sec. 3.1: one 3x3 conv + ReLU per level, stride 1 for level 1 and 2 after; all levels out."""

    widths: Sequence[int]
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        levels = []
        for level, width in enumerate(self.widths, 1):
            x = nn.relu(Conv2d(width, 3, strides=1 if level == 1 else 2, dtype=self.dtype, name=f"conv_{level}")(x))
            levels.append(x)
        return levels


class UpDecoder(nn.Module):
    """D_l, l > 1: ReLU(Conv1x1) -> ReLU(Conv3x3) -> bilinear up to the next level's exact size."""

    features: int
    align_corners: bool = False
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x, height: int, width: int):
        x = nn.relu(Conv2d(self.features, 1, dtype=self.dtype, name="conv_1x1")(x))
        x = nn.relu(Conv2d(self.features, 3, dtype=self.dtype, name="conv_3x3")(x))
        return resize_bilinear(x, height, width, self.align_corners)


class OutputDecoder(nn.Module):
    """D_1: 3x3 convs 2c1 -> c1 -> c1 -> c1/2 with ReLU, then c1/2 -> 1 with tanh (float32)."""

    features: int
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        for i, width in enumerate((self.features, self.features, self.features // 2), 1):
            x = nn.relu(Conv2d(width, 3, dtype=self.dtype, name=f"conv_{i}")(x))
        return jnp.tanh(Conv2d(1, 3, dtype=self.dtype, name="conv_4")(x).astype(jnp.float32))


class RefineFuse(nn.Module):
    """(ir, vi) NHWC in [0, 1], one channel each -> fused (B, H, W, 1) in [0, 1] (``output="unit"``).

    ``level_modules`` names the fusion module of each level (``jaxfuse.nn.PAIR_FUSION``); its
    length is the number of levels, whose widths are the first entries of ``widths``.
    ``use_sfim`` / ``use_psim`` = False turn those modules into concat + conv (Table 9);
    ``use_fim`` = False joins F_2 by concatenation like the other skips. Every module's output
    is under its stable name (``enc_ir``, ``sfim_1``, ``psim_3``, ``fim``, ``dec_2``, ...) with
    ``capture_intermediates=True`` (Fig. 11's maps).
    """

    widths: Sequence[int] = (64, 64, 64, 128, 128)
    level_modules: Sequence[str] = ("sfim", "sfim", "psim", "psim")
    use_sfim: bool = True
    use_psim: bool = True
    use_fim: bool = True
    sfim_residual: bool = True  # C3
    sfim_fast: bool = True
    psim_variant: str = "paper"  # C5: paper | gefm
    psim_resample: str = "grid"  # C4: grid | ratio | none
    psim_grid: Sequence[int] = (256, 128, 64, 32, 16)  # token grid side per level (grid mode)
    psim_ratio: Sequence[int] = (1, 2, 4, 8, 16)  # pooling factor per level (ratio mode)
    psim_heads: int = 1
    psim_scaled: bool = False
    psim_max_attention_gb: float = 4.0
    fim_spatial: bool = False  # C6
    skip: str = "concat"  # C7: concat | add
    align_corners: bool = False
    output: str = "unit"  # C8: unit ((tanh + 1) / 2) | tanh
    dtype: Dtype = jnp.float32

    def _fusion(self, kind: str, level: int) -> nn.Module:
        if (kind == "sfim" and not self.use_sfim) or (kind == "psim" and not self.use_psim):
            kind = "concat"
        if kind not in PAIR_FUSION:
            raise ValueError(f"level_modules entry {kind!r}: use one of {sorted(PAIR_FUSION)}")
        options = {
            "sfim": dict(residual=self.sfim_residual, fast=self.sfim_fast),
            "psim": dict(variant=self.psim_variant, resample=self.psim_resample, grid=self.psim_grid[level - 1],
                         ratio=self.psim_ratio[level - 1], heads=self.psim_heads, scaled=self.psim_scaled,
                         align_corners=self.align_corners, max_attention_gb=self.psim_max_attention_gb),
            "concat": {},
        }[kind]
        return PAIR_FUSION[kind](**options, dtype=self.dtype, name=f"{kind}_{level}")

    def _join(self, deep, skip):
        if self.skip == "concat":
            return jnp.concatenate([deep, skip], -1)
        if self.skip == "add":
            return deep + skip
        raise ValueError(f"skip must be 'concat' or 'add', got {self.skip!r}")

    @nn.compact
    def __call__(self, ir, vi):
        num_levels = len(self.level_modules)
        if not 1 <= num_levels <= len(self.widths):
            raise ValueError(f"{num_levels} level_modules need 1..{len(self.widths)} levels (widths {self.widths})")
        if self.output not in ("unit", "tanh"):
            raise ValueError(f"output must be 'unit' or 'tanh', got {self.output!r}")
        widths = tuple(self.widths[:num_levels])
        f_ir = Encoder(widths, self.dtype, name="enc_ir")(ir.astype(self.dtype))
        f_vi = Encoder(widths, self.dtype, name="enc_vi")(vi.astype(self.dtype))
        fused = {}
        for level, kind in enumerate(self.level_modules, 1):
            fused[level] = self._fusion(kind, level)(f_ir[level - 1], f_vi[level - 1])

        deep = None
        for level in range(num_levels, 1, -1):
            x = fused[level]
            if deep is not None and level == 2 and self.use_fim:
                x = FIM(self.fim_spatial, self.align_corners, self.dtype, name="fim")(deep, x)
            elif deep is not None:
                x = self._join(deep, x)
            below = fused[level - 1]
            deep = UpDecoder(widths[level - 2], self.align_corners, self.dtype, name=f"dec_{level}")(
                x, below.shape[1], below.shape[2])
        x = fused[1] if deep is None else self._join(deep, fused[1])
        out = OutputDecoder(widths[0], self.dtype, name="dec_1")(x)
        return (out + 1) / 2 if self.output == "unit" else out


# ----------------------------------------------------------------------------------------------
# Loss (Sec. 3.5, Eq. 6-11)
# ----------------------------------------------------------------------------------------------
# Eq. 10 (Table 8 A) and Eq. 11 (B); "mask" (Eq. 6-7) needs the masks, see ``fusion_loss``.
UNMASKED_INTENSITY = {"plain": losses.plain_intensity_loss, "max": losses.max_intensity_loss}
TEXTURE = {"direction": losses.sobel_direction_loss, "sum": losses.sobel_gradient_loss}  # C11


def salient_from_labels(label, classes):
    """The salient-object mask of a class-index plane: ``classes`` a tuple of ids or "nonzero"."""
    if classes == "nonzero":
        return label > 0
    return jnp.isin(label, jnp.asarray(tuple(classes), label.dtype))


def fusion_loss(fused, ir, vi, salient=None, *, intensity: str = "mask", lambda_int: float = 5.0,
                texture_weight: float = 1.0, norm: str = "l1", texture: str = "direction",
                contrast: str = "variance", tie_eps: float = 1e-7):
    """Eq. 9: (lambda L_int + w L_text, terms). ``intensity``: ``mask`` (Eq. 6-7), ``plain`` (Eq. 10,
    Table 8 A) or ``max`` (Eq. 11, B); ``texture_weight=0`` is Table 8 C. ``salient``: (B, H, W, 1)
    nonzero where salient, or None (contrast-only masks)."""
    if intensity == "mask":
        m_ir, m_vi = losses.salient_masks(ir, vi, salient, contrast, tie_eps)
        l_int = losses.mask_intensity_loss(fused, ir, vi, m_ir, m_vi, norm)
    elif intensity in UNMASKED_INTENSITY:
        l_int = UNMASKED_INTENSITY[intensity](fused, ir, vi)
    else:
        raise ValueError(f"loss.intensity must be 'mask' or one of {sorted(UNMASKED_INTENSITY)}, got {intensity!r}")
    if texture not in TEXTURE:
        raise ValueError(f"loss.texture must be one of {sorted(TEXTURE)}, got {texture!r}")
    l_text = TEXTURE[texture](fused, ir, vi)
    total = lambda_int * l_int + texture_weight * l_text
    return total, {"loss_intensity": l_int, "loss_texture": l_text}


def batch_salient(batch, classes):
    """The batch's salient mask: its ``salient`` plane, else its ``label`` plane through ``classes``, else None."""
    if "salient" in batch:
        return batch["salient"]
    if "label" in batch:
        return salient_from_labels(batch["label"], classes)
    return None


def _loss_fn(module, config):
    loss = config.loss.to_dict()
    classes = loss.pop("salient_classes", (1, 2, 3))
    classes = classes if classes == "nonzero" else tuple(classes)

    def fusion(variables, batch, rng):
        del rng
        salient = batch_salient(batch, classes)
        if salient is None and loss.get("intensity", "mask") == "mask":  # at trace time: once per compile
            logging.warning("RefineFuse: loss.intensity=mask but the batches carry no salient labels or masks "
                            "(data.salient_source): training with contrast-only masks")
        fused = module.apply(variables, batch["ir"], batch["vi"])
        total, terms = fusion_loss(fused, batch["ir"], batch["vi"], salient, **loss)
        return total, (terms, {})

    return {"fusion": fusion}[config.stage]


SPEC = ModelSpec(
    name="refinefuse",
    build=lambda model_config, dtype="float32": RefineFuse(**model_config, dtype=dtype),
    loss_fn=_loss_fn,
    stages={"fusion": Stage("fusion")},
)
