"""FMI_pixel / FMI_w as MATLAB computes them (jaxfuse.metrics.fmi).

No MATLAB is available, so the MATLAB steps are checked against a straightforward NumPy
reference written here from the toolbox's analysis_fmi.m and from MATLAB's documented
algorithms: ``edge`` (Sobel, automatic threshold, direction-aware thinning), ``wfilters('dmey')``
(dmey.mat through ``orthfilt``) and ``dwt2`` in its default 'sym' mode (``wextend``, ``conv2``
'valid', every 2nd sample from the 2nd). Loops and sums run in the .m files' order, because
analysis_fmi tests sums for exact zero.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxfuse.metrics import compute_metrics, fmi
from test_metrics import load_cases

EPS = np.finfo(np.float64).eps


# --- NumPy reference ---------------------------------------------------------------------------

def ref_edge(img):
    """MATLAB edge(img) (sobel): imfilter 'replicate' with op = [1 2 1; 0 0 0; -1 -2 -1] / 8
    (by) and op' (bx), b = bx.^2 + by.^2, cutoff = 4 * mean(b(:)), then the thinning rule."""
    m, n = img.shape
    p = np.pad(np.asarray(img, np.float64), 1, mode="edge")
    op = np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]]) / 8

    def imfilter(k):
        return sum(k[i, j] * p[i:i + m, j:j + n] for i in range(3) for j in range(3))

    bx, by = imfilter(op.T), imfilter(op)
    b = bx * bx + by * by
    cutoff = 4 * b.sum() / b.size
    e = np.zeros((m, n), bool)
    for r in range(m):
        for c in range(n):
            if not b[r, c] > cutoff:
                continue
            left = c == 0 or b[r, c - 1] <= b[r, c]
            right = c == n - 1 or b[r, c] > b[r, c + 1]
            up = r == 0 or b[r - 1, c] <= b[r, c]
            down = r == m - 1 or b[r, c] > b[r + 1, c]
            horiz = abs(bx[r, c]) >= abs(by[r, c]) - 100 * EPS and left and right
            vert = abs(by[r, c]) >= abs(bx[r, c]) - 100 * EPS and up and down
            e[r, c] = horiz or vert
    return e


def ref_edge_octave(img):
    """Octave's rule on the same b: zero b <= cutoff, keep strict maxima (zeros outside)."""
    m, n = img.shape
    p = np.pad(np.asarray(img, np.float64), 1, mode="edge")
    d = p[:-2] - p[2:]  # rows r-1 minus r+1
    by = (d[:, :-2] + 2 * d[:, 1:-1] + d[:, 2:]) / 8
    d = p[:, :-2] - p[:, 2:]
    bx = (d[:-2] + 2 * d[1:-1] + d[2:]) / 8
    b = bx * bx + by * by
    b = np.pad(np.where(b > 4 * b.mean(), b, 0.0), 1)
    mid = b[1:-1, 1:-1]
    horiz = (mid > b[1:-1, :-2]) & (mid > b[1:-1, 2:])
    vert = (mid > b[:-2, 1:-1]) & (mid > b[2:, 1:-1])
    return horiz | vert


def ref_orthfilt(w):
    """[Lo_D, Hi_D] = orthfilt(W): W / sum(W) * sqrt(2) = Lo_R, Hi_R = qmf(Lo_R), reversed."""
    lo_r = math.sqrt(2) * (np.asarray(w) / math.fsum(w))
    hi_r = np.array([(-1) ** k * lo_r[len(w) - 1 - k] for k in range(len(w))])
    return lo_r[::-1], hi_r[::-1]


def ref_sym_indices(lx, ext):
    """wextend 'sym' indices (0-based) of a length-lx signal extended by ext on both sides:
    mirror with the edge sample repeated, again and again while the index is outside."""
    idx = []
    for i in range(-ext, lx + ext):
        while i < 0 or i >= lx:
            i = -i - 1 if i < 0 else 2 * lx - 1 - i
        idx.append(i)
    return np.array(idx)


