"""Small 2-D filtering helpers shared by the metrics (batched over (B, H, W), static kernels).

MATLAB vocabulary is used on purpose, because the reference toolbox is MATLAB code:

* ``correlate(x, k, "valid")`` is ``filter2(k, x, 'valid')``;
* ``correlate(x, k, "same", pad="zero")`` is ``filter2(k, x, 'same')`` (``conv2(x, rot90(k, 2), 'same')``);
* ``pad="edge"`` is ``imfilter(..., 'replicate')``, ``pad="symmetric"`` is ``imfilter(..., 'symmetric')``
  (edge pixel repeated) and ``pad="reflect"`` is the "periodic extension" of the Nabf code
  (edge pixel not repeated).

For an even kernel size MATLAB's centre is ``floor((k + 1) / 2)`` (1-based), so a 2-tap kernel
looks one pixel forward; ``same`` padding follows that rule.
"""

from __future__ import annotations

import numpy as np
import jax
import jax.numpy as jnp

from jaxfuse.metrics import canvas

SHIFTED_TAPS = 4  # larger kernels run as convolution ops (see _conv)


def gaussian_1d(size: int, sigma: float) -> np.ndarray:
    """1-D factor of ``fspecial('gaussian', size, sigma)`` (its outer product is the 2-D kernel;
    no tail is small enough to be zeroed by fspecial for the sizes used here)."""
    r = (size - 1) / 2.0
    x = np.arange(-r, r + 1)
    h = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return h / h.sum()


def _pad(x, kh: int, kw: int, pad: str):
    top, left = (kh - 1) // 2, (kw - 1) // 2
    widths = ((0, 0), (top, kh - 1 - top), (left, kw - 1 - left))
    mode = {"zero": "constant", "edge": "edge", "symmetric": "symmetric", "reflect": "reflect"}[pad]
    return jnp.pad(x, widths, mode=mode)


def _pad_canvas(x, kh: int, kw: int, pad: str, size):
    top, left = (kh - 1) // 2, (kw - 1) // 2
    return canvas.extend(x, *size, ((top, kh - 1 - top), (left, kw - 1 - left)), pad)


def correlate(x, kernel, mode: str = "valid", pad: str = "zero", size=None, stride: int = 1):
    """2-D correlation of every image in ``x`` (B, H, W) with a fixed kernel.

    With ``size`` = (h, w) ((B,) arrays, see :mod:`jaxfuse.metrics.canvas`) ``x`` is a canvas
    and 'same' padding is rebuilt around its valid top-left (h, w) block; the output's valid
    region is (h, w) for 'same' and (h - kh + 1, w - kw + 1) for 'valid'.

    ``kernel`` is a 2-D array, or a ``(column, row)`` pair of 1-D factors for a separable one
    (two 1-D passes; with integer factors the result is exact for integer-valued images,
    which matters where the reference code tests gradients for exact zeros). ``stride`` keeps
    every stride-th output row and column (``out[:, ::stride, ::stride]``, computed directly).
    """
    sep = isinstance(kernel, tuple)
    k = (np.outer(*kernel) if sep else np.asarray(kernel, dtype=np.float64))
    if mode == "same":
        x = _pad(x, *k.shape, pad) if size is None else _pad_canvas(x, *k.shape, pad, size)
    elif mode != "valid":
        raise ValueError(f"mode must be 'valid' or 'same', not {mode!r}")
    if sep:
        col, row = (np.asarray(v, dtype=np.float64) for v in kernel)
        return _conv(_conv(x, col[:, None], (stride, 1)), row[None, :], (1, stride))
    return _conv(x, k, (stride, stride))


def _conv(x, k: np.ndarray, strides=(1, 1)):
    """'valid' correlation with a static 2-D kernel, keeping every ``strides[0]``-th output row
    and ``strides[1]``-th column (computed directly). Integer taps on integer images stay exact.

    Kernels of up to ``SHIFTED_TAPS`` taps are sums of shifted, scaled views, which XLA fuses
    into the consumers of the result; larger ones are convolution ops, whose result XLA
    materialises once (fused, a 17-tap pass was recomputed in each consumer: VIF 3x slower).
    """
    if k.size > SHIFTED_TAPS:
        out = jax.lax.conv_general_dilated(x[:, None], jnp.asarray(k, x.dtype)[None, None],
                                           strides, "VALID")
        return out[:, 0]
    h, w = x.shape[1] - k.shape[0] + 1, x.shape[2] - k.shape[1] + 1
    (sr, sc) = strides
    h, w = -(-h // sr), -(-w // sc)
    terms = [(float(k[r, c]), x[:, r:r + (h - 1) * sr + 1:sr, c:c + (w - 1) * sc + 1:sc])
             for r in range(k.shape[0]) for c in range(k.shape[1]) if k[r, c] != 0]
    out = None
    for c, v in terms:
        t = v if c == 1.0 else (-v if c == -1.0 else c * v)
        out = t if out is None else out + t
    return out if out is not None else jnp.zeros((x.shape[0], h, w), x.dtype)


def box_sum(x, size: int):
    """Sum over every ``size`` x ``size`` window ('valid'); exact for integer-valued inputs.

    Two 1-D window sums (reduce_window): ~2x faster than cumulative sums on XLA:CPU.
    """
    add = lambda v, win: jax.lax.reduce_window(v, 0.0, jax.lax.add, win, (1, 1, 1), "VALID")  # noqa: E731
    return add(add(x, (1, size, 1)), (1, 1, size))


def windows(x, size: int = 3):
    """The ``size**2`` shifted 'valid' views of ``x``, in MATLAB column-major window order.

    Returns (size*size, B, H - size + 1, W - size + 1): entry ``i`` is window element ``i`` of
    ``block(:)``, i.e. rows vary fastest.
    """
    h, w = x.shape[1] - size + 1, x.shape[2] - size + 1
    return jnp.stack([x[:, r:r + h, c:c + w] for c in range(size) for r in range(size)])


def correlate_many(xs, kernel, mode: str = "valid", pad: str = "zero", size=None, stride: int = 1):
    """``[correlate(x, kernel, ...) for x in xs]``."""
    return [correlate(x, kernel, mode, pad, size, stride) for x in xs]
