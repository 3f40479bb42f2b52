"""Restormer blocks: channel LayerNorm, MDTA transposed self-attention, GDFN.

Zamir et al., "Restormer: Efficient Transformer for High-Resolution Image Restoration"
(CVPR 2022), Eq. 1-3 (MDTA: attention over channels, so its cost is linear in H*W) and Eq. 4-5
(GDFN). SIBA uses them with a per-head *multiplied* temperature and no 1/sqrt(d).
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxfuse.nn.layers import conv1x1, pointwise_depthwise3x3

Dtype = Any


def ChannelLayerNorm(name=None):
    """Restormer's 'WithBias' LayerNorm: per pixel over channels, biased variance, eps 1e-5."""
    return nn.LayerNorm(epsilon=1e-5, use_fast_variance=False, dtype=jnp.float32, name=name)


def transposed_attention(q_BxHxWxC, k_BxHxWxC, v_BxHxWxC, temperature_h, heads: int):
    """Channel attention of MDTA (Restormer Eq. 2): softmax(q^ k^T * tau) v per head.

    Head ``h`` owns channels ``h*d .. h*d+d-1``; q and k are L2-normalised over the H*W pixels
    (``F.normalize``: x / max(||x||, 1e-12)), so the attention map is d x d per head and every
    output pixel sees the whole image. All dot products over the pixels come from one Gram
    matrix of [q | k] (cosines = q.k / (|q| |k|)), and the heads' maps are applied as one
    block-diagonal C x C matrix, so no (B, heads, d, H*W) copy of q, k or v is ever made.
    Statistics and softmax run in float32 whatever the compute dtype.
    """
    b, hh, ww, c = q_BxHxWxC.shape
    d = c // heads
    qk_BxNx2C = jnp.concatenate([q_BxHxWxC, k_BxHxWxC], -1).reshape(b, hh * ww, 2 * c).astype(jnp.float32)
    qk_BxNx2C = jax.lax.optimization_barrier(qk_BxNx2C)  # transposed for the Gram as a plain copy
    gram_Bx2Cx2C = jnp.einsum("bnc,bne->bce", qk_BxNx2C, qk_BxNx2C)
    norm_Bx2C = jnp.maximum(jnp.sqrt(jnp.diagonal(gram_Bx2Cx2C, axis1=1, axis2=2)), 1e-12)
    cos_BxCxC = gram_Bx2Cx2C[:, :c, c:] / (norm_Bx2C[:, :c, None] * norm_Bx2C[:, None, c:])
    cos_Bxhxdxd = jnp.einsum("bhihj->bhij", cos_BxCxC.reshape(b, heads, d, heads, d))
    attn_Bxhxdxd = jax.nn.softmax(cos_Bxhxdxd * temperature_h[None, :, None, None], axis=-1)
    # mix[h*d+j, g*d+i] = attn[h, i, j] if h == g: out[n, g*d+i] = sum_j v[n, g*d+j] attn[g, i, j]
    mix_BxCxC = jnp.einsum("bhij,hg->bhjgi", attn_Bxhxdxd, jnp.eye(heads, dtype=attn_Bxhxdxd.dtype))
    v_BxNxC = v_BxHxWxC.reshape(b, hh * ww, c)
    out_BxNxC = v_BxNxC @ mix_BxCxC.reshape(b, c, c).astype(v_BxNxC.dtype)
    return out_BxNxC.reshape(b, hh, ww, c)


class MDTA(nn.Module):
    """Multi-Dconv-head transposed self-attention: q|k|v = DW3(Conv1(x)); proj(attention)."""

    heads: int = 8
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        c = x.shape[-1]
        qkv = pointwise_depthwise3x3(x, 3 * c, ("qkv1", "qkv2"), self.dtype)
        q, k, v = jnp.split(qkv, 3, axis=-1)
        tau = self.param("temperature", nn.initializers.ones, (self.heads,))
        out = transposed_attention(q, k, v, tau, self.heads)
        return conv1x1(c, dtype=self.dtype, name="proj")(out)


class GDFN(nn.Module):
    """Gated-Dconv feed-forward: project_out(GELU(x1) * x2), x1|x2 = DW3(project_in(x))."""

    expansion: float = 1.0
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        c = x.shape[-1]
        hidden = int(c * self.expansion)
        h = pointwise_depthwise3x3(x, 2 * hidden, ("project_in", "dwconv"), self.dtype)
        x1, x2 = jnp.split(h, 2, axis=-1)
        return conv1x1(c, dtype=self.dtype, name="project_out")(nn.gelu(x1, approximate=False) * x2)


class RestormerBlock(nn.Module):
    """x + Attn(LN1(x), *context), then x + GDFN(LN2(x)).

    ``attention`` is any attention module class: self-attention (MDTA) takes no context; a cross
    attention (e.g. SIBA's source cross attention) takes its query map as ``context``. The
    residual stream is always ``x``.
    """

    heads: int = 8
    expansion: float = 1.0
    attention: type[nn.Module] = MDTA
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x, *context):
        x = x + self.attention(self.heads, dtype=self.dtype, name="attn")(
            ChannelLayerNorm(name="norm1")(x).astype(self.dtype), *context)
        return x + GDFN(self.expansion, dtype=self.dtype, name="mlp")(
            ChannelLayerNorm(name="norm2")(x).astype(self.dtype))
