"""Images on bucket-shaped canvases, so one compiled program serves many image sizes.

XLA compiles one program per input shape; a folder of 17 image sizes used to cost 17
compilations (seconds each). :mod:`jaxfuse.metrics.buckets` rounds (H, W) up to a few bucket
shapes; an image of h x w sits at the top-left of its canvas and every metric reads only its
*valid region*, the top-left (h', w') block of each intermediate (h' = h - k + 1 after a 'valid'
k-tap filter, ceil(h / 2) after 2x decimation, ...). The sizes are traced (B,) integer arrays,
so they are data, not part of the compiled shape. Outside the valid region values are arbitrary
(finite or not): reductions select with ``where`` (never multiply by a mask), and border rules
('same' filters) are rebuilt from the valid region by :func:`extend`. Results equal those on the
unpadded image up to the order of floating-point summation (~1e-16 relative).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def mask(shape, h, w):
    """(B, H, W) booleans: True inside the top-left (h, w) block of each image."""
    rows = jnp.arange(shape[1])[None, :, None] < h[:, None, None]
    cols = jnp.arange(shape[2])[None, None, :] < w[:, None, None]
    return rows & cols


def total(x, h, w):
    """Per-image sum over the valid region."""
    return jnp.sum(jnp.where(mask(x.shape, h, w), x, 0.0), axis=(1, 2))


def count(h, w, dtype=jnp.float64):
    return (h * w).astype(dtype)


def mean(x, h, w):
    """Per-image mean over the valid region (a true division by the pixel count)."""
    return total(x, h, w) / count(h, w, x.dtype)


def maximum(x, h, w):
    return jnp.max(jnp.where(mask(x.shape, h, w), x, -jnp.inf), axis=(1, 2))


def minimum(x, h, w):
    return jnp.min(jnp.where(mask(x.shape, h, w), x, jnp.inf), axis=(1, 2))


def _index(n_out: int, before: int, size, mode: str):
    """Source index (B, n_out) of each output position i (image coordinate i - before)."""
    i = jnp.arange(n_out)[None, :] - before
    n = size[:, None]
    if mode == "edge":
        j = i
    elif mode == "symmetric":  # edge pixel repeated
        j = jnp.where(i < 0, -i - 1, jnp.where(i >= n, 2 * n - 1 - i, i))
    elif mode == "reflect":  # edge pixel not repeated
        j = jnp.where(i < 0, -i, jnp.where(i >= n, 2 * n - 2 - i, i))
    else:
        raise ValueError(f"unknown extension mode {mode!r}")
    return jnp.clip(j, 0, n - 1)


def extend(x, h, w, widths, mode: str):
    """Pads the valid region of every image like ``jnp.pad(x[:h, :w], widths, mode)``.

    ``widths`` = ((top, bottom), (left, right)); the output is (B, H + top + bottom,
    W + left + right) with image pixel (0, 0) at (top, left). ``mode``: 'zero', 'edge',
    'symmetric' or 'reflect' (numpy's names). Values right/below the padded valid region are
    arbitrary.
    """
    (top, bottom), (left, right) = widths
    if mode == "zero":
        x = jnp.where(mask(x.shape, h, w), x, 0.0)
        return jnp.pad(x, ((0, 0), (top, bottom), (left, right)))
    rows = _index(x.shape[1] + top + bottom, top, h, mode)
    cols = _index(x.shape[2] + left + right, left, w, mode)
    return jax.vmap(lambda xi, r, c: xi[r][:, c])(x, rows, cols)
