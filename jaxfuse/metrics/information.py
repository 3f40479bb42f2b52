"""Information-theoretic metrics: EN, MI (histograms shared between them).

Gray values are integers 0..255 in both conventions, so histograms are exact counts.
"""

from __future__ import annotations

import jax.numpy as jnp


def _entropy_of_counts(counts, axis):
    """-sum p log2 p over ``axis`` (terms with p = 0 dropped), in bits."""
    p = counts / jnp.sum(counts, axis=axis, keepdims=True)
    return -jnp.sum(jnp.where(p > 0, p * jnp.log2(jnp.where(p > 0, p, 1.0)), 0.0), axis=axis)


def histogram(x, bins: int = 256):
    """Per-image counts of the integer gray values of ``x`` (B, H, W) -> (B, bins)."""
    bsz = x.shape[0]
    idx = x.astype(jnp.int32).reshape(bsz, -1) + bins * jnp.arange(bsz, dtype=jnp.int32)[:, None]
    return jnp.zeros(bsz * bins, x.dtype).at[idx.ravel()].add(1.0).reshape(bsz, bins)


def joint_histogram(x, y, bins: int = 256):
    """Per-image joint counts (B, bins * bins) of two integer-valued batches."""
    bsz = x.shape[0]
    idx = (x.astype(jnp.int32) * bins + y.astype(jnp.int32)).reshape(bsz, -1)
    idx = idx + bins * bins * jnp.arange(bsz, dtype=jnp.int32)[:, None]
    return jnp.zeros(bsz * bins * bins, x.dtype).at[idx.ravel()].add(1.0).reshape(bsz, bins * bins)


def _entropy(ctx, key):
    return ctx.memo(("H", key), lambda: _entropy_of_counts(histogram(getattr(ctx, key)), axis=1))


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
        joint = _entropy_of_counts(joint_histogram(clip(ctx.f), clip(getattr(ctx, key))), axis=1)
        total = total + _entropy(ctx, key) + hf - joint
    return total if ctx.conv.matlab else total * jnp.log(2.0)
