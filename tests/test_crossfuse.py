"""CrossFuse: parity with the official code (../shared/reference/crossfuse), losses, converter,
any batch and size, BatchNorm state through both training stages.

Tolerances from that folder's README (float32, CPU, highest matmul precision): ``ae_*`` 2e-5,
``ae_*/recon`` 5e-3, ``cam/*`` and ``tok/*`` 3e-5, ``dec/*`` 1e-2, ``fuse/out`` 0.02 with a mean
absolute error below 0.005; loss values rtol 1e-4.
"""

import hashlib
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from conftest import require_shared
from helpers import crossfuse_rule_state_dicts
from jaxfuse import checkpoint, configs, convert, models, train
from jaxfuse.convert import ConversionError, parity
from jaxfuse.models import crossfuse
from jaxfuse.nn.layers import BatchNorm

CASES = ("crop256", "crop141x203", "full36")
SHA256 = {"ae_ir": "e64cf20fc68719ff2e788c6592eb890f3c2d7bc94b43c47eb541db7d9bebb9f0",
          "ae_vi": "83de0b8df251b69dcc5ddf6e44bf1bea82451936ddc3466c89119d8e2cf19e8b",
          "trans": "bce3029400eec737000a720e1f9322b71fb0450abba2100386cd456a92dce431"}
NOT_MODEL_OUTPUTS = {"ir", "vi", "meta_json", "fuse/out_f64", "fuse/out_saved_uint8"}
TINY = configs.load("crossfuse:tiny").model.to_dict()


def tolerance(key: str) -> float:
    if key.endswith("/recon"):
        return 5e-3
    if key.startswith("ae_"):
        return 2e-5
    if key.startswith(("cam/", "tok/")):
        return 3e-5
    if key.startswith("dec/"):
        return 1e-2
    return 0.02  # fuse/out and the train_module output (0-255 scale)


@pytest.fixture(scope="module")
def rule_weights():
    folder = require_shared("reference", "crossfuse")
    sds = crossfuse_rule_state_dicts(folder / "keys.txt")
    for name, sd in sds.items():
        digest = hashlib.sha256(b"".join(np.ascontiguousarray(v).tobytes() for v in sd.values())).hexdigest()
        assert digest == SHA256[name], f"rule weights {name} differ from the reference README"
    return sds


@pytest.fixture(scope="module")
def converted(rule_weights):
    return convert.to_flax("crossfuse", [rule_weights[k] for k in ("ae_ir", "ae_vi", "trans")])


def _golden(case):
    folder = require_shared("reference", "crossfuse")
    return np.load(folder / f"goldens_{case}.npz"), json.loads((folder / "cases.json").read_text())[case]


@pytest.mark.parametrize("case", CASES)
def test_every_recorded_tensor_matches_the_official_code(case, converted):
    golden, meta = _golden(case)
    variables, config = converted
    errors = parity.compare("crossfuse", variables, config, golden)
    recorded = set(meta["whole_keys"]) | set(meta["summarised_keys"])
    assert recorded - NOT_MODEL_OUTPUTS <= set(errors), f"not compared: {recorded - NOT_MODEL_OUTPUTS - set(errors)}"
    failing = [(k, e) for k, e in errors.items() if e > tolerance(k)]
    assert not failing, f"{case}: first failing keys in forward order: {failing[:5]}"
    out = parity.converter("crossfuse").parity_arrays(variables, config, golden)["fuse/out"]
    assert np.abs(out - golden["fuse/out"]).mean() < 0.005


def test_loss_values_match_the_official_losses(converted):
    golden, meta = _golden("crop256")
    expected = meta["train_losses"]
    variables, config = converted
    module = models.get("crossfuse").build(config)
    ir, vi = (jnp.asarray(np.transpose(golden[k], (0, 2, 3, 1))) / 255.0 for k in ("ir", "vi"))
    with jax.default_matmul_precision("highest"):
        r_ir, r_vi = module.apply(variables, ir, vi, method=crossfuse.CrossFuse.reconstruct)
        fused = module.apply(variables, ir, vi)  # eval-mode BN, as the goldens
    for recon, x, name in ((r_ir, ir, "stage1_ae_ir"), (r_vi, vi, "stage1_ae_vi")):
        total, pix, ssim = crossfuse.autoencoder_loss(recon, x)
        want = expected[name]
        np.testing.assert_allclose([pix, ssim, total], [want["recon_loss_weighted(w0*mse)"],
                                                        want["ssim_loss_weighted(w1*(1-msssim))"],
                                                        want["total_loss"]], rtol=1e-4, err_msg=name)
    total, pix, grad = crossfuse.fusion_loss(fused, ir, vi)
    want = next(v for k, v in expected.items() if k.startswith("stage2"))
    got = dict(zip(("pix", "gra", "total"), (pix, grad, total)))
    for key, value in want.items():
        short = next(s for s in got if s in key)
        np.testing.assert_allclose(got[short], value, rtol=1e-4, err_msg=key)


