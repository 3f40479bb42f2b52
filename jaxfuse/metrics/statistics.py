"""Intensity statistics: SD, CC, SCD, MSE, PSNR (per image, batched over (B, H, W)).

All take the shared :class:`jaxfuse.metrics.core.Context` (F fused, A infrared, B visible).
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxfuse.metrics import canvas


# canvas.mean divides by the (traced) pixel count: a true division, so a constant image centres
# to exact zeros and undefined correlations come out NaN.
def _centred(x, size):
    return x - canvas.mean(x, *size)[:, None, None]


def _corr(x, y, size):
    """Pearson correlation of two batches of images (``corr2`` in MATLAB)."""
    xc, yc = _centred(x, size), _centred(y, size)
    return canvas.total(xc * yc, *size) / jnp.sqrt(
        canvas.total(xc * xc, *size) * canvas.total(yc * yc, *size))


def SD(ctx):
    """Standard deviation of F (population form): sqrt(mean((F - mean F)^2)).

    Rao, "In-fibre Bragg grating sensors", Meas. Sci. Technol. 8(4), 1997, as used for fusion
    in e.g. Ma et al., Information Fusion 45, 2019, eq. for SD.
    """
    return jnp.sqrt(canvas.mean(_centred(ctx.f, ctx.size) ** 2, *ctx.size))


def CC(ctx):
    """Correlation coefficient, (r(A,F) + r(B,F)) / 2 with Pearson's r.

    Deshmukh & Bhosale, "Image fusion and image quality assessment of fused images", IJIP 4(5),
    2010. ``matlab`` keeps the toolbox's CC_evaluation.m slip: r(B,F)'s numerator centres B
    with mean(A) (its denominator uses mean(B)).
    """
    size = ctx.size
    r_af = _corr(ctx.a, ctx.f, size)
    if ctx.conv.matlab:
        fc = _centred(ctx.f, size)
        num = canvas.total((ctx.b - canvas.mean(ctx.a, *size)[:, None, None]) * fc, *size)
        den = jnp.sqrt(canvas.total(_centred(ctx.b, size) ** 2, *size) * canvas.total(fc * fc, *size))
        r_bf = num / den
    else:
        r_bf = _corr(ctx.b, ctx.f, size)
    return (r_af + r_bf) / 2


def SCD(ctx):
    """Sum of the correlations of differences: r(F - B, A) + r(F - A, B).

    Aslantas & Bendes, AEU Int. J. Electron. Commun. 69(12):1890-1896, 2015, eq. (4).
    """
    return _corr(ctx.f - ctx.b, ctx.a, ctx.size) + _corr(ctx.f - ctx.a, ctx.b, ctx.size)


def _mse255(ctx):
    return ctx.memo("mse255", lambda: (canvas.mean((ctx.f - ctx.a) ** 2, *ctx.size)
                                       + canvas.mean((ctx.f - ctx.b) ** 2, *ctx.size)) / 2)


def MSE(ctx):
    """Mean squared error to the sources, (mse(F,A) + mse(F,B)) / 2.

    ``matlab`` on 0..1 intensities (toolbox MSE_evaluation.m), ``cddfuse`` on 0..255.
    """
    m = _mse255(ctx)
    return m / 255.0 ** 2 if ctx.conv.matlab else m


def PSNR(ctx):
    """Peak signal-to-noise ratio, 10 log10(peak^2 / MSE) (Jagalingam & Hegde, 2015).

    ``matlab``: 20 log10(255 / sqrt(MSE on 0..1)) exactly as PSNR_evaluation.m writes it;
    ``cddfuse``: 10 log10(max(F)^2 / MSE on 0..255).
    """
    m = _mse255(ctx)
    if ctx.conv.matlab:
        return 20 * jnp.log10(255.0 / jnp.sqrt(m / 255.0 ** 2))
    return 10 * jnp.log10(canvas.maximum(ctx.f, *ctx.size) ** 2 / m)