def ref_dwt2(x, lo, hi):
    """[cA, cH, cV, cD] = dwt2(x, Lo_D, Hi_D) with dwtmode 'sym', shift 0: columns extended by
    lf - 1 and each row convolved ('valid'), columns 2, 4, ..., lx + lf - 1 kept; then the same
    down the columns."""
    lf = len(lo)

    def step(v, f, axis):  # extend, convolve 'valid', keep 2nd, 4th, ... along ``axis``
        v = np.moveaxis(v, axis, -1)
        v = v[:, ref_sym_indices(v.shape[-1], lf - 1)]
        out = np.stack([np.convolve(row, f, "valid") for row in v])
        return np.moveaxis(out[:, 1::2], -1, axis)

    lo_x, hi_x = step(x, lo, 1), step(x, hi, 1)
    return step(lo_x, lo, 0), step(lo_x, hi, 0), step(hi_x, lo, 0), step(hi_x, hi, 0)


def ref_wavelet_feature(x, lo, hi):
    ca, ch, cv, cd = ref_dwt2(x, lo, hi)
    m = np.block([[ca, ch], [cv, cd]])
    return np.ones_like(m) if m.max() == m.min() else (m - m.min()) / (m.max() - m.min())


def _seq(terms):  # MATLAB's sum of a short vector, left to right
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    return total


def _ref_fmi_pair(xs, fs):
    """fmi_af of analysis_fmi.m for every window at once: xs, fs are (9, N) raw patches
    (column-major), with the ``aSub == fSub`` case already excluded by the caller."""
    def rescale(v):
        mx, mn = v.max(0), v.min(0)
        return np.where(mx == mn, 1.0, (v - mn) / np.where(mx == mn, 1.0, mx - mn))

    a, f = rescale(xs), rescale(fs)
    # sum(sum(aSub)): column sums of the 3x3 patch, then their sum
    ap = a / _seq([_seq(list(a[0:3])), _seq(list(a[3:6])), _seq(list(a[6:9]))])
    fp = f / _seq([_seq(list(f[0:3])), _seq(list(f[3:6])), _seq(list(f[6:9]))])
    acdf, fcdf = np.cumsum(ap, 0), np.cumsum(fp, 0)  # sequential, as the .m loop
    at, ft = ap - _seq(list(ap)) / 9, fp - _seq(list(fp)) / 9
    num = _seq(list(at * ft))
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.where(num == 0, 0.0, num / np.sqrt(_seq(list(at * at)) * _seq(list(ft * ft))))
    k = np.arange(1, 10)[:, None]

    def sd(p):  # sqrt(E[i^2] - E[i]^2); >= 0 here (a point mass gives exactly 0)
        return np.sqrt(np.maximum(_seq([0.0] + list(k ** 2 * p)) - _seq([0.0] + list(k * p)) ** 2, 0))

    asd, fsd = sd(ap), sd(fp)
    up = c >= 0

    def bound(fc, ac):
        return np.where(up, 0.5 * (fc + ac - np.abs(fc - ac)), 0.5 * (fc + ac - 1 + np.abs(fc + ac - 1)))

    cov = 0.0
    for i in range(9):
        for j in range(9):
            cov = cov + bound(fcdf[i], acdf[j]) - fcdf[i] * acdf[j]
    degenerate = (asd == 0) | (fsd == 0) | (up & (c == 0))
    with np.errstate(invalid="ignore", divide="ignore"):
        phi = np.where(degenerate, 0.0, c / (cov / (fsd * asd)))
    joint = 0.0
    for i in range(9):
        for j in range(9):
            rect = bound(fcdf[i], acdf[j])
            if i:
                rect = rect - bound(fcdf[i - 1], acdf[j])
            if j:
                rect = rect - bound(fcdf[i], acdf[j - 1])
            if i and j:
                rect = rect + bound(fcdf[i - 1], acdf[j - 1])
            jp = phi * rect + (1 - phi) * fp[i] * ap[j]
            with np.errstate(invalid="ignore", divide="ignore"):
                joint = joint + np.where(jp != 0, -jp * np.log2(np.abs(np.where(jp != 0, jp, 1.0))), 0.0)

    def entropy(p):
        return _seq([np.where(v != 0, -v * np.log2(np.where(v != 0, v, 1.0)), 0.0) for v in p])

    ha, hf = entropy(ap), entropy(fp)
    mi = ha + hf - joint
    return np.where(mi == 0, 0.0, 2 * mi / np.where(mi == 0, 1.0, ha + hf)), f


