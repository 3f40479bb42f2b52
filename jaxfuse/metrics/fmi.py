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

Both features follow MATLAB: ``edge``'s direction-aware thinning and the Wavelet Toolbox's
102-tap ``dmey`` with dwt2's default 'sym' mode. :func:`octave_fmi` is the toolbox as it ran in
GNU Octave (Octave's ``edge`` thinning, PyWavelets' 62-tap dmey for the missing dwt2), kept to
check against the Octave reference values; neither convention uses it.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import jax.scipy.fft
import numpy as np

from jaxfuse.metrics import canvas
from jaxfuse.metrics.filters import correlate, windows

# MATLAB's discrete Meyer scaling filter: the 102 values of the variable ``dmey`` in the Wavelet
# Toolbox's dmey.mat, which wfilters('dmey') loads (read from the copy of dmey.mat in
# Shrediquette/PIVlab @ 53c6d3fcd006, wavelet/dmey.mat, "Created on: Thu Jun 05 17:06:55 2003").
# After orthfilt the same filter is tabulated to 16 digits in JWave's Dmey.java (Scheiblich,
# decomposition order); the two agree to 3e-17. Not PyWavelets' 'dmey', a different 62-tap FIR.
_MATLAB_DMEY = np.array([
    -1.06754713e-06, 9.0422391e-07, 3.1790474e-07, -1.48249686e-06,
    1.21850207e-06, 4.9361831e-07, -2.03604729e-06, 1.68513902e-06,
    6.9474288e-07, -2.98242491e-06, 2.37128175e-06, 1.18420622e-06,
    -4.26703335e-06, 3.42066573e-06, 1.69867277e-06, -6.757326e-06,
    5.10285152e-06, 3.42881336e-06, -1.004580737e-05, 7.42738297e-06,
    4.37527643e-06, -1.72802656e-05, 1.421735152e-05, 1.060201359e-05,
    -3.283006737e-05, 2.286874237e-05, 2.645260683e-05, -7.267567236e-05,
    1.72972015e-05, 0.00010586335588, -5.34521877e-05, -9.893345543e-05,
    -6.612354762e-05, 0.0001139783219, 0.00060775793536, -0.00040883876416,
    -0.0019107202819, 0.00155193926157, 0.00427481806225, -0.00451609544333,
    -0.00780973483285, 0.01078401534427, 0.01230639736499, -0.02269391137934,
    -0.01719808438302, 0.04501954358581, 0.02165247163319, -0.09383060025865,
    -0.02478286152969, 0.31402235238643, 0.52591095141626, 0.31402235238643,
    -0.02478286152969, -0.09383060025865, 0.02165247163319, 0.04501954358581,
    -0.01719808438302, -0.02269391137934, 0.01230639736499, 0.01078401534427,
    -0.00780973483285, -0.00451609544333, 0.00427481806225, 0.00155193926157,
    -0.0019107202819, -0.00040883876416, 0.00060775793536, 0.0001139783219,
    -6.612354762e-05, -9.893345543e-05, -5.34521877e-05, 0.00010586335588,
    1.72972015e-05, -7.267567236e-05, 2.645260683e-05, 2.286874237e-05,
    -3.283006737e-05, 1.060201359e-05, 1.421735152e-05, -1.72802656e-05,
    4.37527643e-06, 7.42738297e-06, -1.004580737e-05, 3.42881336e-06,
    5.10285152e-06, -6.757326e-06, 1.69867277e-06, 3.42066573e-06,
    -4.26703335e-06, 1.18420622e-06, 2.37128175e-06, -2.98242491e-06,
    6.9474288e-07, 1.68513902e-06, -2.03604729e-06, 4.9361831e-07,
    1.21850207e-06, -1.48249686e-06, 3.1790474e-07, 9.0422391e-07,
    -1.06754713e-06, 0.0,
])

