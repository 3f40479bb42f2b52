"""Basic layers with PyTorch semantics: convolutions with explicit padding, PReLU, init.

Convolutions take NHWC inputs and HWIO kernels. ``padding_mode`` is ``"zeros"`` or ``"reflect"``
(PyTorch's ``reflect``, i.e. NumPy's ``reflect``: the edge pixel is not repeated). Default
initialisers reproduce PyTorch's ``Conv2d`` defaults (kaiming-uniform a=sqrt(5) weights and
U(+-1/sqrt(fan_in)) biases), so training from scratch starts where the official code starts.
"""

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

Dtype = Any


def torch_uniform_kernel_init():
    """PyTorch's default conv/linear weight init: U(+-1/sqrt(fan_in))."""
    return nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def torch_uniform_bias_init(fan_in: int):
    """PyTorch's default conv/linear bias init: U(+-1/sqrt(fan_in))."""
    bound = 1.0 / max(fan_in, 1) ** 0.5

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


class Conv2d(nn.Module):
    """``torch.nn.Conv2d`` on NHWC inputs; parameters ``kernel`` (HWIO) and ``bias``."""

    features: int
    kernel_size: int = 3
    padding: int | None = None  # None: "same" padding, kernel_size // 2
    padding_mode: str = "zeros"
    groups: int = 1
    use_bias: bool = True
    strides: int = 1
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        k, pad = self.kernel_size, self.kernel_size // 2 if self.padding is None else self.padding
        if self.padding_mode not in ("zeros", "reflect"):
            raise ValueError(f"padding_mode must be 'zeros' or 'reflect', got {self.padding_mode!r}")
        if self.padding_mode == "reflect" and pad:
            x = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
            pad = 0
        cin = x.shape[-1] // self.groups
        kernel = self.param("kernel", torch_uniform_kernel_init(), (k, k, cin, self.features))
        x, kernel = x.astype(self.dtype), kernel.astype(self.dtype)
        if k == 1 and self.strides == 1 and pad == 0 and self.groups == 1:
            y = pointwise(x, kernel[0, 0])
        elif self.groups == x.shape[-1] == self.features and self.strides == 1:
            y = _depthwise(x, kernel[:, :, 0, :], pad)
        else:
            y = jax.lax.conv_general_dilated(
                x, kernel, (self.strides, self.strides), ((pad, pad), (pad, pad)),
                dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=self.groups)
        if self.use_bias:
            bias = self.param("bias", torch_uniform_bias_init(cin * k * k), (self.features,))
            y = y + bias.astype(self.dtype)
        return y


@jax.custom_vjp
def pointwise(x, kernel_CxD):
    """x @ kernel over the last axis (a 1x1 convolution).

    Its gradient is the same arithmetic as autodiff's, arranged for XLA:CPU: the kernel
    gradient x^T g needs one operand transposed, and left alone XLA transposes g inside the
    fusion that produces it (a depthwise or LayerNorm backward pass, read in transposed order:
    up to 0.6 s per call at 4x128x128x96). Here x is transposed instead, as a plain copy.
    """
    return x @ kernel_CxD


def _pointwise_fwd(x, kernel_CxD):
    return x @ kernel_CxD, (x, kernel_CxD)


def _pointwise_bwd(res, g):
    x, kernel_CxD = res
    c, d = kernel_CxD.shape
    x_CxN = jax.lax.optimization_barrier(x).reshape(-1, c).T
    return g @ kernel_CxD.T, (x_CxN @ g.reshape(-1, d)).astype(kernel_CxD.dtype)


pointwise.defvjp(_pointwise_fwd, _pointwise_bwd)


