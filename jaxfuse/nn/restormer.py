"""Restormer blocks: channel LayerNorm, MDTA transposed self-attention, GDFN.

Zamir et al., "Restormer: Efficient Transformer for High-Resolution Image Restoration"
(CVPR 2022), Eq. 1-3 (MDTA: attention over channels, so its cost is linear in H*W) and Eq. 4-5
(GDFN). SIBA uses them with a per-head *multiplied* temperature and no 1/sqrt(d).
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxfuse.nn.layers import conv1x1, depthwise3x3

Dtype = Any


def ChannelLayerNorm(name=None):
    """Restormer's 'WithBias' LayerNorm: per pixel over channels, biased variance, eps 1e-5."""
    return nn.LayerNorm(epsilon=1e-5, use_fast_variance=False, dtype=jnp.float32, name=name)


def l2_normalize(x, axis):
    """``torch.nn.functional.normalize``: x / max(||x||_2, 1e-12)."""
    norm = jnp.sqrt(jnp.sum(jnp.square(x), axis=axis, keepdims=True))
    return x / jnp.maximum(norm, 1e-12)


def transposed_attention(q_BxHxWxC, k_BxHxWxC, v_BxHxWxC, temperature_h, heads: int):
    """Channel attention of MDTA (Restormer Eq. 2): softmax(q^ k^T * tau) v per head.

    Head ``h`` owns channels ``h*d .. h*d+d-1``; q and k are L2-normalised over the H*W pixels,
    so the attention map is d x d per head and every output pixel sees the whole image.
    Statistics and softmax run in float32 whatever the compute dtype.
    """
    b, hh, ww, c = q_BxHxWxC.shape
    d = c // heads

    def split(t):  # (B, H, W, C) -> (B, N, heads, d)
        return t.reshape(b, hh * ww, heads, d)

    q_BxNxhxd = l2_normalize(split(q_BxHxWxC).astype(jnp.float32), axis=1)
    k_BxNxhxd = l2_normalize(split(k_BxHxWxC).astype(jnp.float32), axis=1)
    v_BxNxhxd = split(v_BxHxWxC)
    logits_Bxhxdxd = jnp.einsum("bnhi,bnhj->bhij", q_BxNxhxd, k_BxNxhxd)
    attn_Bxhxdxd = jax.nn.softmax(logits_Bxhxdxd * temperature_h[None, :, None, None], axis=-1)
    out_BxNxhxd = jnp.einsum("bhij,bnhj->bnhi", attn_Bxhxdxd.astype(v_BxNxhxd.dtype), v_BxNxhxd)
    return out_BxNxhxd.reshape(b, hh, ww, c)


class MDTA(nn.Module):
    """Multi-Dconv-head transposed self-attention: q|k|v = DW3(Conv1(x)); proj(attention)."""

    heads: int = 8
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        c = x.shape[-1]
        qkv = conv1x1(3 * c, dtype=self.dtype, name="qkv1")(x)
        qkv = depthwise3x3(3 * c, dtype=self.dtype, name="qkv2")(qkv)
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
        h = conv1x1(2 * hidden, dtype=self.dtype, name="project_in")(x)
        x1, x2 = jnp.split(depthwise3x3(2 * hidden, dtype=self.dtype, name="dwconv")(h), 2, axis=-1)
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
