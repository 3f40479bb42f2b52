"""Feature mutual information FMI_pixel, FMI_dct, FMI_w (the toolbox's analysis_fmi.m).

Haghighat, Aghagolzadeh & Seyedarabi, "A non-reference image fusion metric based on mutual
information of image features", Comput. Electr. Eng. 37(5), 2011, and the Fast-FMI variant
(Haghighat & Razian, AICT 2014) the toolbox implements: in every 3x3 window the two feature
patches are rescaled to [0, 1], read as marginal PDFs (column-major order), joined by Nelsen's
simplified copula (Frechet upper bound for positive correlation, lower bound for negative),
and fmi = 2 MI / (H_X + H_F); the map of (fmi_AF + fmi_BF) / 2 is averaged.

Features: FMI_pixel is analysis_fmi's *default* feature, the binary Sobel edge map (the
toolbox never passes 'none'; see conventions); FMI_dct the orthonormal 2-D DCT of the whole
image; FMI_w the discrete Meyer dwt2 sub-bands [cA cH; cV cD] rescaled to [0, 1].
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.scipy.fft
import numpy as np

from jaxfuse.metrics import canvas
from jaxfuse.metrics.filters import correlate, windows

# Discrete Meyer decomposition low-pass filter (62 taps, the FIR approximation tabulated by
# PyWavelets as 'dmey'); the high-pass is (-1)^(k+1) lo[::-1].
_DMEY_LO = np.array([0.0, -1.009999956941423e-12, 8.519459636796214e-09, -1.111944952595278e-08, -1.0798819539621958e-08, 6.066975741351135e-08, -1.0866516536735883e-07, 8.200680650386481e-08, 1.1783004497663934e-07, -5.506340565252278e-07, 1.1307947017916706e-06, -1.489549216497156e-06, 7.367572885903746e-07, 3.20544191334478e-06, -1.6312699734552807e-05, 6.554305930575149e-05, -0.0006011502343516092, -0.002704672124643725, 0.002202534100911002, 0.006045814097323304, -0.006387718318497156, -0.011061496392513451, 0.015270015130934803, 0.017423434103729693, -0.03213079399021176, -0.024348745906078023, 0.0637390243228016, 0.030655091960824263, -0.13284520043622938, -0.035087555656258346, 0.44459300275757724, 0.7445855923188063, 0.44459300275757724, -0.035087555656258346, -0.13284520043622938, 0.030655091960824263, 0.0637390243228016, -0.024348745906078023, -0.03213079399021176, 0.017423434103729693, 0.015270015130934803, -0.011061496392513451, -0.006387718318497156, 0.006045814097323304, 0.002202534100911002, -0.002704672124643725, -0.0006011502343516092, 6.554305930575149e-05, -1.6312699734552807e-05, 3.20544191334478e-06, 7.367572885903746e-07, -1.489549216497156e-06, 1.1307947017916706e-06, -5.506340565252278e-07, 1.1783004497663934e-07, 8.200680650386481e-08, -1.0866516536735883e-07, 6.066975741351135e-08, -1.0798819539621958e-08, -1.111944952595278e-08, 8.519459636796214e-09, -1.009999956941423e-12])
_DMEY_HI = (-1.0) ** (np.arange(62) + 1) * _DMEY_LO[::-1]


def edge_sobel(x, size):  # -> (edge map, its valid size)
    """Binary Sobel edge map with the automatic threshold and simple thinning of edge(x)
    as GNU Octave's image package (2.14) implements it: strength^2 of the replicate-padded
    [1 2 1; 0 0 0; -1 -2 -1] / 8 responses, kept above 4 * mean(strength^2), then kept where it
    is a strict maximum horizontally or vertically."""
    s121, d = (1.0, 2.0, 1.0), (1.0, 0.0, -1.0)
    s2 = (correlate(x, (d, s121), "same", "edge", size) / 8) ** 2 + (correlate(x, (s121, d), "same", "edge", size) / 8) ** 2
    thresh = 4 * canvas.mean(s2, *size)[:, None, None]
    # Zero outside the image too: the thinning compares border pixels with zeros.
    s2 = jnp.where((s2 <= thresh) | ~canvas.mask(s2.shape, *size), 0.0, s2)
    zc, zr = jnp.zeros_like(s2[:, :, :1]), jnp.zeros_like(s2[:, :1, :])
    horiz = (s2 > jnp.concatenate([zc, s2[:, :, :-1]], 2)) & (s2 > jnp.concatenate([s2[:, :, 1:], zc], 2))
    vert = (s2 > jnp.concatenate([zr, s2[:, :-1]], 1)) & (s2 > jnp.concatenate([s2[:, 1:], zr], 1))
    return (horiz | vert).astype(x.dtype), size


def dct_feature(x):
    """dct2: orthonormal type-II DCT over both image axes (of the whole, unpadded image)."""
    return jax.scipy.fft.dctn(x, type=2, axes=(1, 2), norm="ortho")


def _dwt_axis(x, filt, axis):
    n = x.shape[axis]
    pad = [(0, 0)] * 3
    pad[axis] = (61, 61)
    xp = jnp.pad(x, pad, mode="symmetric")
    k = filt[::-1]  # a convolution is a correlation with the reversed filter
    kern = k[:, None] if axis == 1 else k[None, :]
    y = correlate(xp, kern, "valid")
    out_len = (n + 61) // 2
    return jnp.take(y, 1 + 2 * jnp.arange(out_len), axis=axis)


def wavelet_feature(x):
    """rerange([cA, cH; cV, cD]) of a one-level 'dmey' DWT, half-point symmetric extension (of
    the whole, unpadded image; the result is ~62 pixels larger on each axis)."""
    lo_r, hi_r = _dwt_axis(x, _DMEY_LO, 2), _dwt_axis(x, _DMEY_HI, 2)
    ca, ch = _dwt_axis(lo_r, _DMEY_LO, 1), _dwt_axis(lo_r, _DMEY_HI, 1)
    cv, cd = _dwt_axis(hi_r, _DMEY_LO, 1), _dwt_axis(hi_r, _DMEY_HI, 1)
    m = jnp.concatenate([jnp.concatenate([ca, ch], 2), jnp.concatenate([cv, cd], 2)], 1)
    mx, mn = jnp.max(m, axis=(1, 2), keepdims=True), jnp.min(m, axis=(1, 2), keepdims=True)
    return jnp.where(mx == mn, 1.0, (m - mn) / jnp.where(mx == mn, 1.0, mx - mn))


# Whole-image feature transforms: ``compute_metrics`` applies them at the exact image shape,
# then scores FMI_dct / FMI_w on (bucketed) canvases of the feature maps.
TRANSFORMS = {"FMI_dct": dct_feature, "FMI_w": wavelet_feature}


def _normalise(w):
    mx, mn = jnp.max(w, axis=0), jnp.min(w, axis=0)
    same = mx == mn
    return jnp.where(same, 1.0, (w - mn) / jnp.where(same, 1.0, mx - mn))


def _plogp(p):
    nz = p != 0
    return jnp.where(nz, -p * jnp.log2(jnp.abs(jnp.where(nz, p, 1.0))), 0.0)


def _seqsum(terms):
    """Left-to-right sum, the order of the toolbox's loops and of Octave's ``sum``."""
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    return total


def _div(x, n: float):
    """x / n as a true division (XLA would otherwise turn it into x * (1/n))."""
    return x / jax.lax.optimization_barrier(jnp.asarray(n, x.dtype))


def _fmi_windows(xn, fn):
    """Normalised FMI of two stacks of rescaled 3x3 patches (9, ...) -> (...).

    The window statistics that the toolbox tests for exact zero (the correlation numerator,
    hence c == 0) are summed in its order with true divisions: for flat or binary patches they
    are zero only up to rounding, and the result flips between two very different branches.
    """
    xs, fs = list(xn), list(fn)
    # sum(sum(sub)): the three column sums, then their sum.
    total = lambda v: _seqsum([_seqsum(v[0:3]), _seqsum(v[3:6]), _seqsum(v[6:9])])  # noqa: E731
    xt_, ft_ = total(xs), total(fs)
    xp, fp = [x / xt_ for x in xs], [f / ft_ for f in fs]
    xm, fm = _div(_seqsum(xp), 9.0), _div(_seqsum(fp), 9.0)
    xt, ft = [x - xm for x in xp], [f - fm for f in fp]
    s = _seqsum([x * f for x, f in zip(xt, ft)])
    c = jnp.where(s == 0, 0.0, s / jnp.sqrt(_seqsum([x * x for x in xt]) * _seqsum([f * f for f in ft])))
    xcum, fcum = [xp[0]], [fp[0]]
    for k in range(1, 9):
        xcum.append(xp[k] + xcum[-1])
        fcum.append(fp[k] + fcum[-1])

    def sd(p):
        e = _seqsum([jnp.zeros_like(p[0])] + [(k + 1.0) * p[k] for k in range(9)])
        e2 = _seqsum([jnp.zeros_like(p[0])] + [(k + 1.0) ** 2 * p[k] for k in range(9)])
        return jnp.sqrt(jnp.maximum(e2 - e * e, 0.0))

    xsd, fsd = sd(xp), sd(fp)
    up = c >= 0

    # Frechet bounds of the CDF pair, bound[i][j] = bound(F_i, X_j), written as the toolbox
    # writes min(a, b) and max(a + b - 1, 0). The 81 per-pixel terms are Python-level sums,
    # which XLA fuses into one loop; stacked (9, 9, B, H, W) arrays were memory-bound.
    def bound(a, b):
        return jnp.where(up, 0.5 * (a + b - jnp.abs(a - b)), 0.5 * (a + b - 1 + jnp.abs(a + b - 1)))
    bounds = [[bound(fcum[i], xcum[j]) for j in range(9)] for i in range(9)]
    cov = sum(sum(row) for row in bounds) - sum(fcum) * sum(xcum)
    degenerate = (xsd == 0) | (fsd == 0) | (up & (c == 0))
    corr = cov / jnp.where(degenerate, 1.0, fsd * xsd)
    phi = jnp.where(degenerate, 0.0, c / jnp.where(degenerate | (corr == 0), 1.0, corr))
    # Joint PDF cell (i, j) = the bound's rectangle mass; the toolbox drops the i-1 = 0 and
    # j-1 = 0 terms, i.e. pads the bound grid with zeros.
    at = lambda i, j: bounds[i][j] if i >= 0 and j >= 0 else 0.0  # noqa: E731
    joint = 0.0
    for i in range(9):
        for j in range(9):
            rect = at(i, j) - at(i - 1, j) - at(i, j - 1) + at(i - 1, j - 1)
            joint = joint + _plogp(phi * rect + (1 - phi) * fp[i] * xp[j])
    hx, hf = sum(_plogp(p) for p in xp), sum(_plogp(p) for p in fp)
    mi = hx + hf - joint
    return jnp.where(mi == 0, 0.0, 2 * mi / jnp.where(mi == 0, 1.0, hx + hf))


def fmi(fa, fb, ff, size):
    """analysis_fmi on feature canvases (B, H, W) of valid size ``size``: mean over the 3x3
    windows inside the image."""
    aw, bw, fw = windows(fa), windows(fb), windows(ff)
    a_eq = jnp.all(aw == fw, axis=0)
    fn = _normalise(fw)
    fmi_af = jnp.where(a_eq, 1.0, _fmi_windows(_normalise(aw), fn))
    # The toolbox compares bSub with fSub *after* the A branch may have rescaled fSub.
    b_eq = jnp.all(bw == jnp.where(a_eq, fw, fn), axis=0)
    fmi_bf = jnp.where(b_eq, 1.0, _fmi_windows(_normalise(bw), fn))
    h, w = size
    return canvas.mean((fmi_af + fmi_bf) / 2, h - 2, w - 2)


def FMI_pixel(ctx):
    """FMI on the binary Sobel edge maps (the toolbox's default analysis_fmi feature)."""
    (fa, _), (fb, _), (ff, size) = (ctx.memo(("edge", k), lambda k=k: edge_sobel(getattr(ctx, k), ctx.size))
                                    for k in "abf")
    return fmi(fa, fb, ff, size)


def FMI_features(ctx):
    """FMI_dct / FMI_w (analysis_fmi(..., 'dct' / 'wavelet')): FMI of the context's images,
    which ``compute_metrics`` has already replaced by their :data:`TRANSFORMS` feature maps."""
    return fmi(ctx.a, ctx.b, ctx.f, ctx.size)