# PyWavelets' 62-tap 'dmey' decomposition low-pass filter, used only by the ``octave`` variant
# (the stand-in for dwt2 when the toolbox ran in GNU Octave, which has no dwt2).
_PYWT_DMEY_LO = np.array([0.0, -1.009999956941423e-12, 8.519459636796214e-09, -1.111944952595278e-08, -1.0798819539621958e-08, 6.066975741351135e-08, -1.0866516536735883e-07, 8.200680650386481e-08, 1.1783004497663934e-07, -5.506340565252278e-07, 1.1307947017916706e-06, -1.489549216497156e-06, 7.367572885903746e-07, 3.20544191334478e-06, -1.6312699734552807e-05, 6.554305930575149e-05, -0.0006011502343516092, -0.002704672124643725, 0.002202534100911002, 0.006045814097323304, -0.006387718318497156, -0.011061496392513451, 0.015270015130934803, 0.017423434103729693, -0.03213079399021176, -0.024348745906078023, 0.0637390243228016, 0.030655091960824263, -0.13284520043622938, -0.035087555656258346, 0.44459300275757724, 0.7445855923188063, 0.44459300275757724, -0.035087555656258346, -0.13284520043622938, 0.030655091960824263, 0.0637390243228016, -0.024348745906078023, -0.03213079399021176, 0.017423434103729693, 0.015270015130934803, -0.011061496392513451, -0.006387718318497156, 0.006045814097323304, 0.002202534100911002, -0.002704672124643725, -0.0006011502343516092, 6.554305930575149e-05, -1.6312699734552807e-05, 3.20544191334478e-06, 7.367572885903746e-07, -1.489549216497156e-06, 1.1307947017916706e-06, -5.506340565252278e-07, 1.1783004497663934e-07, 8.200680650386481e-08, -1.0866516536735883e-07, 6.066975741351135e-08, -1.0798819539621958e-08, -1.111944952595278e-08, 8.519459636796214e-09, -1.009999956941423e-12])


def orthfilt(w):
    """(Lo_D, Hi_D) of MATLAB's ``orthfilt(W)``: Lo_R = sqrt(2) * W / sum(W), Hi_R = qmf(Lo_R)
    (reversed, every second entry from the 2nd negated), the decomposition filters their
    reversals. sum(W) is taken left to right (MATLAB's order is undocumented: <= 1 ulp)."""
    w = np.asarray(w, dtype=np.float64)
    total = 0.0
    for v in w:
        total += v
    lo_r = np.sqrt(2.0) * (w / total)
    hi_r = lo_r[::-1].copy()
    hi_r[1::2] = -hi_r[1::2]
    return lo_r[::-1].copy(), hi_r[::-1].copy()


def _pywt_filters(lo):
    return lo, (-1.0) ** (np.arange(lo.size) + 1) * lo[::-1]


# Decomposition (low, high) filter pairs of dwt2(X, 'dmey'): MATLAB's (102 taps) and PyWavelets'.
WAVELETS = {"matlab": orthfilt(_MATLAB_DMEY), "pywt": _pywt_filters(_PYWT_DMEY_LO)}


def edge_sobel(x, size, thinning: str = "matlab"):  # -> (edge map, its valid size)
    """Binary Sobel edge map of ``edge(x)`` (method 'sobel', automatic threshold, thinning).

    bx, by: the [1 2 1; 0 0 0; -1 -2 -1] / 8 responses (imfilter, 'replicate'),
    b = bx^2 + by^2, cutoff = 4 * mean(b). ``thinning``:

    * ``"matlab"`` (MATLAB's ``edge``, its thinAndThreshold step): a pixel is an edge where
      b > cutoff and (|bx| >= |by| - 100 eps and b(r, c-1) <= b(r, c) > b(r, c+1), or
      |by| >= |bx| - 100 eps and b(r-1, c) <= b(r, c) > b(r+1, c)); a comparison with a
      neighbour outside the image counts as true.
    * ``"octave"`` (GNU Octave's image package 2.14): b is zeroed where b <= cutoff and outside
      the image, and a pixel is kept where it is a strict maximum horizontally or vertically.
    """
    s121, d = (1.0, 2.0, 1.0), (1.0, 0.0, -1.0)
    by = correlate(x, (d, s121), "same", "edge", size) / 8
    bx = correlate(x, (s121, d), "same", "edge", size) / 8
    b = bx * bx + by * by
    cutoff = 4 * canvas.mean(b, *size)[:, None, None]
    inside = canvas.mask(b.shape, *size)
    if thinning == "octave":
        b = jnp.where((b <= cutoff) | ~inside, 0.0, b)
    elif thinning != "matlab":
        raise ValueError(f"thinning must be 'matlab' or 'octave', not {thinning!r}")
    zc, zr = jnp.zeros_like(b[:, :, :1]), jnp.zeros_like(b[:, :1, :])
    left, right = jnp.concatenate([zc, b[:, :, :-1]], 2), jnp.concatenate([b[:, :, 1:], zc], 2)
    up, down = jnp.concatenate([zr, b[:, :-1]], 1), jnp.concatenate([b[:, 1:], zr], 1)
    if thinning == "octave":
        return (((b > left) & (b > right)) | ((b > up) & (b > down))).astype(x.dtype), size
    h, w = (v[:, None, None] for v in size)
    row, col = jnp.arange(b.shape[1])[None, :, None], jnp.arange(b.shape[2])[None, None, :]
    horiz = ((col == 0) | (left <= b)) & ((col == w - 1) | (b > right))
    vert = ((row == 0) | (up <= b)) & ((row == h - 1) | (b > down))
    ax, ay, tol = jnp.abs(bx), jnp.abs(by), 100 * np.finfo(np.float64).eps
    edge = inside & (b > cutoff) & (((ax >= ay - tol) & horiz) | ((ay >= ax - tol) & vert))
    return edge.astype(x.dtype), size


