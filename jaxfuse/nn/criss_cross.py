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


def _logits(q_BxRxWxD, k_BxHxWxD, r0: int):
    """Column logits in column-major order (B, W, R, H), the own pixel -inf, and row logits (B, R, W, W).

    Keeping the column part as (B, W, ...) lets each einsum be a plain batched matmul: no
    transpose of an attention-sized array, only of the narrow q/k/v maps.
    """
    h, rows = k_BxHxWxD.shape[1], q_BxRxWxD.shape[1]
    q, k = q_BxRxWxD.astype(jnp.float32), k_BxHxWxD.astype(jnp.float32)
    col_BxWxRxH = jnp.einsum("bwrd,bwkd->bwrk", q.transpose(0, 2, 1, 3), k.transpose(0, 2, 1, 3))
    own = (jnp.arange(r0, r0 + rows)[:, None] == jnp.arange(h)[None, :])[None, None]
    col_BxWxRxH = jnp.where(own, -jnp.inf, col_BxWxRxH)
    row_BxRxWxW = jnp.einsum("brwd,brkd->brwk", q, k[:, r0:r0 + rows])
    return col_BxWxRxH, row_BxRxWxW


def _rows(q_BxHxWxD, row_chunk: int | None):
    h = q_BxHxWxD.shape[1]
    step = h if not row_chunk else min(row_chunk, h)
    return [(r0, min(r0 + step, h)) for r0 in range(0, h, step)]


def criss_cross(q_BxHxWxD, k_BxHxWxD, v_BxHxWxC, row_chunk: int | None = None):
    """The attention output (B, H, W, C): one softmax over each pixel's H + W logits (Eq. 8).

    The softmax is taken jointly through a shared max and a shared sum of the column and row
    parts, and normalised after the value products (the same sums, divided once per pixel).
    """
    v_col = v_BxHxWxC.transpose(0, 2, 1, 3)
    outs = []
    for r0, r1 in _rows(q_BxHxWxD, row_chunk):
        col, row = _logits(q_BxHxWxD[:, r0:r1], k_BxHxWxD, r0)
        peak = jnp.maximum(col.max(-1).transpose(0, 2, 1), row.max(-1))  # (B, R, W)
        e_col = jnp.exp(col - peak.transpose(0, 2, 1)[..., None])
        e_row = jnp.exp(row - peak[..., None])
        total = e_col.sum(-1).transpose(0, 2, 1) + e_row.sum(-1)
        out_col = jnp.einsum("bwrk,bwkc->bwrc", e_col.astype(v_col.dtype), v_col).transpose(0, 2, 1, 3)
        out_row = jnp.einsum("brwk,brkc->brwc", e_row.astype(v_col.dtype), v_BxHxWxC[:, r0:r1])
        outs.append((out_col + out_row) / total[..., None].astype(out_row.dtype))
    return jnp.concatenate(outs, axis=1)


def criss_cross_maps(q_BxHxWxD, k_BxHxWxD, row_chunk: int | None = None):
    """The softmax maps (B, H, W, H + W), column part then row part (for inspection and parity)."""
    maps = []
    for r0, r1 in _rows(q_BxHxWxD, row_chunk):
        col, row = _logits(q_BxHxWxD[:, r0:r1], k_BxHxWxD, r0)
        maps.append(jax.nn.softmax(jnp.concatenate([col.transpose(0, 2, 1, 3), row], axis=-1), axis=-1))
    return jnp.concatenate(maps, axis=1)


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
        out = criss_cross(q, k, v, self.row_chunk)
        if self.is_mutable_collection("intermediates"):
            self.sow("intermediates", "attention", criss_cross_maps(q, k, self.row_chunk))
        gamma = self.param("gamma", nn.initializers.zeros, ())
        return gamma * out.astype(jnp.float32) + x.astype(jnp.float32)
