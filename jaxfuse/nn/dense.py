"""DenseNet-style block of the CrossFuse auto-encoders (Li & Wu 2024, Sec. 3.1; Huang et al. 2017).

``layers`` times ``x = concat[x, Conv3x3(x)]`` (the input first, ``growth`` new channels each),
then ``adjust_conv`` (3x3) to ``features``. Reflect padding, bias, no norm and no activation,
as the official ``DenseBlock`` (the whole CrossFuse encoder is linear between its max-pools).
"""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxfuse.nn.layers import Conv2d

Dtype = Any


def reflect_conv(features: int, kernel_size: int = 3, dtype: Dtype = jnp.float32, name=None):
    """CrossFuse's ``ConvLayer``: ``ReflectionPad2d(k // 2)`` then ``Conv2d`` with bias."""
    return Conv2d(features, kernel_size, padding_mode="reflect", dtype=dtype, name=name)


class DenseBlock(nn.Module):
    """``layers`` dense 3x3 convolutions (``dense_conv0..``), then ``adjust_conv`` -> ``features``."""

    features: int = 128
    growth: int = 64
    layers: int = 3
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        for i in range(self.layers):
            x = jnp.concatenate([x, reflect_conv(self.growth, dtype=self.dtype, name=f"dense_conv{i}")(x)], -1)
        return reflect_conv(self.features, dtype=self.dtype, name="adjust_conv")(x)
