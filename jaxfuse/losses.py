"""Shared fusion loss terms on NHWC single-channel images (SIBA Eq. 7-10 and relatives).

Filters are cross-correlations, as PyTorch/kornia apply them: a 3x3 Laplacian normalised by
its absolute sum with reflect padding (``kornia.filters.laplacian(x, 3)``) and Sobel with zero
padding (the official ``Sobelxy``).
"""

import jax.numpy as jnp
import numpy as np

LAPLACIAN_3x3 = np.array([[1, 1, 1], [1, -8, 1], [1, 1, 1]], np.float32) / 16.0
SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32)
SOBEL_Y = np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]], np.float32)


def filter3x3(x, kernel, mode: str = "constant"):
    """Cross-correlates every channel of NHWC ``x`` with a 3x3 ``kernel``, same-size output.

    ``mode`` is a ``jnp.pad`` mode: "constant" (zeros) or "reflect".
    """
    h, w = x.shape[1:3]
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode=mode)
    out = jnp.zeros_like(x)
    for i in range(3):
        for j in range(3):
            if kernel[i, j] != 0:
                out = out + float(kernel[i, j]) * xp[:, i:i + h, j:j + w, :]
    return out


def laplacian(x):
    """kornia ``laplacian(x, 3)``: [[1,1,1],[1,-8,1],[1,1,1]] / 16, reflect padding."""
    return filter3x3(x, LAPLACIAN_3x3, mode="reflect")


def sobel_magnitude(x):
    """|x * Kx| + |x * Ky| with zero padding (the official ``Sobelxy``)."""
    return jnp.abs(filter3x3(x, SOBEL_X)) + jnp.abs(filter3x3(x, SOBEL_Y))


def joint_laplacian_loss(fused, ir, vi):
    """SIBA Eq. 10: mean |J - Lap(fused)|, J = the signed Laplacian of larger magnitude."""
    lap_ir, lap_vi = laplacian(ir), laplacian(vi)
    joint = jnp.where(jnp.abs(lap_ir) - jnp.abs(lap_vi) >= 0, lap_ir, lap_vi)
    return jnp.mean(jnp.abs(joint - laplacian(fused)))


def max_intensity_loss(fused, ir, vi):
    """SIBA Eq. 7: mean |max(ir, vi) - fused|."""
    return jnp.mean(jnp.abs(jnp.maximum(vi, ir) - fused))


def sobel_gradient_loss(fused, ir, vi):
    """SIBA Eq. 9: mean |max(S(ir), S(vi)) - S(fused)|, S = Sobel magnitude."""
    return jnp.mean(jnp.abs(jnp.maximum(sobel_magnitude(vi), sobel_magnitude(ir)) - sobel_magnitude(fused)))