def ref_fmi(fa, fb, ff):
    """analysis_fmi's sliding 3x3 loop and mean2(fmi_map) on feature maps (H, W)."""
    m, n = fa.shape

    def patches(x):  # (9, N): column-major window elements, windows in any fixed order
        return np.stack([x[r:r + m - 2, c:c + n - 2].ravel() for c in range(3) for r in range(3)])

    a, b, f = patches(fa), patches(fb), patches(ff)
    a_eq = np.all(a == f, 0)
    fmi_af, f_rescaled = _ref_fmi_pair(a, f)
    fmi_af = np.where(a_eq, 1.0, fmi_af)
    f_after = np.where(a_eq, f, f_rescaled)  # the .m file compares bSub with the rescaled fSub
    fmi_bf = np.where(np.all(b == f_after, 0), 1.0, _ref_fmi_pair(b, f)[0])
    return np.mean((fmi_af + fmi_bf) / 2)


# --- edge thinning -----------------------------------------------------------------------------

def _jax_edge(x, thinning="matlab", canvas=None):
    x = np.asarray(x, np.float64)[None]
    h, w = x.shape[1:]
    if canvas:
        x = np.pad(x, ((0, 0), (0, canvas[0] - h), (0, canvas[1] - w)), constant_values=77.0)
    with jax.enable_x64(True):
        e, _ = jax.jit(fmi.edge_sobel, static_argnums=2)(
            jnp.asarray(x), (jnp.array([h]), jnp.array([w])), thinning)
        return np.asarray(e[0, :h, :w]).astype(bool)


def _step(h, w, col):  # vertical step edge between columns col - 1 and col
    x = np.zeros((h, w))
    x[:, col:] = 100.0
    return x


def test_thinning_plateau_keeps_one_pixel_matlab_none_octave():
    """A vertical step: b is tied on the two columns beside it. MATLAB's rule (b(c-1) <= b(c) >
    b(c+1)) keeps the right one of the tie; Octave's strict maxima keep neither."""
    x = _step(7, 10, 5)
    want = np.zeros((7, 10), bool)
    want[:, 5] = True
    np.testing.assert_array_equal(ref_edge(x), want)
    np.testing.assert_array_equal(_jax_edge(x), want)
    assert not _jax_edge(x, "octave").any() and not ref_edge_octave(x).any()


def test_thinning_diagonal_edge_uses_both_directions():
    """A diagonal step: |bx| == |by| on the edge, so both neighbour tests apply (ties included
    through the 100 eps tolerance)."""
    r, c = np.mgrid[:12, :12]
    x = np.where(c > r, 200.0, 10.0)
    e = ref_edge(x)
    assert e.any()
    np.testing.assert_array_equal(_jax_edge(x), e)
    np.testing.assert_array_equal(_jax_edge(x, "octave"), ref_edge_octave(x))
    assert (e != ref_edge_octave(x)).any()


def test_thinning_border_neighbours_count_as_true():
    """A step at the last column: the edge pixel on the image border has no right neighbour,
    which counts as true in MATLAB (Octave compares with 0 outside, which also keeps it)."""
    x = _step(6, 12, 11)
    e = ref_edge(x)
    assert e[:, 11].all() and not e[:, :11].any()
    np.testing.assert_array_equal(_jax_edge(x), e)


def test_thinning_direction_gate():
    """A pixel that is a horizontal maximum but whose gradient is mostly vertical: Octave keeps
    it, MATLAB only if it is also a vertical maximum (here it is not)."""
    x = np.zeros((9, 9))
    x[5:, :] = 90.0        # horizontal step between rows 4 and 5 (vertical gradient)
    x[:, 4] += 30.0        # a faint vertical ridge makes row 4/5 pixels horizontal maxima
    e, o = ref_edge(x), ref_edge_octave(x)
    np.testing.assert_array_equal(_jax_edge(x), e)
    np.testing.assert_array_equal(_jax_edge(x, "octave"), o)
    assert (e != o).any()