def dct_feature(x):
    """dct2: orthonormal type-II DCT over both image axes (of the whole, unpadded image)."""
    return jax.scipy.fft.dctn(x, type=2, axes=(1, 2), norm="ortho")


def dwt_size(n: int, taps: int) -> int:
    """Length of each dwt2 sub-band along an axis of length ``n`` (MATLAB's non-periodic
    modes): floor((n + taps - 1) / 2), floor((n + 101) / 2) for MATLAB's dmey."""
    return (n + taps - 1) // 2


def _dwt_axis(x, filt, axis):
    """MATLAB dwt along ``axis``: 'sym' extension (half-point symmetric, repeated for signals
    shorter than the filter) by taps - 1, 'valid' convolution, every 2nd sample from the 2nd."""
    taps = filt.size
    pad = [(0, 0)] * 3
    pad[axis] = (taps - 1, taps - 1)
    xp = jnp.pad(x, pad, mode="symmetric")
    k = filt[::-1]  # a convolution is a correlation with the reversed filter
    kern = k[:, None] if axis == 1 else k[None, :]
    y = correlate(xp, kern, "valid")
    return jnp.take(y, 1 + 2 * jnp.arange(dwt_size(x.shape[axis], taps)), axis=axis)


def wavelet_feature(x, wavelet: str = "matlab"):
    """rerange([cA, cH; cV, cD]) of ``dwt2(x, 'dmey')`` in MATLAB's default 'sym' mode (of the
    whole, unpadded image; each sub-band is :func:`dwt_size` long per axis, so the map is ~101
    pixels larger on each axis). ``wavelet``: a :data:`WAVELETS` key."""
    lo, hi = WAVELETS[wavelet]
    lo_r, hi_r = _dwt_axis(x, lo, 2), _dwt_axis(x, hi, 2)
    ca, ch = _dwt_axis(lo_r, lo, 1), _dwt_axis(lo_r, hi, 1)
    cv, cd = _dwt_axis(hi_r, lo, 1), _dwt_axis(hi_r, hi, 1)
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
    """FMI on the binary Sobel edge maps of MATLAB's ``edge`` (analysis_fmi's default feature)."""
    (fa, _), (fb, _), (ff, size) = (ctx.memo(("edge", k), lambda k=k: edge_sobel(getattr(ctx, k), ctx.size))
                                    for k in "abf")
    return fmi(fa, fb, ff, size)


def FMI_features(ctx):
    """FMI_dct / FMI_w (analysis_fmi(..., 'dct' / 'wavelet')): FMI of the context's images,
    which ``compute_metrics`` has already replaced by their :data:`TRANSFORMS` feature maps."""
    return fmi(ctx.a, ctx.b, ctx.f, ctx.size)


@functools.lru_cache(maxsize=None)
def _octave_program(metric: str):
    def run(f, a, b):
        size = tuple(jnp.full(f.shape[0], n) for n in f.shape[1:])
        if metric == "FMI_pixel":
            (fa, _), (fb, _), (ff, _) = (edge_sobel(x, size, "octave") for x in (a, b, f))
        else:
            fa, fb, ff = (wavelet_feature(x, "pywt") for x in (a, b, f))
            size = tuple(jnp.full(f.shape[0], n) for n in ff.shape[1:])
        return fmi(fa, fb, ff, size)
    return jax.jit(run)


def octave_fmi(fused, ir, vi, metric: str = "FMI_pixel") -> np.ndarray:
    """FMI_pixel or FMI_w of (B, H, W) gray batches in 0..255 as the toolbox gives them in GNU
    Octave (image 2.14): Octave's ``edge`` thinning, and PyWavelets' 62-tap 'dmey' (mode
    'symmetric') standing in for dwt2. Not MATLAB's values; see :func:`edge_sobel`."""
    if metric not in ("FMI_pixel", "FMI_w"):
        raise ValueError(f"metric must be 'FMI_pixel' or 'FMI_w', not {metric!r}")
    with jax.enable_x64(True):
        args = [jnp.asarray(np.asarray(x, dtype=np.float64)) for x in (fused, ir, vi)]
        return np.asarray(_octave_program(metric)(*args))
