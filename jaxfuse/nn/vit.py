"""Pre-norm ViT blocks on token sequences (B, L, D), and raw-patch tokenisation of feature maps.

Dosovitskiy et al. (ICLR 2021) blocks as CrossFuse's self-attention stages use them
(Li & Wu, Information Fusion 2024, Sec. 3.2, Eq. 1 as the official code implements it):
``x += Attn(LN1(x)); x += MLP(LN2(x))`` with multi-head softmax attention scaled by d^-1/2 and
an exact-erf GELU MLP. Tokens are raw p x p patches of a feature map flattened channel-major,
``(c, dy, dx)``, with no learned projection and no positional embedding.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

Dtype = Any


def token_layer_norm(epsilon: float = 1e-6, name=None):
    """``torch.nn.LayerNorm(D, eps)`` over the token features; statistics in float32."""
    return nn.LayerNorm(epsilon=epsilon, use_fast_variance=False, dtype=jnp.float32, name=name)


def to_tokens(x_NxHxWxC, patch: int):
    """(N, H, W, C) -> (N, H/p * W/p, C*p*p): raster-order p x p patches, features (c, dy, dx)."""
    n, h, w, c = x_NxHxWxC.shape
    x = x_NxHxWxC.reshape(n, h // patch, patch, w // patch, patch, c)
    return x.transpose(0, 1, 3, 5, 2, 4).reshape(n, (h // patch) * (w // patch), c * patch * patch)


def from_tokens(t_NxLxD, height: int, width: int, patch: int):
    """Inverse of :func:`to_tokens`: (N, L, D) -> (N, height, width, D / p^2)."""
    n, _, d = t_NxLxD.shape
    c = d // (patch * patch)
    x = t_NxLxD.reshape(n, height // patch, width // patch, c, patch, patch)
    return x.transpose(0, 1, 4, 2, 5, 3).reshape(n, height, width, c)


def multi_head_attention(q_BxLxD, k_BxSxD, v_BxSxD, heads: int, negate: bool = False):
    """softmax(+-q k^T / sqrt(d)) v per head; head h owns features h*d .. h*d+d-1.

    ``negate=True`` is CrossFuse's re-softmax (Eq. 3): the softmax of the negated scores, so
    a query attends most to the keys *least* like it. Softmax in float32.
    """
    b, l, dim = q_BxLxD.shape
    d = dim // heads
    q_BxLxhxd = q_BxLxD.reshape(b, l, heads, d)
    k_BxSxhxd = k_BxSxD.reshape(b, -1, heads, d)
    v_BxSxhxd = v_BxSxD.reshape(b, -1, heads, d)
    scores_BxhxLxS = jnp.einsum("blhd,bshd->bhls", q_BxLxhxd, k_BxSxhxd).astype(jnp.float32) * d ** -0.5
    attn_BxhxLxS = jax.nn.softmax(-scores_BxhxLxS if negate else scores_BxhxLxS, axis=-1)
    out_BxLxhxd = jnp.einsum("bhls,bshd->blhd", attn_BxhxLxS.astype(v_BxSxhxd.dtype), v_BxSxhxd)
    return out_BxLxhxd.reshape(b, l, dim)


class MultiHeadSelfAttention(nn.Module):
    """ViT self-attention: one ``qkv`` Dense(3D) (columns [q | k | v] x [head][d]), then ``proj``."""

    heads: int = 16
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x_BxLxD):
        dim = x_BxLxD.shape[-1]
        qkv = nn.Dense(3 * dim, dtype=self.dtype, name="qkv")(x_BxLxD)
        self.sow("intermediates", "qkv_out", qkv)
        q, k, v = jnp.split(qkv, 3, axis=-1)
        return nn.Dense(dim, dtype=self.dtype, name="proj")(multi_head_attention(q, k, v, self.heads))


class Mlp(nn.Module):
    """fc1 (D -> ratio*D) -> exact-erf GELU -> fc2."""

    ratio: float = 4.0
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        dim = x.shape[-1]
        x = nn.Dense(int(dim * self.ratio), dtype=self.dtype, name="fc1")(x)
        x = jax.nn.gelu(x, approximate=False)
        return nn.Dense(dim, dtype=self.dtype, name="fc2")(x)


class ViTBlock(nn.Module):
    """Pre-norm transformer block: ``x += Attn(LN1(x)); x += MLP(LN2(x))``."""

    heads: int = 16
    mlp_ratio: float = 4.0
    attention: type = MultiHeadSelfAttention
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        y = token_layer_norm(name="norm1")(x).astype(self.dtype)
        self.sow("intermediates", "norm1_out", y)
        a = self.attention(self.heads, dtype=self.dtype, name="attn")(y)
        self.sow("intermediates", "attn_out", a)
        x = x + a.astype(x.dtype)
        y = token_layer_norm(name="norm2")(x).astype(self.dtype)
        return x + Mlp(self.mlp_ratio, dtype=self.dtype, name="mlp")(y).astype(x.dtype)


class TokenMapTransformer(nn.Module):
    """``depth`` ViT blocks (``blocks_0..``) on the raw-patch tokens of a feature map.

    ``shift`` > 0 is CrossFuse's shifted self-attention: the map is rolled by (-shift, -shift)
    inside itself (circularly, as ``torch.roll``), attended, and rolled back. With no positional
    information and a shift that is a multiple of ``patch`` the roll only permutes tokens, so
    it changes the result by float rounding alone (official: <= 1.8e-4 on the 0-255 output).
    """

    depth: int = 1
    heads: int = 16
    mlp_ratio: float = 4.0
    patch: int = 2
    shift: int = 0
    attention: type = MultiHeadSelfAttention
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x_NxHxWxC):
        h, w = x_NxHxWxC.shape[1:3]
        if self.shift:
            x_NxHxWxC = jnp.roll(x_NxHxWxC, (-self.shift, -self.shift), axis=(1, 2))
        t = to_tokens(x_NxHxWxC, self.patch)
        self.sow("intermediates", "tokens_in", t)
        for i in range(self.depth):
            t = ViTBlock(self.heads, self.mlp_ratio, self.attention, self.dtype, name=f"blocks_{i}")(t)
        x = from_tokens(t, h, w, self.patch)
        return jnp.roll(x, (self.shift, self.shift), axis=(1, 2)) if self.shift else x
