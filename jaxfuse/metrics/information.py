"""Information-theoretic metrics: EN, MI (histograms shared between them).

Gray values are integers 0..255 in both conventions, so histograms are exact counts.
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxfuse.metrics import canvas


def _entropy_of_counts(counts, axis):
    """-sum p log2 p over ``axis`` (terms with p = 0 dropped), in bits."""
    p = counts / jnp.sum(counts, axis=axis, keepdims=True)
    return -jnp.sum(jnp.where(p > 0, p * jnp.log2(jnp.where(p > 0, p, 1.0)), 0.0), axis=axis)


def _counts(idx, size, n: int):
    """Per-image counts of the integer codes ``idx`` (B, H, W) in 0..n-1 over the valid region."""
    bsz = idx.shape[0]
    inside = canvas.mask(idx.shape, *size)
    idx = jnp.where(inside, idx, 0).reshape(bsz, -1) + n * jnp.arange(bsz, dtype=jnp.int32)[:, None]
    # int32 scatter-adds: exact, and 1.4x faster than float64 ones on XLA:CPU (MI 4.2 -> 3.0 ms).
    counts = jnp.zeros(bsz * n, jnp.int32).at[idx.ravel()].add(inside.astype(jnp.int32).reshape(-1))
    return counts.reshape(bsz, n).astype(jnp.float64)


def histogram(x, size, bins: int = 256):
    """Per-image counts of the integer gray values of canvases ``x`` (B, H, W) -> (B, bins)."""
    return _counts(x.astype(jnp.int32), size, bins)


def joint_histogram(x, y, size, bins: int = 256):
    """Per-image joint counts (B, bins * bins) of two integer-valued canvases."""
    return _counts(x.astype(jnp.int32) * bins + y.astype(jnp.int32), size, bins * bins)


def _entropy(ctx, key):
    return ctx.memo(("H", key), lambda: _entropy_of_counts(histogram(getattr(ctx, key), ctx.size), axis=1))


def EN(ctx):
    """Entropy of F in bits, -sum_l p_l log2 p_l over the 256-bin gray histogram.

    Roberts et al., "Assessment of image fusion procedures using entropy, image quality, and
    multispectral classification", J. Appl. Remote Sens. 2(1), 2008, eq. (1).
    """
    return _entropy(ctx, "f")


def MI(ctx):
    """Mutual information MI(A,F) + MI(B,F), MI(X,F) = H(X) + H(F) - H(X,F).

    Qu, Zhang & Yan, "Information measure for performance of image fusion", Electron. Lett.
    38(7), 2002, eqs. (1)-(3). 256-bin histograms; bits (``matlab``) or nats (``cddfuse``).
    ``matlab`` also merges levels 254 and 255 in the joint histogram, like Hab.m.
    """
    hf = _entropy(ctx, "f")
    # The toolbox's Hab.m indexes with uint8(x) + 1, which saturates: gray levels 254 and 255
    # share one joint-histogram bin there (its marginal entropies use all 256 bins).
    clip = (lambda x: jnp.minimum(x, 254.0)) if ctx.conv.matlab else (lambda x: x)
    total = 0.0
    for key in ("a", "b"):
        joint = _entropy_of_counts(joint_histogram(clip(ctx.f), clip(getattr(ctx, key)), ctx.size), axis=1)
        total = total + _entropy(ctx, key) + hf - joint
    return total if ctx.conv.matlab else total * jnp.log(2.0)