def test_fuse_cli_png_matches_the_saved_official_png(tmp_path, converted):
    from PIL import Image  # noqa: PLC0415

    from jaxfuse.fuse import Fuser, fuse_files  # noqa: PLC0415

    golden, _ = _golden("crop141x203")
    for k in ("ir", "vi"):
        Image.fromarray(golden[k][0, 0].astype(np.uint8)).save(tmp_path / f"{k}.png")
    variables, config = converted
    out = fuse_files(Fuser("crossfuse", config, variables), tmp_path / "ir.png", tmp_path / "vi.png", tmp_path / "f.png")
    mine, official = np.asarray(Image.open(out)).astype(int), golden["fuse/out_saved_uint8"][0, 0].astype(int)
    ref = golden["fuse/out"][0, 0]
    diff = np.abs(mine - official)
    near_integer = np.abs(ref - np.round(ref)) <= 0.02
    assert diff.max() <= 1 and np.all(near_integer[diff > 0]), (diff.max(), int((diff > 0).sum()))


def test_converter_refuses_wrong_order_other_models_bad_kernels_and_missing_keys(rule_weights):
    ae_ir, ae_vi, fusion = (rule_weights[k] for k in ("ae_ir", "ae_vi", "trans"))
    with pytest.raises(ConversionError, match=r"#1: given as the infrared auto-encoder .* holds the fusion network"):
        convert.to_flax("crossfuse", [fusion, ae_vi, ae_ir])
    with pytest.raises(ConversionError, match="three state dicts"):
        convert.to_flax("crossfuse", [ae_ir, ae_vi])
    with pytest.raises(ConversionError, match="not a CrossFuse state dict"):
        convert.to_flax("crossfuse", [ae_ir, ae_vi, {"ir_conv.conv1.weight": np.zeros((48, 1, 3, 3))}])
    bad = dict(fusion, **{"decoder_fusion.weight.conv_de.weight": np.full((128, 128, 3, 3), 0.2, np.float32)})
    with pytest.raises(ConversionError, match=r"conv_de.weight .* should be all 1/9"):
        convert.to_flax("crossfuse", [ae_ir, ae_vi, bad])
    missing = {k: v for k, v in fusion.items() if not k.endswith("conv_last.conv2d.1.running_var")}
    with pytest.raises(ConversionError, match=r"lacks: \['decoder_fusion.conv_last.conv2d.1.running_var'\]"):
        convert.to_flax("crossfuse", [ae_ir, ae_vi, missing])


# ----------------------------------------------------------------------------------------------
# Beyond the official code: any batch, any size (tiny network, no ../shared needed)
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny():
    spec = models.get("crossfuse")
    module = spec.build(TINY)
    x = jnp.zeros((1, 32, 32, 1))
    variables = spec.init(module, jax.random.key(0), x, x)
    # Non-trivial BatchNorm statistics, so eval mode is not the identity.
    stats = jax.tree.map(lambda v: v + 0.1, variables["batch_stats"])
    return module, {**variables, "batch_stats": stats}


def test_a_batch_equals_separate_batch_1_runs_with_tiles(tiny):
    module, variables = tiny
    x = jax.random.uniform(jax.random.key(1), (2, 3, 70, 90, 1))  # 1/8 map 8x11: 2x3 tiles of 4
    batched = jax.jit(module.apply)(variables, x[0], x[1])
    alone = [jax.jit(module.apply)(variables, x[0, i:i + 1], x[1, i:i + 1]) for i in range(3)]
    np.testing.assert_allclose(batched, np.concatenate(alone), atol=1e-6)
    assert batched.shape == (3, 70, 90, 1) and 0 <= float(batched.min()) and float(batched.max()) < 1


