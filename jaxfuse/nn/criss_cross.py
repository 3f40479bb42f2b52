"""Criss-cross cross attention, as DMFuse's CAIM (Qi et al. 2024, Sec. 3.3, Eq. 8-9; CCNet's
criss-cross attention, Huang et al. 2019, with swapped queries).

For two maps x and y, every pixel (i, j) of x's branch takes its query from **y** and attends
over x's column j (without the pixel itself: -inf on the column diagonal) and x's row i (with
it), one softmax over the H + W logits, no 1/sqrt(d) scaling; the branch output is
``gamma * attention + x``. The y branch swaps the roles. One set of q/k/v convs and one scalar
gamma serve both branches. ``row_chunk`` computes the query rows in chunks (exact), bounding the
(B, rows, W, H + W) attention maps at large sizes.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxfuse.nn.layers import conv1x1

Dtype = Any


def criss_cross(q_BxHxWxD, k_BxHxWxD, v_BxHxWxC, row_chunk: int | None = None):
    """(output (B, H, W, C), softmax maps (B, H, W, H + W): column part then row part)."""
    h = q_BxHxWxD.shape[1]
    step = h if not row_chunk else min(row_chunk, h)
    outs, maps = [], []
    for r0 in range(0, h, step):
        r1 = min(r0 + step, h)
        q = q_BxHxWxD[:, r0:r1].astype(jnp.float32)
        col_BxRxWxH = jnp.einsum("brwd,bkwd->brwk", q, k_BxHxWxD.astype(jnp.float32))
        diagonal = (jnp.arange(r0, r1)[:, None] == jnp.arange(h)[None, :])[None, :, None, :]
        col_BxRxWxH = jnp.where(diagonal, -jnp.inf, col_BxRxWxH)
        row_BxRxWxW = jnp.einsum("brwd,brkd->brwk", q, k_BxHxWxD[:, r0:r1].astype(jnp.float32))
        attn = jax.nn.softmax(jnp.concatenate([col_BxRxWxH, row_BxRxWxW], axis=-1), axis=-1)
        a_col, a_row = attn[..., :h].astype(v_BxHxWxC.dtype), attn[..., h:].astype(v_BxHxWxC.dtype)
        outs.append(jnp.einsum("brwk,bkwc->brwc", a_col, v_BxHxWxC)
                    + jnp.einsum("brwk,brkc->brwc", a_row, v_BxHxWxC[:, r0:r1]))
        maps.append(attn)
    return jnp.concatenate(outs, axis=1), jnp.concatenate(maps, axis=1)


class CrissCrossAttention(nn.Module):
    """``(x, query)`` -> ``gamma * CC(q=query, k=x, v=x) + x``; q/k are C // 8 wide, gamma starts at 0.

    Call it twice with the roles swapped for DMFuse's two branches (same parameters).
    """

    reduction: int = 8
    row_chunk: int | None = None
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x, query):
        c = x.shape[-1]
        q = conv1x1(c // self.reduction, use_bias=True, dtype=self.dtype, name="query_conv")(query)
        k = conv1x1(c // self.reduction, use_bias=True, dtype=self.dtype, name="key_conv")(x)
        v = conv1x1(c, use_bias=True, dtype=self.dtype, name="value_conv")(x)
        out, attn = criss_cross(q, k, v, self.row_chunk)
        self.sow("intermediates", "attention", attn)
        gamma = self.param("gamma", nn.initializers.zeros, ())
        return gamma * out.astype(jnp.float32) + x.astype(jnp.float32)
