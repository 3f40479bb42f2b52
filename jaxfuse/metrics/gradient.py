"""Gradient-based metrics: SF, AG, Qabf, Nabf (Sobel responses shared between Qabf and Nabf)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jaxfuse.metrics import canvas
from jaxfuse.metrics.filters import correlate

_S121, _D101 = (1.0, 2.0, 1.0), (-1.0, 0.0, 1.0)


def _div(num, den):
    """num / den where den != 0, else 0 (the callers mask those pixels themselves)."""
    return num / jnp.where(den == 0, 1.0, den)


# Rational approximation of atan on [0, tan(pi/8)] (Cephes' atan coefficients) after
# reduction by atan(x) = pi/4 + atan((x - 1) / (x + 1)) and pi/2 - atan(1/x).
_ATAN_P = (-8.750608600031904122785e-1, -1.615753718733365076637e1, -7.500855792314704667340e1,
           -1.228866684490136173410e2, -6.485021904942025371773e1)
_ATAN_Q = (2.485846490142306297962e1, 1.650270098316988542046e2, 4.328810604912902668951e2,
           4.853903996359136964868e2, 1.945506571482613964425e2)
_PIO2_LO = 6.123233995736765886130e-17  # pi/2 - float64(pi/2)


def arctan(x):
    """float64 atan within 1 ulp (checked on 1e6 samples over 16 decades), as vectorisable
    arithmetic: XLA:CPU's atan is a scalar call, 3x slower, and Qabf/Nabf take 3 per pixel."""
    ax = jnp.abs(x)
    big, mid = ax > 2.414213562373095, ax > 0.66  # tan(3 pi / 8), Cephes' split
    t = jnp.where(big, -1.0 / jnp.where(big, ax, 1.0), jnp.where(mid, (ax - 1.0) / (ax + 1.0), ax))
    base = jnp.where(big, math.pi / 2, jnp.where(mid, math.pi / 4, 0.0))
    low = jnp.where(big, _PIO2_LO, jnp.where(mid, 0.5 * _PIO2_LO, 0.0))
    z = t * t
    p, q = _ATAN_P[0], z + _ATAN_Q[0]
    for c in _ATAN_P[1:]:
        p = p * z + c
    for c in _ATAN_Q[1:]:
        q = q * z + c
    r = base + (t * (z * p / q) + t + low)
    return jnp.where(x < 0, -r, r)


def SF(ctx):
    """Spatial frequency sqrt(RF^2 + CF^2), RF/CF the RMS of vertical/horizontal differences.

    Eskicioglu & Fisher, "Image quality measures and their performance", IEEE Trans. Commun.
    43(12), 1995; as in the toolbox's SF_evaluation.m.
    """
    f, (h, w) = ctx.f, ctx.size
    rf = canvas.mean((f[:, 1:, :] - f[:, :-1, :]) ** 2, h - 1, w)
    cf = canvas.mean((f[:, :, 1:] - f[:, :, :-1]) ** 2, h, w - 1)
    return jnp.sqrt(rf + cf)


def _central_gradient(x, n, axis):
    """MATLAB ``gradient`` along ``axis`` of a canvas whose valid length is ``n`` (B,): central
    differences inside, one-sided at the two borders."""
    widths = [(0, 0)] * 3
    widths[axis] = (1, 1)
    xp = jnp.pad(x, widths)
    size = x.shape[axis]
    prev = jax.lax.slice_in_dim(xp, 0, size, axis=axis)
    nxt = jax.lax.slice_in_dim(xp, 2, size + 2, axis=axis)
    i = jnp.arange(size).reshape([-1 if d == axis else 1 for d in range(3)])
    n = n[:, None, None]
    return jnp.where(i == 0, nxt - x, jnp.where(i == n - 1, x - prev, (nxt - prev) / 2))


def AG(ctx):
    """Average gradient, mean of sqrt((Gx^2 + Gy^2) / 2) with central-difference gradients.

    Cui et al., "Detail preserved fusion of visible and infrared images using regional saliency
    extraction and multi-scale image decomposition", Opt. Commun. 341, 2015, eq. (19).
    ``matlab`` divides the sum by (H-1)(W-1) like AG_evaluation.m, ``cddfuse`` by H*W.
    """
    f, (h, w) = ctx.f, ctx.size
    s = jnp.sqrt((_central_gradient(f, w, 2) ** 2 + _central_gradient(f, h, 1) ** 2) / 2)
    return canvas.total(s, h, w) / (canvas.count(h - 1, w - 1) if ctx.conv.matlab else canvas.count(h, w))


