"""jaxfuse.metrics: parity with the reference implementations on real image crops, bad inputs.

The reference table tests/data/metrics_reference.csv was produced outside the repo (see
tests/data/metrics_reference.json for the tools, versions and the crop/fusion recipe):
``matlab`` rows by the toolbox's own .m files run in GNU Octave, ``cddfuse`` rows by
MMIF-CDDFuse's utils/Evaluator.py. The crops are rebuilt here from ../shared/data.

FMI_pixel and FMI_w depend on Octave's ``edge`` and a PyWavelets stand-in for ``dwt2``, which are
not MATLAB's: those rows are labelled ``octave`` and checked against
:func:`jaxfuse.metrics.fmi.octave_fmi`; the ``matlab`` convention's FMI_pixel / FMI_w are checked
against a NumPy reference of MATLAB's algorithms in tests/test_metrics_fmi.py.
"""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import require_shared
from jaxfuse.data.images import read_image
from jaxfuse.metrics import CDDFUSE_METRICS, METRICS, compute_metrics, to_gray
from jaxfuse.metrics.buckets import plan_buckets
from jaxfuse.metrics.conventions import get as get_convention
from jaxfuse.metrics.fmi import octave_fmi

DATA = Path(__file__).parent / "data"
RECIPE = json.loads((DATA / "metrics_reference.json").read_text())
RTOL, ATOL = 1e-3, 1e-4