@pytest.mark.parametrize("seed", range(4))
def test_thinning_matches_rule_on_quantised_noise(seed):
    """Few grey levels make many ties and plateaus; a padded canvas (filled with junk) must not
    change the map."""
    rng = np.random.default_rng(seed)
    h, w = (13, 17) if seed % 2 else (16, 11)
    x = rng.integers(0, 4, (h, w)).astype(np.float64) * 60
    e = ref_edge(x)
    np.testing.assert_array_equal(_jax_edge(x), e)
    np.testing.assert_array_equal(_jax_edge(x, canvas=(h + 5, w + 3)), e)
    np.testing.assert_array_equal(_jax_edge(x, "octave"), ref_edge_octave(x))
    np.testing.assert_array_equal(_jax_edge(x, "octave", canvas=(h + 5, w + 3)), ref_edge_octave(x))


# --- the 102-tap dmey --------------------------------------------------------------------------

def test_matlab_dmey_filter_properties():
    lo, hi = fmi.WAVELETS["matlab"]
    ref_lo, ref_hi = ref_orthfilt(fmi._MATLAB_DMEY)
    assert lo.size == hi.size == 102
    # 1 ulp apart at most: the reference sums W exactly, jaxfuse left to right (MATLAB's own
    # summation order for sum(W) is not documented).
    np.testing.assert_allclose(lo, ref_lo, rtol=0, atol=4e-16)
    np.testing.assert_allclose(hi, ref_hi, rtol=0, atol=4e-16)
    assert lo[0] == 0.0 and np.array_equal(lo[1:], lo[1:][::-1])  # symmetric about tap 51
    assert abs(lo.sum() - math.sqrt(2)) < 1e-15
    assert abs(hi.sum()) < 3e-6  # the FIR approximation's leak (MATLAB's filter as shipped)
    # Orthogonality, up to the FIR approximation: unit norm and even-shift products within 2e-6
    # (measured: 1.6e-6 and 6.5e-7; PyWavelets' 62-tap dmey: 2.2e-3 and 1.4e-3), and Lo_D / Hi_D
    # orthogonal at every even shift (exact up to rounding by the QMF construction).
    assert abs(lo @ lo - 1) < 2e-6 and abs(hi @ hi - 1) < 2e-6
    for k in range(1, 51):
        assert abs(lo[2 * k:] @ lo[:-2 * k]) < 1e-6, k
        assert abs(hi[2 * k:] @ hi[:-2 * k]) < 1e-6, k
    for k in range(-50, 51):
        a, b = (lo[2 * k:], hi[:102 - 2 * k]) if k >= 0 else (lo[:102 + 2 * k], hi[-2 * k:])
        assert abs(a @ b) < 1e-15, k


@pytest.mark.parametrize("shape", [(5, 8), (64, 101), (102, 7)])
def test_dwt2_size_and_values_match_matlab_reference(shape):
    """floor((N + 101) / 2) per side; extension by 101 repeats the mirror when N < 101."""
    rng = np.random.default_rng(sum(shape))
    x = rng.integers(0, 256, shape).astype(np.float64)
    with jax.enable_x64(True):
        got = np.asarray(jax.jit(fmi.wavelet_feature)(jnp.asarray(x[None])))[0]
    h, w = ((n + 101) // 2 for n in shape)
    assert got.shape == (2 * h, 2 * w)
    assert fmi.dwt_size(shape[0], 102) == h
    want = ref_wavelet_feature(x, *ref_orthfilt(fmi._MATLAB_DMEY))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


# --- FMI on real crops -------------------------------------------------------------------------

def test_fmi_pixel_and_w_match_numpy_reference_on_real_crops():
    """The four reference crops (64x96, tests/data/metrics_reference.json), matlab gray."""
    names, f, a, b = load_cases("matlab")
    got = compute_metrics(f, a, b, names=["FMI_pixel", "FMI_w"], convention="matlab")
    filters = ref_orthfilt(fmi._MATLAB_DMEY)
    for i, name in enumerate(names):
        edges = [ref_edge(x[i]).astype(np.float64) for x in (a, b, f)]
        want_pixel = ref_fmi(*edges)
        want_w = ref_fmi(*(ref_wavelet_feature(x[i], *filters) for x in (a, b, f)))
        np.testing.assert_allclose(got["FMI_pixel"][i], want_pixel, rtol=1e-13, err_msg=name)
        np.testing.assert_allclose(got["FMI_w"][i], want_w, rtol=1e-13, err_msg=name)
