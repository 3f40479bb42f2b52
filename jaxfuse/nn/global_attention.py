"""Global cross attention of RefineFuse's PSIM (Song et al., Visual Intelligence 2025, Sec. 3.3,
Eq. 3-4), after PSFusion's GEFM (Tang et al., Inf. Fusion 2023), which the paper cites for it.

The level's maps are resampled (bilinear) to a token grid, attended over all h*w tokens, and the
result resampled back to the level size:

* Eq. 3: Q = R(Conv3x3, 2C -> C ([F_ir, F_vi])), K_m = R(Conv3x3(F_m)), V_m = R(Conv3x3(F_m)).
* Eq. 4 (``variant="paper"``): G_m = Up(softmax_keys(Q K_m^T) V_m), F'_m = F_m (+) G_m.
* ``variant="gefm"`` (PSFusion's code): K_m plays the query, softmax_y(K_m Q^T) V_m, and
  gamma_m * G (gamma learnable, init 0) goes to the *other* modality's features.
* Output: ReLU(Conv3x3, 2C -> C ([F'_ir, F'_vi])).

Resampling (choice C4): ``grid`` to a fixed ``grid`` x ``grid`` token grid (the training patch's
level size: the identity while training, a bounded cost at test time), ``ratio`` by 1 / ``ratio``
of the level, ``none`` the whole level (refused above ``max_attention_gb``). Logits and softmax
run in float32; one head and no 1/sqrt(d) scale by default, as GEFM.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxfuse.nn.layers import Conv2d, resize_bilinear

Dtype = Any
VARIANTS = ("paper", "gefm")
RESAMPLE_MODES = ("grid", "ratio", "none")


def token_grid(height: int, width: int, resample: str, grid: int, ratio: int) -> tuple[int, int]:
    """The (h, w) token grid PSIM attends over for a ``height`` x ``width`` level."""
    if resample == "grid":
        return grid, grid
    if resample == "ratio":
        return max(1, -(-height // ratio)), max(1, -(-width // ratio))
    if resample == "none":
        return height, width
    raise ValueError(f"psim resample must be one of {RESAMPLE_MODES}, got {resample!r}")


def attention_bytes(batch: int, heads: int, tokens: int) -> int:
    """float32 bytes of the two modalities' (heads, tokens, tokens) attention maps for ``batch`` images."""
    return 2 * batch * heads * tokens * tokens * 4


def attend(q_BxNxC, k_BxNxC, v_BxNxC, heads: int = 1, scaled: bool = False):
    """softmax over keys (q k^T [/ sqrt(d)]) v per head: logits and softmax in float32."""
    b, n, c = q_BxNxC.shape
    d = c // heads

    def split(t):
        return t.reshape(b, t.shape[1], heads, d).transpose(0, 2, 1, 3)

    q_BxHxNxD, k_BxHxMxD, v_BxHxMxD = split(q_BxNxC), split(k_BxNxC), split(v_BxNxC)
    logits_BxHxNxM = jnp.einsum("bhnd,bhmd->bhnm", q_BxHxNxD, k_BxHxMxD, preferred_element_type=jnp.float32)
    if scaled:
        logits_BxHxNxM = logits_BxHxNxM / jnp.sqrt(jnp.float32(d))
    attn_BxHxNxM = jax.nn.softmax(logits_BxHxNxM, axis=-1).astype(v_BxHxMxD.dtype)
    out_BxHxNxD = jnp.einsum("bhnm,bhmd->bhnd", attn_BxHxNxM, v_BxHxMxD)
    return out_BxHxNxD.transpose(0, 2, 1, 3).reshape(b, n, c)


class PSIM(nn.Module):
    """Pair global cross attention on (B, H, W, C) maps: ``f(f_ir, f_vi) -> fused`` (B, H, W, C)."""

    variant: str = "paper"
    resample: str = "grid"
    grid: int = 64
    ratio: int = 4
    heads: int = 1
    scaled: bool = False
    align_corners: bool = False
    max_attention_gb: float = 4.0
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, f_ir, f_vi):
        if self.variant not in VARIANTS:
            raise ValueError(f"psim variant must be one of {VARIANTS}, got {self.variant!r}")
        b, h, w, c = f_ir.shape
        th, tw = token_grid(h, w, self.resample, self.grid, self.ratio)
        need = attention_bytes(b, self.heads, th * tw)
        if self.resample == "none" and need > self.max_attention_gb * 2**30:
            raise ValueError(
                f"psim_resample='none' on a {w}x{h} (W x H) level attends over {h * w} tokens: "
                f"{need / 2**30:.1f} GiB of float32 attention maps for batch {b}, above "
                f"psim_max_attention_gb={self.max_attention_gb}; use psim_resample='grid' or 'ratio'")

        def down(x):
            return resize_bilinear(x, th, tw, self.align_corners)

        def conv(name):
            return Conv2d(c, 3, dtype=self.dtype, name=name)

        def tokens(x):
            return x.reshape(b, th * tw, c)

        d_ir, d_vi = down(f_ir), down(f_vi)
        q = tokens(conv("query")(jnp.concatenate([d_ir, d_vi], -1)))
        k_ir, k_vi = tokens(conv("key_ir")(d_ir)), tokens(conv("key_vi")(d_vi))
        v_ir, v_vi = tokens(conv("value_ir")(d_ir)), tokens(conv("value_vi")(d_vi))
        if self.variant == "paper":
            g_ir, g_vi = attend(q, k_ir, v_ir, self.heads, self.scaled), attend(q, k_vi, v_vi, self.heads, self.scaled)
        else:  # GEFM: each modality's keys query Q; values of the same modality
            g_ir, g_vi = attend(k_ir, q, v_ir, self.heads, self.scaled), attend(k_vi, q, v_vi, self.heads, self.scaled)

        def up(g):
            return resize_bilinear(g.reshape(b, th, tw, c), h, w, self.align_corners)

        g_ir, g_vi = up(g_ir), up(g_vi)
        self.sow("intermediates", "global_ir", g_ir)
        self.sow("intermediates", "global_vi", g_vi)
        if self.variant == "paper":
            f_ir, f_vi = f_ir + g_ir, f_vi + g_vi
        else:
            gamma_ir = self.param("gamma_ir", nn.initializers.zeros, (1,)).astype(self.dtype)
            gamma_vi = self.param("gamma_vi", nn.initializers.zeros, (1,)).astype(self.dtype)
            f_ir, f_vi = f_ir + gamma_ir * g_vi, f_vi + gamma_vi * g_ir
        return nn.relu(conv("out")(jnp.concatenate([f_ir, f_vi], -1)))