def _shifted_sum(x, kernel_kxkxC, pad: int):
    """sum_ij pad(x)[:, i:i+h, j:j+w] * k[i, j]: depthwise cross-correlation, stride 1."""
    k = kernel_kxkxC.shape[0]
    h, w = x.shape[1] + 2 * pad - k + 1, x.shape[2] + 2 * pad - k + 1
    xp = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    return sum(xp[:, i:i + h, j:j + w, :] * kernel_kxkxC[i, j] for i in range(k) for j in range(k))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _depthwise(x, kernel_kxkxC, pad: int):
    """Depthwise cross-correlation as k*k shifted multiply-adds, with its own gradient.

    Same arithmetic as a grouped convolution, but XLA's CPU backend runs grouped convolutions
    (and above all their gradients) an order of magnitude slower than these fused elementwise
    ops; on GPU both are memory-bound and this form fuses into one kernel. The input gradient
    is the same form with the flipped kernel; the kernel gradient is ``_tap_sums``.
    """
    return _shifted_sum(x, kernel_kxkxC, pad)


def _depthwise_fwd(x, kernel_kxkxC, pad):
    return _shifted_sum(x, kernel_kxkxC, pad), (x, kernel_kxkxC)


def _depthwise_bwd(pad, res, g):
    x, kernel_kxkxC = res
    k = kernel_kxkxC.shape[0]
    dx = _shifted_sum(g, kernel_kxkxC[::-1, ::-1], k - 1 - pad)
    xp = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    dk = _tap_sums(xp, g, k)
    return dx, dk.reshape(kernel_kxkxC.shape).astype(kernel_kxkxC.dtype)


def _tap_sums(xp, g, k: int, rows: int = 8):
    """dk[i*k+j, c] = sum over (b, y, x) of xp[b, y+i, x+j, c] * g[b, y, x, c].

    On the CPU the sums run over blocks of ``rows`` output rows of one image at a time, so the
    k*k products of a block are summed while it is in cache, into per-column partial sums that
    are added up once at the end; elsewhere they are plain reductions.
    """
    b, h, w, c = g.shape

    def column_sums(xb, gb):  # (k*k, w, c): summed over the batch and rows of the block
        r = gb.shape[1]
        return jnp.stack([(xb[:, i:i + r, j:j + w] * gb).sum((0, 1), dtype=jnp.float32)
                          for i in range(k) for j in range(k)])

    def blocked():
        nb = h // rows

        def body(n, acc):
            bi, y0 = n // nb, (n % nb) * rows
            xb = jax.lax.dynamic_slice(xp, (bi, y0, 0, 0), (1, rows + k - 1, w + k - 1, c))
            gb = jax.lax.dynamic_slice(g, (bi, y0, 0, 0), (1, rows, w, c))
            return acc + column_sums(xb, gb)

        acc = jnp.zeros((k * k, w, c), jnp.float32)
        if nb:
            acc = jax.lax.fori_loop(0, b * nb, body, acc)
        if h % rows:
            y0 = nb * rows
            acc = acc + column_sums(xp[:, y0:], g[:, y0:])
        return acc.sum(1)

    return jax.lax.platform_dependent(cpu=blocked, default=lambda: column_sums(xp, g).sum(1))


_depthwise.defvjp(_depthwise_fwd, _depthwise_bwd)


def conv1x1(features: int, use_bias: bool = False, dtype: Dtype = jnp.float32, name=None):
    """A pointwise convolution (PyTorch ``Conv2d(c, features, 1)``)."""
    return Conv2d(features, kernel_size=1, use_bias=use_bias, dtype=dtype, name=name)


def pointwise_depthwise3x3(x, features: int, names: tuple[str, str], dtype: Dtype = jnp.float32):
    """DW3(Conv1(x)), both bias-free (Restormer's q|k|v and GDFN projections).

    The depthwise's zero border is padded onto the narrow input instead of the wide 1x1 output:
    a bias-free 1x1 convolution maps a zero pixel to zero, so the numbers are the same, and no
    padded copy of the wide map is made (12 such copies took 0.27 s of SIBA at 480x640).
    """
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    h = conv1x1(features, dtype=dtype, name=names[0])(xp)
    return depthwise3x3(features, padding=0, dtype=dtype, name=names[1])(h)


