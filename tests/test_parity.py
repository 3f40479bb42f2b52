"""SIBA parity with the official PyTorch model (golden tensors in ../shared/reference/siba).

Tolerance from that folder's README: atol 1e-5 for ``out`` and every activation, whole or
summarised (10-20x the float32-vs-float64 noise floor); 5e-5 for images above 512x512.
"""

import json
import os

import numpy as np
import pytest

from conftest import SHARED, require_shared
from jaxfuse import convert
from jaxfuse.convert import parity

CASES = ["crop128", "crop96x160", "crop101x67", "full37"]


@pytest.fixture(scope="module")
def siba_weights():
    folder = require_shared("reference", "siba")
    return convert.to_flax("siba", folder / "weights.npz")


@pytest.mark.parametrize("case", CASES)
def test_siba_matches_official_goldens(case, siba_weights):
    folder = require_shared("reference", "siba")
    golden = np.load(folder / f"goldens_{case}.npz")
    meta = json.loads((folder / "cases.json").read_text())[case]
    h, w = meta["input_shape_nchw"][2:]
    atol = 5e-5 if h * w > 512 * 512 else 1e-5
    params, model_config = siba_weights
    errors = parity.compare("siba", params, model_config, golden)
    recorded = set(meta["whole_keys"]) | set(meta["summarised_keys"])
    assert {k for k in recorded if k.startswith("act/")} <= set(errors), "a recorded module was not compared"
    failing = {k: e for k, e in errors.items() if e > atol}
    assert not failing, f"{case}: above atol {atol}: {failing}"


def test_fused_png_matches_official_test_script(tmp_path, siba_weights):
    """Whole TNO pair 37 through ``jaxfuse.fuse`` vs what the official test.py writes."""
    from jaxfuse.fuse import Fuser, fuse_files  # noqa: PLC0415

    golden = np.load(require_shared("reference", "siba") / "goldens_full37.npz")
    tno = require_shared("data", "tno")
    params, model_config = siba_weights
    out = fuse_files(Fuser("siba", model_config, params), tno / "ir" / "37.png", tno / "vi" / "37.png",
                     tmp_path / "37.png")
    from PIL import Image  # noqa: PLC0415

    mine = np.asarray(Image.open(out)).astype(int)
    official = golden["out_png_uint8"][0].astype(int)
    assert mine.shape == official.shape
    diff = np.abs(mine - official)
    # Truncation to uint8: values within float noise of an integer may land one level apart.
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01, (diff.max(), (diff > 0).mean())


def test_pth_and_npz_convert_identically():
    try:
        import torch  # noqa: F401, PLC0415
    except ImportError:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but torch is not installed (.ci/run installs torch==2.13.0)")
        pytest.skip("torch is optional (only to read .pth files); CI installs it")
    folder = require_shared("reference", "siba")
    from_pth, cfg_pth = convert.to_flax("siba", folder / "official_SIBA_epoch60.pth")
    from_npz, cfg_npz = convert.to_flax("siba", folder / "weights.npz")
    assert cfg_pth == cfg_npz
    import jax  # noqa: PLC0415

    for a, b in zip(jax.tree.leaves(from_pth), jax.tree.leaves(from_npz)):
        np.testing.assert_array_equal(a, b)


