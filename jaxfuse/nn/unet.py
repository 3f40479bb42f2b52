"""The SR3 diffusion UNet (Saharia et al. 2021, as in DMFuse's ``model/sr3_modules/unet.py``).

Conditioned on the continuous noise level gamma = sqrt(alpha_bar) (not the step t): a sinusoidal
encoding through a 2-layer Swish MLP, added per channel in every ResnetBlock. GroupNorm + Swish
+ conv blocks with zero padding, single-head self-attention placed by the *nominal*
``image_size`` (so at the same depth for every input size), stride-2 conv downsampling and
nearest x2 + conv upsampling, skips concatenated ``[up path, skip]`` in LIFO order.

``features`` returns the decoder features DMFuse uses (the first ResnetBlock of every decoder
level, Qi et al. 2024, Sec. 3.2) and stops after the last of them.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxfuse.nn.layers import Conv2d

Dtype = Any
_orthogonal = nn.initializers.orthogonal()  # the SR3 / DMFuse init (init_weights 'orthogonal')


def swish(x):
    return x * jax.nn.sigmoid(x)


def _conv(features, kernel_size=3, strides=1, padding=None, use_bias=True, dtype=jnp.float32, name=None):
    return Conv2d(features, kernel_size, padding=padding, strides=strides, use_bias=use_bias, dtype=dtype, name=name)


def _group_norm(groups: int, name=None):
    return nn.GroupNorm(num_groups=groups, epsilon=1e-5, use_fast_variance=False, dtype=jnp.float32, name=name)


def noise_level_encoding(gamma_B, dim: int):
    """[sin(gamma f_k), cos(gamma f_k)], f_k = exp(-ln(1e4) k / (dim/2)), k < dim/2; float32."""
    half = dim // 2
    freqs = jnp.exp(-math.log(1e4) * jnp.arange(half, dtype=jnp.float32) / half)
    arg = gamma_B.astype(jnp.float32)[:, None] * freqs[None]
    return jnp.concatenate([jnp.sin(arg), jnp.cos(arg)], axis=-1)


class Block(nn.Module):
    """GroupNorm -> Swish -> Dropout -> Conv3x3 (``block.0`` ... ``block.3``)."""

    features: int
    groups: int = 32
    dropout: float = 0.0
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        h = swish(_group_norm(self.groups, name="block_0")(x)).astype(self.dtype)
        if self.dropout > 0:
            h = nn.Dropout(self.dropout)(h, deterministic=not train)
        return _conv(self.features, dtype=self.dtype, name="block_3")(h)


class ResnetBlock(nn.Module):
    """Block1, + Linear(emb) per channel (FeatureWiseAffine), Block2 (dropout), + 1x1/identity skip."""

    features: int
    groups: int = 32
    dropout: float = 0.0
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x, emb, train: bool = False):
        h = Block(self.features, self.groups, dtype=self.dtype, name="block1")(x)
        bias = FeatureWiseAffine(self.features, name="noise_func")(emb)
        h = h + bias[:, None, None, :].astype(h.dtype)
        h = Block(self.features, self.groups, self.dropout, self.dtype, name="block2")(h, train)
        skip = x if x.shape[-1] == self.features else _conv(self.features, 1, dtype=self.dtype, name="res_conv")(x)
        return h + skip


class FeatureWiseAffine(nn.Module):
    """``use_affine_level=False``: a per-channel bias Linear(emb) (``noise_func.0``)."""

    features: int

    @nn.compact
    def __call__(self, emb):
        return nn.Dense(self.features, name="noise_func_0")(emb)


class SelfAttention(nn.Module):
    """Single-head attention over all H*W positions: GN, qkv 1x1 (no bias), softmax(q k^T / sqrt(C)), out 1x1."""

    groups: int = 32
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        b, h, w, c = x.shape
        n = _group_norm(self.groups, name="norm")(x).astype(self.dtype)
        qkv = _conv(3 * c, 1, use_bias=False, dtype=self.dtype, name="qkv")(n).reshape(b, h * w, 3 * c)
        q_BxNxC, k_BxNxC, v_BxNxC = jnp.split(qkv, 3, axis=-1)
        logits_BxNxN = jnp.einsum("bnc,bmc->bnm", q_BxNxC, k_BxNxC).astype(jnp.float32) / math.sqrt(c)
        attn_BxNxN = jax.nn.softmax(logits_BxNxN, axis=-1).astype(self.dtype)
        out = jnp.einsum("bnm,bmc->bnc", attn_BxNxN, v_BxNxC).reshape(b, h, w, c)
        return _conv(c, 1, dtype=self.dtype, name="out")(out) + x


class ResnetBlockWithAttn(nn.Module):
    """``ResnetBlocWithAttn``: a ResnetBlock, then optionally SelfAttention."""

    features: int
    groups: int = 32
    dropout: float = 0.0
    with_attn: bool = False
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x, emb, train: bool = False):
        x = ResnetBlock(self.features, self.groups, self.dropout, self.dtype, name="res_block")(x, emb, train)
        return SelfAttention(self.groups, self.dtype, name="attn")(x) if self.with_attn else x


class Downsample(nn.Module):
    """Conv3x3 stride 2, padding 1 on both sides (not Flax's SAME, which pads (0, 1))."""

    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        return _conv(x.shape[-1], 3, strides=2, padding=1, dtype=self.dtype, name="conv")(x)


class Upsample(nn.Module):
    """Nearest x2, then Conv3x3."""

    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        x = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
        return _conv(x.shape[-1], 3, dtype=self.dtype, name="conv")(x)


class SR3UNet(nn.Module):
    """SR3 UNet: ``__call__(x_t, gamma)`` predicts the noise; ``features`` gives DMFuse's features.

    Layer lists and names follow the official ``downs``/``mid``/``ups`` ModuleLists, so the
    state-dict keys map mechanically (``downs.12.attn.qkv`` -> ``downs_12/attn/qkv``).
    """

    in_channel: int = 3
    out_channel: int = 3
    inner_channel: int = 32
    channel_mults: Sequence[int] = (1, 2, 4, 8, 8)
    res_blocks: int = 2
    attn_res: Sequence[int] = (16,)
    image_size: int = 256
    norm_groups: int = 32
    dropout: float = 0.2
    dtype: Dtype = jnp.float32

    def setup(self):
        ic, g = self.inner_channel, self.norm_groups
        self.noise_level_mlp_1 = nn.Dense(4 * ic, kernel_init=_orthogonal)
        self.noise_level_mlp_3 = nn.Dense(ic, kernel_init=_orthogonal)
        self.init_conv = _conv(ic, dtype=self.dtype)
        downs, res, last = [], self.image_size, len(self.channel_mults) - 1
        for level, mult in enumerate(self.channel_mults):
            for _ in range(self.res_blocks):
                downs.append(ResnetBlockWithAttn(ic * mult, g, self.dropout, res in self.attn_res, self.dtype))
            if level != last:
                downs.append(Downsample(self.dtype))
                res //= 2
        self.downs = downs
        deepest = ic * self.channel_mults[-1]
        self.mid = [ResnetBlockWithAttn(deepest, g, self.dropout, True, self.dtype),
                    ResnetBlockWithAttn(deepest, g, self.dropout, False, self.dtype)]
        ups = []
        for level in reversed(range(len(self.channel_mults))):
            for _ in range(self.res_blocks + 1):
                ups.append(ResnetBlockWithAttn(ic * self.channel_mults[level], g, self.dropout,
                                               res in self.attn_res, self.dtype))
            if level:
                ups.append(Upsample(self.dtype))
                res *= 2
        self.ups = ups
        self.final_conv = Block(self.out_channel, g, dtype=self.dtype)

    def embed(self, gamma_B):
        pe = noise_level_encoding(gamma_B, self.inner_channel)
        return self.noise_level_mlp_3(swish(self.noise_level_mlp_1(pe)))

    def _run(self, x, gamma_B, train: bool, stop_after: int | None):
        """(last output, encoder features fe, up-ResnetBlock outputs in execution order)."""
        self._check_size(x)
        emb = self.embed(gamma_B)
        x = self.init_conv(x.astype(self.dtype))
        fe = [x]
        for layer in self.downs:
            x = layer(x, emb, train) if isinstance(layer, ResnetBlockWithAttn) else layer(x)
            fe.append(x)
        for i, layer in enumerate(self.mid):
            x = layer(x, emb, train)
            self.sow("intermediates", f"mid{i}", x)
        skips, ups = list(fe), []
        for i, layer in enumerate(self.ups):
            if isinstance(layer, ResnetBlockWithAttn):
                x = layer(jnp.concatenate([x, skips.pop()], axis=-1), emb, train)
                ups.append(x)
            else:
                x = layer(x)
            if stop_after is not None and i == stop_after:
                return x, fe, ups
        return x, fe, ups

    def _check_size(self, x):
        f = 2 ** (len(self.channel_mults) - 1)
        h, w = x.shape[1:3]
        if h % f or w % f:
            raise ValueError(f"the SR3 UNet needs H and W divisible by {f}, got {h}x{w}")

    def __call__(self, x_t, gamma_B, train: bool = False):
        """Predicted noise; ``self.sow``s ``fe_XX``/``fd_XX`` (``fd`` = the up blocks reversed)."""
        x, fe, ups = self._run(x_t, gamma_B, train, None)
        for i, f in enumerate(fe):
            self.sow("intermediates", f"fe_{i:02d}", f)
        for i, f in enumerate(reversed(ups)):
            self.sow("intermediates", f"fd_{i:02d}", f)
        return self.final_conv(x).astype(jnp.float32)

    def used_decoder_blocks(self) -> list[int]:
        """Indices (execution order among the up ResnetBlocks) of the first block of each level."""
        return [level * (self.res_blocks + 1) for level in range(len(self.channel_mults))]

    def features(self, x_t, gamma_B):
        """The first up ResnetBlock output of every decoder level, finest first (fd[2], fd[5], ...).

        Eval mode (no dropout); the up path stops after the last of them.
        """
        per_level = self.res_blocks + 2  # ResnetBlocks + Upsample per decoder level
        last = (len(self.channel_mults) - 1) * per_level
        _, _, ups = self._run(x_t, gamma_B, False, last)
        return [ups[i] for i in reversed(self.used_decoder_blocks())]
