"""CrossFuse's re-softmax cross attention (Li & Wu, Information Fusion 2024, Sec. 3.2, Eq. 2-3).

``A = softmax(-(q k^T) / sqrt(d))``: the query stream attends to what the other modality has
and it lacks (the complementary information). As in the official code: q, k and v are three
separate Dense layers on inputs normalised by one shared ``norm1``; the residual comes from the
key/value stream, not the query; the block ends with an MLP and the module with a LayerNorm.
"""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxfuse.nn.vit import Mlp, from_tokens, multi_head_attention, to_tokens, token_layer_norm

Dtype = Any


class ReSoftmaxCrossAttention(nn.Module):
    """Cross attention on tokens: q from ``query``, k and v from ``x``; softmax of -scores."""

    heads: int = 16
    negate: bool = True  # False: ordinary softmax cross attention (the ablation)
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x_BxSxD, query_BxLxD):
        dim = x_BxSxD.shape[-1]
        q = nn.Dense(dim, dtype=self.dtype, name="q_linear")(query_BxLxD)
        k = nn.Dense(dim, dtype=self.dtype, name="k_linear")(x_BxSxD)
        v = nn.Dense(dim, dtype=self.dtype, name="v_linear")(x_BxSxD)
        for name, t in (("q", q), ("k", k), ("v", v)):
            self.sow("intermediates", name, t)
        out = multi_head_attention(q, k, v, self.heads, negate=self.negate)
        return nn.Dense(dim, dtype=self.dtype, name="proj")(out)


class SoftmaxCrossAttention(ReSoftmaxCrossAttention):
    """The same layers with the ordinary softmax (no negation)."""

    negate: bool = False


class CrossBlock(nn.Module):
    """``z = x + Attn(LN1(x), LN1(query)); z += MLP(LN2(z))``; x is the key/value stream."""

    heads: int = 16
    mlp_ratio: float = 4.0
    attention: type = ReSoftmaxCrossAttention
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x, query):
        norm1 = token_layer_norm(name="norm1")
        a = self.attention(self.heads, dtype=self.dtype, name="attn")(
            norm1(x).astype(self.dtype), norm1(query).astype(self.dtype))
        self.sow("intermediates", "attn_out", a)
        z = x + a.astype(x.dtype)
        m = Mlp(self.mlp_ratio, dtype=self.dtype, name="mlp")(token_layer_norm(name="norm2")(z).astype(self.dtype))
        self.sow("intermediates", "mlp_out", m)
        return z + m.astype(z.dtype)


class CrossTransformer(nn.Module):
    """``cross_atten_module`` with one block on map tokens: ``norm(CrossBlock(x, query))``.

    ``x`` (key/value and residual) and ``query`` are (N, H, W, C) maps; tokens are raw
    ``patch`` x ``patch`` patches as in :func:`jaxfuse.nn.vit.to_tokens`. The official module
    returns its final LayerNorm's output. (Depth > 1 chains oddly in the official code and is
    not used by it, so only depth 1 is provided.)
    """

    heads: int = 16
    mlp_ratio: float = 4.0
    patch: int = 2
    attention: type = ReSoftmaxCrossAttention
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x_NxHxWxC, query):
        h, w = x_NxHxWxC.shape[1:3]
        z = CrossBlock(self.heads, self.mlp_ratio, self.attention, self.dtype, name="blocks_0")(
            to_tokens(x_NxHxWxC, self.patch), to_tokens(query, self.patch))
        return from_tokens(token_layer_norm(name="norm")(z).astype(self.dtype), h, w, self.patch)