def depthwise3x3(channels: int, use_bias: bool = False, padding: int = 1, dtype: Dtype = jnp.float32,
                 name=None):
    """A depthwise 3x3 convolution with zero padding (PyTorch ``Conv2d(c, c, 3, padding, groups=c)``)."""
    return Conv2d(channels, 3, padding=padding, groups=channels, use_bias=use_bias, dtype=dtype, name=name)


class PReLU(nn.Module):
    """``torch.nn.PReLU()``: one learnable slope ``a`` (init 0.25); max(x, 0) + a min(x, 0)."""

    init_value: float = 0.25

    @nn.compact
    def __call__(self, x):
        a = self.param("slope", nn.initializers.constant(self.init_value), ())
        return jnp.where(x >= 0, x, a.astype(x.dtype) * x)


class BatchNorm(nn.Module):
    """``torch.nn.BatchNorm2d`` over the last axis: params ``scale``/``bias``, ``batch_stats`` ``mean``/``var``.

    Training (``use_running_average=False``) normalises with the batch's biased variance and
    updates the running statistics as torch does: ``new = (1 - momentum) * old + momentum * stat``
    with the *unbiased* variance (n / (n - 1)). Statistics in float32. Under ``jax.jit`` over a
    mesh the means run over the global batch (synchronised BatchNorm, no ``axis_name`` needed).
    """

    momentum: float = 0.1
    epsilon: float = 1e-5
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x, use_running_average: bool = True):
        c = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (c,))
        bias = self.param("bias", nn.initializers.zeros, (c,))
        ra_mean = self.variable("batch_stats", "mean", jnp.zeros, (c,), jnp.float32)
        ra_var = self.variable("batch_stats", "var", jnp.ones, (c,), jnp.float32)
        if use_running_average:
            mean, var = ra_mean.value, ra_var.value
        else:
            xf = x.astype(jnp.float32)
            axes = tuple(range(x.ndim - 1))
            mean = jnp.mean(xf, axis=axes)
            var = jnp.mean(jnp.square(xf - mean), axis=axes)
            if not self.is_initializing():
                n = xf.size // c
                m = self.momentum
                ra_mean.value = (1 - m) * ra_mean.value + m * mean
                ra_var.value = (1 - m) * ra_var.value + m * var * (n / max(n - 1, 1))
        mul = scale * jax.lax.rsqrt(var + self.epsilon)
        return (x * mul.astype(x.dtype) + (bias - mean * mul).astype(x.dtype)).astype(self.dtype)



def _interpolation_taps(n_in: int, n_out: int, align_corners: bool):
    """(lo, hi, frac) source taps of ``F.interpolate(mode="bilinear")`` on one axis."""
    i = np.arange(n_out, dtype=np.float64)
    if align_corners:
        src = i * ((n_in - 1) / (n_out - 1)) if n_out > 1 else np.zeros(n_out)
    else:  # half-pixel centres, negative coordinates clamped to 0 as torch does
        src = np.maximum((i + 0.5) * (n_in / n_out) - 0.5, 0.0)
    lo = np.minimum(np.floor(src).astype(np.int32), n_in - 1)
    return lo, np.minimum(lo + 1, n_in - 1), (src - lo).astype(np.float32)


def _resize_axis(x, axis: int, n_out: int, align_corners: bool):
    lo, hi, frac = _interpolation_taps(x.shape[axis], n_out, align_corners)
    shape = [1] * x.ndim
    shape[axis] = n_out
    frac = jnp.asarray(frac.reshape(shape), x.dtype)
    return jnp.take(x, lo, axis=axis) * (1 - frac) + jnp.take(x, hi, axis=axis) * frac


def resize_bilinear(x, height: int, width: int, align_corners: bool = False):
    """``F.interpolate(x, (height, width), mode="bilinear", align_corners=...)`` on NHWC, no antialiasing.

    Two taps per axis (H, then W), for up- and down-sampling alike; the identity when the size
    already matches.
    """
    if x.shape[1] != height:
        x = _resize_axis(x, 1, height, align_corners)
    if x.shape[2] != width:
        x = _resize_axis(x, 2, width, align_corners)
    return x
