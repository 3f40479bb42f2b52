"""Squeeze-and-excitation blocks of SIBA (Sec. 3.2): SE, Res-SE (SE-ResNet) and CBSM.

Hu et al., "Squeeze-and-Excitation Networks" (CVPR 2018), Eq. 2-4; SIBA's Res-SE and its
channel boosting and space mapping module (CBSM, Eq. 1) that turns a source image into an
attention query.
"""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxfuse.nn.layers import Conv2d, PReLU

Dtype = Any

# SIBA initialises its (SE) linear layers with a truncated normal of std 0.02.
_linear_init = nn.initializers.truncated_normal(stddev=0.02, lower=-100.0, upper=100.0)


class SqueezeExcite(nn.Module):
    """SE: x * sigmoid(W2 relu(W1 mean_hw(x))), no biases, hidden width C // reduction."""

    reduction: int = 16
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        c = x.shape[-1]
        s = jnp.mean(x.astype(jnp.float32), axis=(1, 2))
        s = nn.relu(nn.Dense(c // self.reduction, use_bias=False, kernel_init=_linear_init, name="fc1")(s))
        s = nn.sigmoid(nn.Dense(c, use_bias=False, kernel_init=_linear_init, name="fc2")(s))
        return x * s[:, None, None, :].astype(x.dtype)


class ResSE(nn.Module):
    """Res-SE: y = PReLU(SE(conv2(PReLU(conv1(x)))) + res(x)), one PReLU slope for both sites.

    The residual is a 1x1 conv when the channel count changes, else the identity.
    """

    features: int
    use_se: bool = True
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        res = x
        if x.shape[-1] != self.features:
            res = Conv2d(self.features, 1, dtype=self.dtype, name="res_conv")(x)
        act = PReLU(name="act")
        t = act(Conv2d(self.features, 3, dtype=self.dtype, name="conv1")(x))
        t = Conv2d(self.features, 3, dtype=self.dtype, name="conv2")(t)
        if self.use_se:
            t = SqueezeExcite(dtype=self.dtype, name="se")(t)
        return act(t + res)


class CBSM(nn.Module):
    """CBSM: a source image -> attention query, PReLU(SE(conv2(PReLU(conv1(s))))), no residual."""

    features: int
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, s):
        act = PReLU(name="act")
        t = act(Conv2d(self.features, 3, dtype=self.dtype, name="conv1")(s))
        t = Conv2d(self.features, 3, dtype=self.dtype, name="conv2")(t)
        return act(SqueezeExcite(dtype=self.dtype, name="se")(t))


class ChannelSE(nn.Module):
    """cSE: x * sigmoid(fc2(relu(fc1(mean_hw x)))), with biases, hidden width C // reduction."""

    reduction: int = 2

    @nn.compact
    def __call__(self, x):
        c = x.shape[-1]
        s = jnp.mean(x.astype(jnp.float32), axis=(1, 2))
        s = nn.sigmoid(nn.Dense(c, name="fc2")(nn.relu(nn.Dense(c // self.reduction, name="fc1")(s))))
        return x * s[:, None, None, :].astype(x.dtype)


class SpatialSE(nn.Module):
    """sSE: x * sigmoid(conv1x1(x) -> 1 channel), with bias."""

    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        return x * nn.sigmoid(Conv2d(1, 1, dtype=self.dtype, name="conv")(x))


class ChannelSpatialSE(nn.Module):
    """scSE (Roy et al. 2018) as DMFuse's ``ChannelSpatialSELayer``: cSE(x) + sSE(x) (a sum)."""

    reduction: int = 2
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        return ChannelSE(self.reduction, name="cSE")(x) + SpatialSE(self.dtype, name="sSE")(x)
