"""Colour handling as the official SIBA test script does it (``utils/RGB2YCrBb.py``).

Fusion networks see only luma: the visible image's Y channel is fused with the infrared
image, and the visible Cb/Cr are put back afterwards. Works on NumPy or JAX arrays in [0, 1],
channels last.
"""

import numpy as np


def rgb_to_ycbcr(rgb, xp=np):
    """(..., 3) RGB in [0, 1] -> (Y, Cb, Cr), each (..., 1), float32 and clamped to [0, 1].

    Y = 0.299 R + 0.587 G + 0.114 B; Cr = 0.713 (R - Y) + 0.5; Cb = 0.564 (B - Y) + 0.5.
    """
    rgb = xp.asarray(rgb, dtype=xp.float32)
    r, g, b = rgb[..., 0:1], rgb[..., 1:2], rgb[..., 2:3]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cr = (r - y) * 0.713 + 0.5
    cb = (b - y) * 0.564 + 0.5
    return tuple(xp.clip(c, 0.0, 1.0) for c in (y, cb, cr))


def ycbcr_to_rgb(y, cb, cr, xp=np):
    """Inverse of :func:`rgb_to_ycbcr`; returns (..., 3) RGB clamped to [0, 1]."""
    r = y + 1.403 * (cr - 0.5)
    g = y - 0.714 * (cr - 0.5) - 0.344 * (cb - 0.5)
    b = y + 1.773 * (cb - 0.5)
    return xp.clip(xp.concatenate([r, g, b], axis=-1), 0.0, 1.0)


def to_uint8(x, xp=np):
    """[0, 1] float -> uint8 by clamping and truncation (torchvision ``ToPILImage``: mul(255).byte())."""
    return xp.floor(xp.clip(x, 0.0, 1.0) * 255.0).astype(xp.uint8)


def luma(image_uint8: np.ndarray) -> np.ndarray:
    """(H, W, C) uint8 -> (H, W, 1) float32 Y in [0, 1]; grey images are just scaled."""
    x = image_uint8.astype(np.float32) / np.float32(255.0)
    return x if x.shape[-1] == 1 else rgb_to_ycbcr(x)[0]
