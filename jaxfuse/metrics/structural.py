"""Structural metrics: SSIM, MS_SSIM (the toolbox's multi-scale MEF-SSIM) and VIF.

Local statistics come from 'valid' or padded Gaussian/box filters shared through the context.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from jaxfuse.metrics import canvas
from jaxfuse.metrics.gradient import _qabf_edges
from jaxfuse.metrics.filters import box_sum, correlate, correlate_many, gaussian_1d

_EPS = float(np.finfo(np.float64).eps)


def _ssim_map(x, y, filt, c1, c2, cov_norm=1.0):
    mx, my, xx, yy, xy = filt([x, y, x * x, y * y, x * y])
    vx = cov_norm * (xx - mx * mx)
    vy = cov_norm * (yy - my * my)
    vxy = cov_norm * (xy - mx * my)
    return ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))


def SSIM(ctx):
    """Structural similarity of F to each source (Wang et al., IEEE TIP 13(4), 2004, eq. (13)).

    ``matlab``: 0.5 ssim(F,A) + 0.5 ssim(F,B) with MATLAB's ``ssim`` (11x11 Gaussian, sigma 1.5,
    replicate padding, DynamicRange 1 because the toolbox passes doubles: C1 = 1e-4, C2 = 9e-4).
    ``cddfuse``: ssim(F,A) + ssim(F,B) with scikit-image's defaults of the evaluator's era
    (7x7 uniform window, sample covariance, data_range 2 for floats, 3-pixel border dropped).
    """
    h, w = ctx.size
    if ctx.conv.matlab:
        g = gaussian_1d(11, 1.5)
        filt = lambda xs: correlate_many(xs, (g, g), "same", "edge", ctx.size)  # noqa: E731
        maps = [_ssim_map(ctx.f, s, filt, 1e-4, 9e-4) for s in (ctx.a, ctx.b)]
        return 0.5 * canvas.mean(maps[0], h, w) + 0.5 * canvas.mean(maps[1], h, w)
    filt = lambda xs: [box_sum(x, 7) / 49.0 for x in xs]  # noqa: E731
    c1, c2 = (0.01 * 2) ** 2, (0.03 * 2) ** 2
    return sum(canvas.mean(_ssim_map(ctx.f, s, filt, c1, c2, 49.0 / 48.0), h - 6, w - 6)
               for s in (ctx.a, ctx.b))


def _mef_ssim(x1, x2, f, valid):
    """One scale of Ma et al.'s MEF-SSIM (mef_ssim.m), vectorised: the 11x11 patch algebra
    is rewritten with box/Gaussian window sums of products of the images."""
    n, size, c = 121.0, 11, (0.03 * 255) ** 2
    xs = (x1, x2)
    s1 = [box_sum(x, size) for x in xs]
    s2 = {(k, l): box_sum(xs[k] * xs[l], size) for k in range(2) for l in range(k, 2)}
    s2[(1, 0)] = s2[(0, 1)]
    # n * sum (x - mean)^2 over the window, exact for the integer / quarter-integer images.
    dev = [jnp.sqrt(jnp.maximum((n * s2[(k, k)] - s1[k] ** 2) / n, 0.0)) for k in range(2)]
    ed = [d + 0.001 for d in dev]
    ssum, s2sum = s1[0] + s1[1], s2[(0, 0)] + 2 * s2[(0, 1)] + s2[(1, 1)]
    numer = jnp.sqrt(jnp.maximum((n * s2sum - ssum ** 2) / n, 0.0))
    r = (numer + _EPS) / (dev[0] + dev[1] + _EPS)
    r = jnp.where(r > 1, 1 - _EPS, jnp.where(r < 0, _EPS, r))
    p = jnp.minimum(jnp.tan(math.pi / 2 * r), 10.0)
    w = [(e / size) ** p + _EPS for e in ed]
    wsum = w[0] + w[1]
    cw = [w[k] / wsum / ed[k] for k in range(2)]
    max_ed = jnp.maximum(ed[0], ed[1])
    rnorm2 = sum(cw[k] * cw[l] * (s2[(k, l)] - s1[k] * s1[l] / n) for k in range(2) for l in range(2))
    rnorm = jnp.sqrt(jnp.maximum(rnorm2, 0.0))
    scale = jnp.where(rnorm > 0, max_ed / jnp.where(rnorm > 0, rnorm, 1.0), 1.0)
    g = gaussian_1d(size, 1.5)
    m0, m1, mf, g00, g01, g11, g0f, g1f, gff = correlate_many(
        [x1, x2, f, x1 * x1, x1 * x2, x2 * x2, x1 * f, x2 * f, f * f], (g, g), "valid")
    m, gxx, gxf = (m0, m1), {(0, 0): g00, (0, 1): g01, (1, 0): g01, (1, 1): g11}, (g0f, g1f)
    cov = sum(cw[k] * cw[l] * (gxx[(k, l)] - m[k] * m[l]) for k in range(2) for l in range(2))
    sig1 = scale ** 2 * cov
    sig12 = scale * sum(cw[k] * (gxf[k] - m[k] * mf) for k in range(2))
    sig2 = gff - mf * mf
    h, w = valid
    return canvas.mean((2 * sig12 + c) / (sig1 + sig2 + c), h - size + 1, w - size + 1)


def _downsample(x, size):
    return correlate(x, np.full((2, 2), 0.25), "same", "symmetric", size)[:, ::2, ::2]


def MS_SSIM(ctx):
    """The toolbox's MS_SSIM: multi-scale MEF-SSIM of F against the sequence {A, B}.

    Ma, Zeng & Wang, "Perceptual quality assessment for multi-exposure image fusion", IEEE TIP
    24(11), 2015, eqs. (4)-(13), 3 scales, weights (0.0448, 0.2856, 0.3001) normalised, 2x2 mean
    down-sampling (analysis_ms_ssim.m). Undefined (NaN) when min(H, W) / 4 < 11.
    """
    x1, x2, f, (h, w) = ctx.a, ctx.b, ctx.f, ctx.size
    if min(f.shape[1:]) / 4 < 11:  # the canvas, hence every image on it, is too small
        return jnp.full(f.shape[:1], jnp.nan)
    weights = np.array([0.0448, 0.2856, 0.3001])
    weights = weights / weights.sum()
    total, valid = 1.0, ctx.size
    for level, wt in enumerate(weights):
        if level:
            x1, x2, f = (_downsample(x, valid) for x in (x1, x2, f))
            valid = tuple((v + 1) // 2 for v in valid)
        total = total * _mef_ssim(x1, x2, f, valid) ** wt
    return jnp.where(jnp.minimum(h, w) / 4 < 11, jnp.nan, total)


def _vif_terms(s1, s2, s12, region):
    """Per-image (num, den) sums of vifp_mscale.m at one scale, from the local variances and
    covariance: its guards for flat windows and negative gains are tested in float64; the
    logarithms are taken in float32 (relative error ~1e-7 per term, summed in float64)."""
    sigma_nsq, eps = 2.0, 1e-10
    g = s12 / (s1 + eps)
    sv = s2 - g * s12
    low1 = s1 < eps
    g = jnp.where(low1, 0.0, g)
    sv = jnp.where(low1, s2, sv)
    s1 = jnp.where(low1, 0.0, s1)
    low2 = s2 < eps
    g = jnp.where(low2, 0.0, g)
    sv = jnp.where(low2, 0.0, sv)
    neg = g < 0
    sv = jnp.where(neg, s2, sv)
    g = jnp.where(neg, 0.0, g)
    sv = jnp.where(sv <= eps, eps, sv)
    log10 = lambda q: jnp.log1p(q.astype(jnp.float32)).astype(s1.dtype) / math.log(10)  # noqa: E731
    return (canvas.total(log10(g * g * s1 / (sv + sigma_nsq)), *region),
            canvas.total(log10(s1 / sigma_nsq), *region))


def _vifp(refs, dist, valid):
    """vifp_mscale.m for several references against one distorted image: returns
    [num_r / den_r for r in refs]. ``valid``: the canvases' (h, w).

    The references are stacked along the batch axis (one copy of the per-pixel algebra to
    compile), the distorted image's pyramid and local statistics are computed once and
    broadcast over them, and the decimating filter computes only the rows and columns it keeps.
    """
    k, bsz = len(refs), dist.shape[0]
    ref = jnp.concatenate(refs)
    tile = lambda x: jnp.broadcast_to(x, (k, *x.shape)).reshape(k * bsz, *x.shape[1:])  # noqa: E731
    num = den = 0.0
    for scale in range(1, 5):
        size = 2 ** (4 - scale + 1) + 1
        g = gaussian_1d(size, size / 5.0)
        filt = lambda x, stride=1: correlate(x, (g, g), "valid", stride=stride)  # noqa: E731, B023
        if scale > 1:
            ref, dist = filt(ref, 2), filt(dist, 2)
            valid = tuple((v - size + 2) // 2 for v in valid)  # ceil((v - size + 1) / 2)
        region = tuple(jnp.concatenate([v - size + 1] * k) for v in valid)
        mu1, mu2 = filt(ref), tile(filt(dist))
        s1 = jnp.maximum(filt(ref * ref) - mu1 * mu1, 0.0)
        s2 = jnp.maximum(tile(filt(dist * dist)) - mu2 * mu2, 0.0)
        s12 = filt(ref * tile(dist)) - mu1 * mu2
        n, d = _vif_terms(s1, s2, s12, region)
        num, den = num + n, den + d
    ratio = num / den
    return [ratio[i * bsz:(i + 1) * bsz] for i in range(k)]


def VIF(ctx):
    """Visual information fidelity, VIF(A,F) + VIF(B,F), multi-scale pixel-domain VIF.

    Sheikh & Bovik, "Image information and visual quality", IEEE TIP 15(2), 2006, eq. (15)
    (the LIVE vifp_mscale.m simplification), summed over both sources as fusion papers do.
    ``cddfuse`` replaces a NaN per-source term by 1.0, like the evaluator; ``matlab`` keeps NaN.
    """
    terms = _vifp([ctx.a, ctx.b], ctx.f, ctx.size)
    if not ctx.conv.matlab:
        terms = [jnp.where(jnp.isnan(t), 1.0, t) for t in terms]
    return terms[0] + terms[1]


def _uiqi_terms(x, y, size):
    """Local means/variances/covariance over ``size`` x ``size`` windows ('valid', step 1)."""
    n = float(size * size)
    sx, sy = box_sum(x, size) / n, box_sum(y, size) / n
    vx = box_sum(x * x, size) / n - sx * sx
    vy = box_sum(y * y, size) / n - sy * sy
    cxy = box_sum(x * y, size) / n - sx * sy
    return sx, sy, jnp.maximum(vx, 0.0), jnp.maximum(vy, 0.0), cxy


def _q0(mx, my, vx, vy, cxy):
    """Wang & Bovik's universal quality index per window, with the special cases of their
    reference code (flat windows: 1 if equal, else the luminance or contrast factor alone)."""
    v, m = vx + vy, mx * mx + my * my
    safe = lambda d: jnp.where(d == 0, 1.0, d)  # noqa: E731
    full = 4 * cxy * mx * my / safe(v * m)
    return jnp.where((v == 0) & (m == 0), 1.0,
                     jnp.where(v == 0, 2 * mx * my / safe(m), jnp.where(m == 0, 2 * cxy / safe(v), full)))


def _q_weighted(a, b, f, size, valid):
    """Piella & Heijmans' weighted fusion quality index Q_W (ICIP 2003, eq. (6)): saliency = local
    variance, lambda = s_a / (s_a + s_b) (1/2 where both are 0), c(w) = max(s_a, s_b) / sum."""
    ma, mf, va, vf, caf = _uiqi_terms(a, f, size)
    mb, _, vb, _, cbf = _uiqi_terms(b, f, size)
    lam = jnp.where(va + vb == 0, 0.5, va / jnp.where(va + vb == 0, 1.0, va + vb))
    q = lam * _q0(ma, mf, va, vf, caf) + (1 - lam) * _q0(mb, mf, vb, vf, cbf)
    c = jnp.maximum(va, vb)
    region = tuple(v - size + 1 for v in valid)
    return canvas.total(c * q, *region) / canvas.total(c, *region)


def Qe(ctx):
    """Piella's edge-dependent fusion quality Q_E = Q_W(A,B,F) * Q_W(A',B',F')^alpha.

    G. Piella & H. Heijmans, "A new quality metric for image fusion", ICIP 2003, eqs. (4)-(8).
    Not in either reference implementation; choices made here: 8x8 sliding windows (step 1, as
    Wang & Bovik's index), alpha = 1, edge images A', B', F' = Sobel gradient magnitudes
    (the toolbox's Qabf responses, zero padding). NaN when both sources are flat everywhere.
    """
    size = 8
    edges = [_qabf_edges(ctx, k)[0] for k in "abf"]  # shared with Qabf
    return _q_weighted(ctx.a, ctx.b, ctx.f, size, ctx.size) * _q_weighted(*edges, size, ctx.size)

