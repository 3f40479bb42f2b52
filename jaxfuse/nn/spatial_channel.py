"""Spatial and channel attention of RefineFuse (Song et al., Visual Intelligence 2025).

* ``SpatialAttentionMaps``: sigma(Conv3x3([max_c x, mean_c x])), the spatial maps of SFIM (Sec. 3.2).
* ``PairedGroupedConv``: Eq. 2, the interleaved [ir_1, vi_1, ir_2, vi_2, ...] grouped 3x3 conv.
* ``SFIM``: Eq. 1-2, pair spatial attention, then the paired grouped conv and ReLU.
* ``channel_gate`` and ``FIM``: Eq. 5, GAP + sigmoid gates (no parameters) joining deep and
  shallow features.
* ``ConcatFusion``: "conventional concatenation and convolution" (Table 9, row I), the fusion a
  disabled SFIM/PSIM becomes.

Pair fusion modules share one interface: ``f(f_ir, f_vi) -> fused`` on (B, H, W, C) maps.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxfuse.nn.layers import Conv2d, _depthwise, resize_bilinear, torch_uniform_bias_init, torch_uniform_kernel_init

Dtype = Any


class SpatialAttentionMaps(nn.Module):
    """``maps`` spatial attention maps sigma(Conv3x3, 2 -> maps ([max_c x, mean_c x])), max first."""

    maps: int = 2
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        pooled_BxHxWx2 = jnp.concatenate([jnp.max(x, -1, keepdims=True), jnp.mean(x, -1, keepdims=True)], -1)
        return nn.sigmoid(Conv2d(self.maps, 3, dtype=self.dtype, name="conv")(pooled_BxHxWx2))


class PairedGroupedConv(nn.Module):
    """Eq. 2: channels interleaved [ir_1, vi_1, ...], then a 3x3 conv with groups = C, 2C -> C.

    The kernel is the grouped conv's own (3, 3, 2, C) HWIO kernel (torch ``(C, 2, 3, 3)``):
    ``[:, :, 0, a]`` acts on ir_a, ``[:, :, 1, a]`` on vi_a. ``fast`` computes each output as
    depthwise(ir) + depthwise(vi) + b (XLA's CPU grouped convs are slow); otherwise the
    interleaved ``lax`` grouped conv, which the tests check it against.
    """

    fast: bool = True
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, ir, vi):
        c = ir.shape[-1]
        kernel = self.param("kernel", torch_uniform_kernel_init(), (3, 3, 2, c)).astype(self.dtype)
        bias = self.param("bias", torch_uniform_bias_init(2 * 9), (c,)).astype(self.dtype)
        ir, vi = ir.astype(self.dtype), vi.astype(self.dtype)
        if self.fast:
            return _depthwise(ir, kernel[:, :, 0, :], 1) + _depthwise(vi, kernel[:, :, 1, :], 1) + bias
        interleaved_BxHxWx2C = jnp.stack([ir, vi], -1).reshape(ir.shape[:3] + (2 * c,))
        y = jax.lax.conv_general_dilated(interleaved_BxHxWx2C, kernel, (1, 1), ((1, 1), (1, 1)),
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=c)
        return y + bias


class SFIM(nn.Module):
    """Spatial feature interaction (Eq. 1-2): [W_ir, W_vi] from [E_ir, E_vi]; E_m (+) E_m (x) W_m;
    the paired grouped conv; ReLU. ``residual=False`` drops the (+) E_m (choice C3)."""

    residual: bool = True
    fast: bool = True
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, e_ir, e_vi):
        w_BxHxWx2 = SpatialAttentionMaps(2, self.dtype, name="spatial")(jnp.concatenate([e_ir, e_vi], -1))
        self.sow("intermediates", "weights", w_BxHxWx2)
        w_ir, w_vi = w_BxHxWx2[..., :1], w_BxHxWx2[..., 1:]
        ir_hat, vi_hat = e_ir * w_ir, e_vi * w_vi
        if self.residual:
            ir_hat, vi_hat = e_ir + ir_hat, e_vi + vi_hat
        return nn.relu(PairedGroupedConv(self.fast, self.dtype, name="grouped")(ir_hat, vi_hat))


def channel_gate(x):
    """delta(GAP(x)): (B, 1, 1, C) sigmoid of the global average, float32 statistics, no parameters."""
    return nn.sigmoid(jnp.mean(x.astype(jnp.float32), axis=(1, 2), keepdims=True)).astype(x.dtype)


class FIM(nn.Module):
    """Feature interaction (Eq. 5): F^_2 = F_2 (x) delta(GAP D) (+) F_2 (x) delta(GAP F_2); out = Up(D) (+) F^_2.

    ``spatial=True`` also gates F^_2 by the SFIM-style spatial map of Up(D) (choice C6, off by default).
    """

    spatial: bool = False
    align_corners: bool = False
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, deep, shallow):
        up = resize_bilinear(deep, shallow.shape[1], shallow.shape[2], self.align_corners)
        enhanced = shallow * channel_gate(deep) + shallow * channel_gate(shallow)
        if self.spatial:
            enhanced = enhanced * SpatialAttentionMaps(1, self.dtype, name="spatial")(up)
        return up + enhanced


class ConcatFusion(nn.Module):
    """ReLU(Conv3x3, 2C -> C ([f_ir, f_vi])): the plain fusion of the ablations (Table 9, row I)."""

    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, f_ir, f_vi):
        return nn.relu(Conv2d(f_ir.shape[-1], 3, dtype=self.dtype, name="conv")(jnp.concatenate([f_ir, f_vi], -1)))
