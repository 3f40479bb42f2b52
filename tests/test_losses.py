"""Loss terms on tiny hand-checkable inputs, and the official values on a golden crop."""

import json

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


def test_siba_loss_matches_the_official_loss_on_golden_crop():
    folder = require_shared("reference", "siba")
    g = np.load(folder / "goldens_crop128.npz")
    expected = json.loads((folder / "cases.json").read_text())["crop128"]["train_losses_on_out"]
    to = lambda a: jnp.asarray(a.transpose(0, 2, 3, 1))  # noqa: E731
    total, terms = siba_loss(to(g["out"]), to(g["ir"]), to(g["vi"]))
    np.testing.assert_allclose(terms["loss_laplacian"], expected["loss_jointgrad_laplacian"], rtol=1e-4)
    np.testing.assert_allclose(terms["loss_intensity"], expected["loss_intensity_l1"], rtol=1e-5)
    np.testing.assert_allclose(terms["loss_sobel"], expected["loss_sobel_grad_l1"], rtol=1e-5)
    np.testing.assert_allclose(total, expected["loss_total"], rtol=1e-5)