def _reference():
    table = {}
    with open(DATA / "metrics_reference.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            table.setdefault(row["convention"], {}).setdefault(row["image"], {})[row["metric"]] = float(row["value"])
    return table


def fused_from(ir_gray, vi_gray):
    """The deterministic stand-in "fusion" the reference values were computed on."""
    mx, mn = np.maximum(ir_gray, vi_gray), np.minimum(ir_gray, vi_gray)
    return ((3 * mx + 2 * mn + 2) // 5).astype(np.uint8)


def load_cases(convention):
    """(names, fused, ir, vi) batches of the reference crops in ``convention``'s gray."""
    h, w = RECIPE["crop_hw"]
    names, batch = [], []
    for case in RECIPE["cases"]:
        folder = require_shared("data", case["set"])
        raw = [read_image(folder / m / case["file"])[case["row"]:case["row"] + h, case["col"]:case["col"] + w]
               for m in ("ir", "vi")]
        fused = fused_from(*(to_gray(r, "matlab") for r in raw))
        names.append(case["name"])
        batch.append([to_gray(fused, convention)] + [to_gray(r, convention) for r in raw])
    return names, *(np.stack(x) for x in zip(*batch))


@pytest.mark.parametrize("convention", ["matlab", "cddfuse"])
def test_parity_with_reference_tools(convention):
    ref = _reference()[convention]
    names, *images = load_cases(convention)
    metrics = sorted({m for r in ref.values() for m in r}, key=list(METRICS).index)
    f, a, b = (x.astype(np.uint8) for x in images)  # as the evaluate CLI passes them
    got = compute_metrics(f, a, b, names=metrics, convention=convention)
    failures = []
    for i, name in enumerate(names):
        for m in metrics:
            want, have = ref[name][m], float(got[m][i])
            if not (abs(have - want) <= ATOL or abs(have - want) <= RTOL * abs(want)):
                failures.append(f"{name} {m}: jaxfuse {have:.8g} vs reference {want:.8g}")
    assert not failures, "\n".join(failures)


def test_octave_variant_matches_octave_reference():
    """FMI_pixel / FMI_w of the toolbox run in Octave (superseded for ``matlab``): the FMI window
    code is the same, only the features differ. FMI_pixel's residual gap (9.1e-4 on tno33) is
    Octave's edge(I / 255) breaking exact ties of the Sobel strengths (see the recipe's notes)."""
    ref = _reference()["octave"]
    names, f, a, b = load_cases("matlab")
    for m in ("FMI_pixel", "FMI_w"):
        got = octave_fmi(f, a, b, m)
        want = np.array([ref[n][m] for n in names])
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=m)


def test_gray_conversions_differ_only_on_colour():
    rgb = np.array([[[10, 200, 30], [7, 7, 7]]], dtype=np.uint8)
    m, c = to_gray(rgb, "matlab"), to_gray(rgb, "cddfuse")
    assert m[0, 1] == c[0, 1] == 7
    assert m[0, 0] == np.floor(10 * 0.298936021293775 + 200 * 0.587043074451121 + 30 * 0.114020904255103 + 0.5)
    assert c[0, 0] == np.round(np.float32(0.299) * 10 + np.float32(0.587) * 200 + np.float32(0.114) * 30)
    with pytest.raises(ValueError, match="unknown convention"):
        get_convention("octave")


@pytest.mark.parametrize("convention", ["matlab", "cddfuse"])
def test_grey_stored_as_rgb_takes_the_table_path_with_the_same_values(convention):
    from jaxfuse.metrics.conventions import _rgb_to_gray
    levels = np.concatenate([np.random.default_rng(0).integers(0, 256, 4000), np.arange(256)])
    grey = np.repeat(levels.astype(np.uint8).reshape(1, -1, 1), 3, axis=2)  # every level, and noise
    almost = grey.copy()
    almost[0, 5, 2] ^= 1  # one channel differs: the general rule
    for image in (grey, almost):
        want = _rgb_to_gray(image, get_convention(convention))
        np.testing.assert_array_equal(to_gray(image, convention), want)
        gray8 = to_gray(image, convention, np.uint8)
        assert gray8.dtype == np.uint8
        np.testing.assert_array_equal(gray8, want)


def test_bad_inputs_are_nan_not_garbage():
    """Constant / black images: every metric is finite or NaN (= undefined); PSNR is +inf for
    a perfect match and, in the cddfuse convention (peak = max(F)), -inf for a black F."""
    rng = np.random.default_rng(0)
    h, w = RECIPE["crop_hw"]
    src = rng.integers(0, 256, (2, h, w)).astype(np.float64)
    const, black = np.full((h, w), 128.0), np.zeros((h, w))
    # Same batch size and shape as the parity test, so the compilation is reused.
    f = np.stack([const, black, src[0], const])
    a = np.stack([src[0], src[0], const, const])
    b = np.stack([src[1], src[1], black, const])
    for convention, names in (("matlab", None), ("cddfuse", CDDFUSE_METRICS)):
        r = compute_metrics(f, a, b, names=names, convention=convention)
        for name, v in r.items():
            if name == "PSNR":  # +inf when F equals both sources; cddfuse: -inf when max(F) = 0
                peak0 = (f.max(axis=(1, 2)) == 0) & (convention == "cddfuse")
                assert np.all(np.isinf(v) == ((r["MSE"] == 0) | peak0)), v
            else:
                assert not np.any(np.isinf(v)), (convention, name, v)
        # A constant fused image has no correlation with anything.
        assert np.isnan(r["CC"][0]) and np.isfinite(r["SCD"][0])  # F - B is not constant
        assert np.isfinite(r["EN"]).all() and np.isfinite(r["SD"]).all()
        # All three images constant: VIF's information ratio is 0/0; the CDDFuse evaluator
        # replaces each undefined source term by 1.
        assert np.isnan(r["VIF"][3]) if convention == "matlab" else r["VIF"][3] == 2.0


@pytest.mark.parametrize("convention", ["matlab", "cddfuse"])
def test_canvas_padding_is_invisible(convention):
    """Scores on a padded bucket canvas equal those on the exact-size canvas (only the order of
    floating-point summation differs); odd sizes exercise every border rule. The padded run
    takes uint8 images, the exact one float64: both input paths give the same scores."""
    _, f, a, b = load_cases(convention)
    f, a, b = (x[:2, :61, :87] for x in (f, a, b))
    names = [n for n in METRICS if n != "FMI_w"]  # PC never pads; FMI_dct pads its DCT maps
    exact = compute_metrics(f, a, b, names=names, convention=convention, canvas_shape=(61, 87))
    padded = compute_metrics(*(x.astype(np.uint8) for x in (f, a, b)), names=names,
                             convention=convention, canvas_shape=(67, 96))
    for n in names:
        np.testing.assert_allclose(padded[n], exact[n], rtol=1e-9, atol=1e-12, err_msg=n)
    # FMI_w scores its 2 floor((61 + 101) / 2) x 2 floor((87 + 101) / 2) wavelet feature maps; a
    # canvas too small for them falls back to a bucket shape.
    wavelet = [compute_metrics(f, a, b, names=["FMI_w"], convention=convention, canvas_shape=s)["FMI_w"]
               for s in ((162, 188), (170, 196), (61, 87))]
    for w in wavelet[1:]:
        np.testing.assert_allclose(w, wavelet[0], rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="smaller"):
        compute_metrics(f, a, b, names=["SD"], canvas_shape=(60, 87))


def test_bucket_plan_trades_compiles_for_padding():
    sizes = [(450, 620)] * 14 + [(457, 619), (496, 632), (576, 768), (709, 945)]
    plan = plan_buckets(sizes, compile_s=1.0)
    assert all(plan[s][0] >= s[0] and plan[s][1] >= s[1] for s in sizes)
    assert len(set(plan.values())) == 2  # the two large images share one canvas
    assert len(set(plan_buckets(sizes, compile_s=0.0).values())) == 3  # free compiles: no merging


def test_unbatched_input_and_shape_errors():
    x = np.zeros((8, 9))
    assert compute_metrics(x, x, x, names=["SD"])["SD"].shape == ()
    with pytest.raises(ValueError, match="share one"):
        compute_metrics(x, x, np.zeros((9, 8)), names=["SD"])
    with pytest.raises(ValueError, match="unknown metric"):
        compute_metrics(x, x, x, names=["PSNR", "QQ"])


def test_qe_properties():
    """Qe has no reference implementation: check Piella's defining properties instead."""
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (2, 24, 32)).astype(np.float64)
    b = np.round(0.5 * a + rng.integers(0, 100, a.shape))
    same = compute_metrics(a, a, a, names=["Qe"])["Qe"]
    np.testing.assert_allclose(same, 1.0, rtol=1e-12)  # F = A = B is a perfect fusion
    avg = compute_metrics(np.round((a + b) / 2), a, b, names=["Qe"])["Qe"]
    blank = compute_metrics(np.zeros_like(a), a, b, names=["Qe"])["Qe"]
    assert np.all((0 < avg) & (avg < 1)) and np.all(blank < avg)


def test_vectorised_arctan_matches_numpy():
    """gradient.arctan (used by Qabf and Nabf) is float64 atan within about 1 ulp."""
    import jax
    from jaxfuse.metrics.gradient import arctan
    rng = np.random.default_rng(0)
    x = rng.standard_normal(20000) * 10.0 ** rng.uniform(-8, 8, 20000)
    x = np.concatenate([x, [0.0, -0.0, 0.66, 1.0, -1.0, 2.414213562373095, 1e300, np.inf, -np.inf]])
    with jax.enable_x64(True):
        got = np.asarray(jax.jit(arctan)(x))
    np.testing.assert_allclose(got, np.arctan(x), rtol=4.5e-16, atol=0)
    assert np.isnan(np.asarray(jax.jit(arctan)(np.array([np.nan]))))[0]