def _qabf_edges(ctx, key):
    """Toolbox Qabf edges: conv2(x, h, 'same') (zero padding), strength and atan(Sy/Sx)."""
    def compute():
        x = getattr(ctx, key)
        # conv2 flips the kernel: conv2(x, h3) = correlate(x, -h3), conv2(x, h1) = correlate(x, -h1)
        # with h3 = [1 2 1]' [-1 0 1] and -h1 = [-1 0 1]' [1 2 1].
        sx = -correlate(x, (_S121, _D101), "same", "zero", ctx.size)
        sy = correlate(x, (_D101, _S121), "same", "zero", ctx.size)
        g = jnp.sqrt(sx * sx + sy * sy)
        a = jnp.where(sx == 0, math.pi / 2, arctan(_div(sy, sx)))
        return g, a
    return ctx.memo(("qabf_edges", key), compute)


def _qabf_preservation(gx, ax, gf, af):
    tg, kg, dg, ta, ka, da = 0.9994, -15.0, 0.5, 0.9879, -22.0, 0.8
    ratio = jnp.where(gx > gf, _div(gf, gx), jnp.where(gx == gf, gf, _div(gx, gf)))
    orient = 1 - jnp.abs(ax - af) / (math.pi / 2)
    return tg / (1 + jnp.exp(kg * (ratio - dg))) * ta / (1 + jnp.exp(ka * (orient - da)))


def Qabf(ctx):
    """Gradient-based fusion performance Q^{AB/F} (Xydeas & Petrovic, Electron. Lett. 36(4),
    2000, eqs. (1)-(8)): edge preservation Q^{XF} weighted by source edge strength g_X.

    Both conventions use the toolbox's formula (analysis_Qabf.m; Evaluator.Qabf is a copy).
    """
    ga, aa = _qabf_edges(ctx, "a")
    gb, ab = _qabf_edges(ctx, "b")
    gf, af = _qabf_edges(ctx, "f")
    qaf, qbf = _qabf_preservation(ga, aa, gf, af), _qabf_preservation(gb, ab, gf, af)
    return canvas.total(qaf * ga + qbf * gb, *ctx.size) / canvas.total(ga + gb, *ctx.size)


def _nabf_edges(x, size):
    """sobel_fn.m: Sobel / 8 on the reflect-padded image; strength and atan(gv/gh)."""
    gv = correlate(x, (_S121, _D101), "same", "reflect", size) / 8
    gh = correlate(x, (_D101, _S121), "same", "reflect", size) / 8
    g = jnp.sqrt(gh * gh + gv * gv)
    both_zero = (gv == 0) & (gh == 0)
    angle = jnp.where(both_zero, 0.0, arctan(gv / jnp.where(both_zero, 1.0, gh)))
    return g, angle


def _nabf(f, x1, x2, size):
    """Shreyamsha Kumar's modified fusion artefacts N^{AB/F} (Signal Image Video Process. 7,
    2013, eq. (20)) on Petrovic's edge preservation model (analysis_nabf.m)."""
    td, wt_min, lg = 2.0, 0.001, 1.5
    nrg, kg, sg, nra, ka, sa = 0.9999, 19.0, 0.5, 0.9995, 22.0, 0.5
    (g1, a1), (g2, a2), (gf, af) = (_nabf_edges(x, size) for x in (x1, x2, f))

    def preservation(gx, ax):
        ratio = jnp.where((gx == 0) | (gf == 0), 0.0,
                          jnp.where(gx > gf, _div(gf, gx), _div(gx, gf)))
        orient = jnp.abs(jnp.abs(ax - af) - math.pi / 2) * 2 / math.pi
        qg = nrg / (1 + jnp.exp(-kg * (ratio - sg)))
        qa = nra / (1 + jnp.exp(-ka * (orient - sa)))
        return jnp.sqrt(qg * qa)

    q1, q2 = preservation(g1, a1), preservation(g2, a2)
    w1 = jnp.where(g1 >= td, g1 ** lg, wt_min)
    w2 = jnp.where(g2 >= td, g2 ** lg, wt_min)
    artefact = (gf > g1) & (gf > g2)
    num = canvas.total(jnp.where(artefact, (1 - q1) * w1 + (1 - q2) * w2, 0.0), *size)
    return num / canvas.total(w1 + w2, *size)


def Nabf(ctx):
    """Fusion artefacts N^{AB/F} (modified by Shreyamsha Kumar, 2013); lower is better.

    ``matlab`` and ``cddfuse`` reproduce the toolbox call analysis_nabf(A, B, F), whose
    signature is (fused, source1, source2): A plays the fused image (see conventions).
    """
    return _nabf(ctx.a, ctx.b, ctx.f, ctx.size)


def Nabf_fixed(ctx):
    """N^{AB/F} with the intended argument order (F fused; A, B sources)."""
    return _nabf(ctx.f, ctx.a, ctx.b, ctx.size)