def test_size_policy_minimum_16_and_official_tile_grids(tiny):
    module, variables = tiny
    ok = module.apply(variables, jnp.ones((1, 16, 21, 1)) * 0.5, jnp.linspace(0, 1, 16 * 21).reshape(1, 16, 21, 1))
    assert ok.shape == (1, 16, 21, 1) and np.isfinite(ok).all()
    with pytest.raises(ValueError, match="at least 16x16"):
        module.apply(variables, jnp.zeros((1, 15, 40, 1)), jnp.zeros((1, 15, 40, 1)))
    # Tile grids of the official forward at the full CrossFuse tile size (32 on the 1/8 map).
    full = models.get("crossfuse").build({**TINY, "tile": 32})
    for (h, w), tiles in {(480, 640): 6, (768, 1024): 12, (1024, 1280): 20, (141, 203): 1}.items():
        x = jax.ShapeDtypeStruct((1, h, w, 1), jnp.float32)
        _, inter = jax.eval_shape(lambda v, a: full.apply(v, a, a, mutable=["intermediates"]), variables, x)
        assert inter["intermediates"]["fusion"]["cross_atten_block"]["in_ir"][0].shape[0] == tiles, (h, w)


def test_batchnorm_trains_with_torch_momentum_and_unbiased_running_variance():
    x = jax.random.normal(jax.random.key(0), (2, 3, 5, 4)) * 3 + 1
    bn = BatchNorm()
    variables = bn.init(jax.random.key(0), x)
    y, updated = bn.apply(variables, x, use_running_average=False, mutable=["batch_stats"])
    flat = np.asarray(x).reshape(-1, 4)
    np.testing.assert_allclose(updated["batch_stats"]["mean"], 0.1 * flat.mean(0), rtol=1e-5)
    np.testing.assert_allclose(updated["batch_stats"]["var"], 0.9 + 0.1 * flat.var(0, ddof=1), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(y).reshape(-1, 4), (flat - flat.mean(0)) / np.sqrt(flat.var(0) + 1e-5),
                               atol=1e-5)


def _tiny_config(stage: str, **train_overrides):
    c = configs.load(f"crossfuse:{'autoencoder,' if stage == 'autoencoder' else ''}smoke")
    c.data.update(resize=32, synthetic_size=32, synthetic_pairs=8)
    c.train.update(dict(num_steps=1, batch_size=4, log_every=1, checkpoint_every=1, image_every=1000),
                   **train_overrides)
    return c


def test_two_stages_batch_stats_frozen_encoders_and_sharding(tmp_path):
    stage1, _ = train.train(_tiny_config("autoencoder"), str(tmp_path / "A"))
    config = _tiny_config("fusion")
    config.init_from = str(tmp_path / "A")
    four, metrics = train.train(config, str(tmp_path / "B"), mesh=train.sharding.make_mesh(jax.devices()[:4]))
    one, metrics1 = train.train(config, str(tmp_path / "B1"), mesh=train.sharding.make_mesh(jax.devices()[:1]))
    # Stage 2 starts from stage 1 and keeps both auto-encoders fixed.
    for m in ("ae_ir", "ae_vi"):
        for a, b in zip(jax.tree.leaves(jax.device_get(stage1["params"][m])), jax.tree.leaves(jax.device_get(four["params"][m]))):
            np.testing.assert_array_equal(a, b)
    # BatchNorm statistics moved, are in the checkpoint, and are global-batch statistics (4 devices == 1).
    saved, _ = checkpoint.load_variables(tmp_path / "B")
    start = traverse_util.flatten_dict(jax.device_get(stage1["batch_stats"]))
    four_stats = traverse_util.flatten_dict(jax.device_get(four["batch_stats"]))
    one_stats = traverse_util.flatten_dict(jax.device_get(one["batch_stats"]))
    for k, v in traverse_util.flatten_dict(saved["batch_stats"]).items():
        assert not np.allclose(v, start[k]), k
        np.testing.assert_array_equal(v, four_stats[k])
        np.testing.assert_allclose(four_stats[k], one_stats[k], rtol=1e-5, atol=1e-6, err_msg=str(k))
    np.testing.assert_allclose(metrics[0]["loss"], metrics1[0]["loss"], rtol=1e-5)
    # One Adam step moves each parameter by at most ~lr, whatever the rounding of its gradient.
    for a, b in zip(jax.tree.leaves(jax.device_get(four["params"])), jax.tree.leaves(jax.device_get(one["params"]))):
        np.testing.assert_allclose(a, b, atol=2 * config.train.learning_rate, rtol=0)
