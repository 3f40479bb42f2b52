"""Loss terms on tiny hand-checkable inputs, and the official values on a golden crop."""

import json

import jax
import jax.numpy as jnp
import numpy as np

from conftest import require_shared
from jaxfuse import losses
from jaxfuse.models.siba import siba_loss


def _img(a):
    return jnp.asarray(a, jnp.float32)[None, :, :, None]


def test_laplacian_of_constant_is_zero_with_reflect_padding():
    np.testing.assert_allclose(losses.laplacian(_img(np.full((4, 5), 0.7))), 0, atol=1e-7)


def test_laplacian_of_a_point():
    x = np.zeros((5, 5)); x[2, 2] = 16.0
    lap = np.asarray(losses.laplacian(_img(x)))[0, :, :, 0]
    assert lap[2, 2] == -8.0 and lap[1, 1] == 1.0 and lap[0, 0] == 0.0


def test_sobel_of_a_ramp():
    x = np.tile(np.arange(5.0), (5, 1))  # d/dx = 1 per pixel
    s = np.asarray(losses.sobel_magnitude(_img(x)))[0, :, :, 0]
    assert s[2, 2] == 8.0  # |(-1-2-1)*(x-1) + (1+2+1)*(x+1)| = 8, no y gradient
    assert s[2, 0] == 4.0  # left neighbour is zero padding (= the image value 0 here)
    assert s[2, 4] == 12.0  # right neighbour is zero padding: |-4 * 3 + 4 * 0|


def test_intensity_and_gradient_losses_vanish_for_the_ideal_fusion():
    ir, vi = _img(np.eye(6) * 0.8), _img(np.full((6, 6), 0.3))
    fused = jnp.maximum(ir, vi)
    assert float(losses.max_intensity_loss(fused, ir, vi)) == 0.0
    np.testing.assert_allclose(losses.max_intensity_loss(fused + 0.1, ir, vi), 0.1, rtol=1e-6)


def _golden_losses():
    folder = require_shared("reference", "siba")
    g = np.load(folder / "goldens_crop128.npz")
    case = json.loads((folder / "cases.json").read_text())["crop128"]
    return g, case


def _check(terms, total, expected, rtol_lap, rtol):
    np.testing.assert_allclose(terms["loss_laplacian"], expected["loss_jointgrad_laplacian"], rtol=rtol_lap)
    np.testing.assert_allclose(terms["loss_intensity"], expected["loss_intensity_l1"], rtol=rtol)
    np.testing.assert_allclose(terms["loss_sobel"], expected["loss_sobel_grad_l1"], rtol=rtol)
    np.testing.assert_allclose(total, expected["loss_total"], rtol=max(rtol, rtol_lap / 5))


def test_siba_loss_float64_matches_the_official_float64_loss():
    """Semantics: in float64 every term equals the official classes run in float64."""
    g, case = _golden_losses()
    with jax.enable_x64(True):
        to = lambda a: jnp.asarray(a.transpose(0, 2, 3, 1).astype(np.float64))  # noqa: E731
        total, terms = siba_loss(to(g["out_f64"]), to(g["ir"]), to(g["vi"]))
        _check(terms, total, case["train_losses_f64_on_out_f64"], 1e-7, 1e-7)


def test_siba_loss_float32_matches_the_official_float32_loss():
    """float32: the joint Laplacian picks sign(Lap ir) or sign(Lap vi) where |Lap ir| = |Lap vi|
    in exact arithmetic (common on 8-bit images); float32 rounding breaks those ties differently
    in XLA and PyTorch, a 2e-4 relative effect on this term (the float64 test shows the
    semantics are exact)."""
    g, case = _golden_losses()
    to = lambda a: jnp.asarray(a.transpose(0, 2, 3, 1))  # noqa: E731
    total, terms = siba_loss(to(g["out"]), to(g["ir"]), to(g["vi"]))
    _check(terms, total, case["train_losses_on_out"], 3e-4, 1e-5)
