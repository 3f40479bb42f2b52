"""DMFuse: parity with the official code (../shared/reference/dmfuse), losses, converter, both stages.

Tolerances from that folder's README (Sec. 8; float32, highest matmul precision): the small
UNet rel <= 1e-4 per tensor; the fusion head from the stored features rel <= 1e-5 per tensor
(summarised arrays: atol = 1e-5 * the max over their windows), ``fused`` abs <= 2e-5;
criss-cross rel <= 1e-5; losses rel <= 1e-5 (SSIM abs <= 2e-5).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import require_shared
from helpers import write_pair_folder
from jaxfuse import configs, convert, diffusion, models, train
from jaxfuse.convert import ConversionError, parity
from jaxfuse.convert.dmfuse import golden_levels
from jaxfuse.data import sources
from jaxfuse.models import dmfuse
from jaxfuse.nn.criss_cross import CrissCrossAttention
from jaxfuse.nn.unet import noise_level_encoding


def _ref(name):
    return require_shared("reference", "dmfuse") / name


def _load(name):
    return np.load(_ref(name))


def nhwc(x):
    return np.transpose(np.asarray(x), (0, 2, 3, 1))


def nchw(x):
    return np.transpose(np.asarray(x), (0, 3, 1, 2))


def relative_error(golden, key, mine) -> float:
    """max|a - ref| / max|ref| (summaries: through mean, std and windows, over the windows' max)."""
    if key in golden.files:
        ref = golden[key]
        return float(np.abs(np.asarray(mine, np.float64) - ref).max() / np.abs(ref).max())
    scale = max(float(np.abs(golden[f"{key}/win_{w}"]).max()) for w in ("tl", "c", "br"))
    return parity.max_error(golden, key, mine) / scale


@pytest.fixture(scope="module")
def small_unet():
    return convert.to_flax("dmfuse", [_ref("unet_small_weights.npz")], norm_groups=8)


@pytest.fixture(scope="module")
def head():
    return convert.to_flax("dmfuse", [_ref("fusion_net_weights.npz")])


@pytest.mark.parametrize("case", ["golden_unet_small", "golden_unet_small_nonsquare"])
def test_small_unet_matches_every_recorded_feature(case, small_unet):
    golden = _load(case + ".npz")
    variables, config = small_unet
    errors = {k: relative_error(golden, k, a) for k, a in
              parity.converter("dmfuse").parity_arrays(variables, config, golden).items()}
    assert {f"fd_{i:02d}" for i in range(15)} | {f"fe_{i:02d}" for i in range(15)} | {"out"} <= set(errors)
    assert max(errors.values()) <= 1e-4, sorted(errors.items(), key=lambda kv: -kv[1])[:3]


def test_noise_embedding_q_sample_and_features_of_one_6b_call(small_unet):
    golden = _load("golden_unet_small.npz")
    variables, config = small_unet
    module = models.get("dmfuse").build(config)
    gamma = jnp.asarray(golden["gamma"])
    np.testing.assert_allclose(noise_level_encoding(gamma, 8), golden["pos_enc"][:, 0], rtol=1e-6, atol=1e-7)
    emb = module.apply(variables, gamma, method=lambda m, g: m.unet.embed(g))
    np.testing.assert_allclose(emb, golden["noise_emb"][:, 0], rtol=1e-5, atol=1e-6)
    x_noisy = diffusion.q_sample(nhwc(golden["x0"]), gamma, nhwc(golden["noise"]))
    np.testing.assert_array_equal(x_noisy, nhwc(golden["x_noisy"]))  # bit-exact, float32
    with jax.default_matmul_precision("highest"):
        feats = module.apply(variables, x_noisy, gamma, method=lambda m, x, g: m.unet.features(x, g))
    for f, i in zip(feats, (2, 5, 8, 11, 14)):
        ref = golden[f"fd_{i:02d}"]
        assert np.abs(nchw(f) - ref).max() / np.abs(ref).max() <= 1e-4, i


def test_cosine_schedule_and_noise_levels():
    golden = _load("golden_schedule_feats.npz")
    s = diffusion.cosine_schedule(2000, 8e-3)
    for key in ("betas", "alphas_cumprod", "sqrt_alphas_cumprod_prev"):
        np.testing.assert_allclose(s[key], golden[f"{key}_f64"], rtol=1e-13, atol=1e-15, err_msg=key)
    np.testing.assert_allclose(s["betas"].astype(np.float32), golden["buf_betas"], rtol=1e-6)
    for t in (5, 50, 100):
        lo, hi = s["sqrt_alphas_cumprod_prev"][t - 1], s["sqrt_alphas_cumprod_prev"][t]
        np.testing.assert_allclose([lo, hi], [golden[f"t{t:03d}.gamma_lo"], golden[f"t{t:03d}.gamma_hi"]], rtol=1e-15)
        np.testing.assert_allclose(lo + (hi - lo) * golden[f"t{t:03d}.u"], golden[f"t{t:03d}.gamma_f64"], rtol=1e-15)
    draws = diffusion.sample_gamma(jax.random.key(0), s["sqrt_alphas_cumprod_prev"], 50, (1000,))
    assert float(draws.min()) >= float(np.float32(s["sqrt_alphas_cumprod_prev"][50])) - 1e-7
    assert float(draws.max()) <= float(np.float32(s["sqrt_alphas_cumprod_prev"][49])) + 1e-7


def test_ddpm_loss_from_stored_noise(small_unet):
    golden = _load("golden_ddpm_loss.npz")
    variables, config = small_unet
    module = models.get("dmfuse").build(config)
    with jax.default_matmul_precision("highest"):
        eps_hat = module.apply(variables, nhwc(golden["x_noisy"]), jnp.asarray(golden["gamma"]),
                               method=lambda m, x, g: m.unet(x, g))
    ref = golden["x_recon"]
    assert np.abs(nchw(eps_hat) - ref).max() / np.abs(ref).max() <= 1e-4
    loss = float(jnp.mean(jnp.square(nhwc(golden["noise"]) - eps_hat)))
    np.testing.assert_allclose(loss, golden["loss_mean"], rtol=1e-5)
    # The objective itself: finite, one t per batch, dropout on in training.
    x0 = jnp.asarray(nhwc(golden["x0"]))
    vals = [module.apply(variables, (x0[..., :1] + 1) / 2, jax.random.key(i), method=dmfuse.DMFuse.ddpm_loss,
                         rngs={"dropout": jax.random.key(9)}) for i in range(2)]
    assert all(np.isfinite(v) for v in vals) and vals[0] != vals[1]


def test_fusion_head_with_the_official_weights_on_stored_features(head):
    golden = _load("golden_fusion_net.npz")
    variables, config = head
    arrays = parity.converter("dmfuse").parity_arrays(variables, config, golden)
    recorded = {k.rsplit("/", 1)[0] if "/" in k else k for k in golden.files}
    expected = {k for k in recorded if k.startswith(("en.", "cross.", "dec.")) or k == "fused"}
    assert expected <= set(arrays), expected - set(arrays)
    errors = {k: relative_error(golden, k, a) for k, a in arrays.items()}
    assert max(errors.values()) <= 1e-5, sorted(errors.items(), key=lambda kv: -kv[1])[:3]
    assert np.abs(arrays["fused"] - golden["fused"]).max() <= 2e-5
    png = np.asarray(dmfuse.SPEC.quantize(jnp.asarray(arrays["fused"])))[0, 0]
    assert np.abs(png.astype(int) - golden["fused_saved_png_u8"].astype(int)).max() <= 1


def test_fusion_head_non_square_batch_2(head):
    full, golden = _load("golden_fusion_net.npz"), _load("golden_fusion_net_nonsquare_b2.npz")
    levels = []
    for (ir, vi), s in zip(golden_levels(full), (1, 2, 4, 8, 16)):
        h, w = 32 // s, 48 // s
        levels.append(tuple(np.concatenate([x[:, :h, :w], x[:, -h:, -w:]]) for x in (ir, vi)))
    variables, config = head
    arrays = parity.converter("dmfuse").parity_arrays(variables, config, golden, levels=levels)
    errors = {k: relative_error(golden, k, a) for k, a in arrays.items()}
    assert "fused" in errors and max(errors.values()) <= 1e-5, sorted(errors.items(), key=lambda kv: -kv[1])[:3]


def test_criss_cross_unit_with_gamma_1_and_softmax_maps(head):
    golden, full = _load("golden_crossatten_unit.npz"), _load("golden_fusion_net.npz")
    variables, _ = head
    cc = CrissCrossAttention()
    params = variables["params"]["crossatten"]

    def run(x, y, gamma):
        p = {"params": {**params, "gamma": jnp.asarray(gamma, jnp.float32)}}
        with jax.default_matmul_precision("highest"):
            out_x, inter_x = cc.apply(p, x, y, mutable=["intermediates"])
            out_y, inter_y = cc.apply(p, y, x, mutable=["intermediates"])
        return out_x, out_y, inter_x["intermediates"]["attention"][0], inter_y["intermediates"]["attention"][0]

    def check(mine, ref):
        assert np.abs(np.asarray(mine) - ref).max() <= 1e-5 * np.abs(ref).max()

    for level in (3, 4, 5):
        out_x, out_y, _, _ = run(nhwc(full[f"en.ir.L{level}"]), nhwc(full[f"en.vi.L{level}"]), 1.0)
        check(nchw(out_x), golden[f"real.L{level}.gamma1.out_x"])
        check(nchw(out_y), golden[f"real.L{level}.gamma1.out_y"])
    x, y = nhwc(golden["synth.x"]), nhwc(golden["synth.y"])
    out_x, out_y, attn_x, attn_y = run(x, y, 1.0)
    check(nchw(out_x), golden["synth.gamma1.out_x"])
    check(nchw(out_y), golden["synth.gamma1.out_y"])
    check(attn_x, golden["synth.gamma1.softmax_yx"])  # queries y, keys x: feeds the x output
    check(attn_y, golden["synth.gamma1.softmax_xy"])
    out_x, out_y, _, _ = run(x, y, params["gamma"])
    check(nchw(out_x), golden["synth.official_gamma.out_x"])
    # Row chunks are exact.
    chunked = CrissCrossAttention(row_chunk=5).apply({"params": {**params, "gamma": 1.0}}, x, y)
    np.testing.assert_allclose(chunked, run(x, y, 1.0)[0], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("case", ["A", "B", "B.sample0_alone", "B.sample1_alone"])
def test_fusion_loss_matches_the_official_loss(case):
    golden = _load("golden_fusion_loss.npz")
    inputs = case.split(".")[0]
    ir, vi, fused = (nhwc(golden[f"{inputs}.{k}"]) for k in ("img_ir", "img_vi", "fused"))
    if "sample" in case:
        i = int(case[-7])
        ir, vi, fused = ir[i:i + 1], vi[i:i + 1], fused[i:i + 1]
    total, terms = dmfuse.fusion_loss(jnp.asarray(fused), jnp.asarray(ir), jnp.asarray(vi))
    np.testing.assert_allclose(total, golden[f"{case}.total"], rtol=1e-5)
    np.testing.assert_allclose(terms["ssim"], golden[f"{case}.ssim"], atol=2e-5)
    np.testing.assert_allclose(terms["loss_texture"], golden[f"{case}.texture"], rtol=1e-5)
    np.testing.assert_allclose(terms["loss_intensity"], golden[f"{case}.intensity"], rtol=1e-5)


def test_converter_and_fuse_refuse_what_they_cannot_use(tmp_path, head):
    from jaxfuse.convert.__main__ import write_checkpoint  # noqa: PLC0415
    from jaxfuse.fuse import Fuser  # noqa: PLC0415

    with pytest.raises(ConversionError, match=r"fusion-head file .* got: .*\(neither\)"):
        convert.to_flax("dmfuse", [_ref("fusion_net_weights.npz"), {"ir_conv.conv1.weight": np.zeros((4, 1, 3, 3))}])
    unet = dict(np.load(_ref("unet_small_weights.npz")))
    wrong = {f"denoise_fn.{k}": v for k, v in unet.items()} | {"betas": np.linspace(1e-4, 0.02, 2000, dtype=np.float32)}
    with pytest.raises(ConversionError, match="not the cosine schedule"):
        convert.to_flax("dmfuse", [wrong], norm_groups=8)
    variables, config = head
    assert "unet" not in variables["params"] and "conv_in2" not in variables["params"]  # dead keys dropped
    path = write_checkpoint("dmfuse", variables, config, tmp_path / "head_only")
    with pytest.raises(ValueError, match="no diffusion UNet weights"):
        Fuser.from_checkpoint(path)


def test_stage_data_kinds_are_checked(tmp_path):
    root = write_pair_folder(tmp_path / "pairs", [(40, 40)])
    with pytest.raises(ValueError, match="yields pairs, but this stage trains on images: use images:PATH"):
        sources.make_source(f"folder:{root}", data="images")
    with pytest.raises(ValueError, match="yields images, but this stage trains on pairs"):
        sources.make_source(f"images:{root}", data="pairs")
    assert len(sources.make_source(f"images:{root}", data="images")) == 2  # ir/ and vi/ images


def test_two_stages_then_deterministic_fusing_at_any_size(tmp_path):
    from jaxfuse.fuse import Fuser  # noqa: PLC0415

    one_device = train.sharding.make_mesh(jax.devices()[:1])
    first = configs.load("dmfuse:ddpm,smoke")
    first.train.update(num_steps=1, checkpoint_every=1)
    stage1, _ = train.train(first, str(tmp_path / "A"), mesh=one_device)
    second = configs.load("dmfuse:smoke")
    second.train.update(num_steps=1, checkpoint_every=1)
    second.init_from = str(tmp_path / "A")
    stage2, metrics = train.train(second, str(tmp_path / "B"), mesh=one_device)
    # The loss couples the batch (SSIM weights, means): on 2 devices it is still the global-batch loss.
    _, metrics2 = train.train(second, str(tmp_path / "B2"), mesh=train.sharding.make_mesh(jax.devices()[:2]))
    np.testing.assert_allclose(metrics2[0]["loss"], metrics[0]["loss"], rtol=1e-5)
    assert np.isfinite(metrics[0]["loss"])
    for a, b in zip(jax.tree.leaves(jax.device_get(stage1["params"]["unet"])),
                    jax.tree.leaves(jax.device_get(stage2["params"]["unet"]))):
        np.testing.assert_array_equal(a, b)  # the UNet is frozen in the fusion stage
    rng = np.random.default_rng(0)
    ir, vi = rng.integers(0, 256, (1, 37, 50, 1), np.uint8), rng.integers(0, 256, (1, 37, 50, 3), np.uint8)
    a, b = Fuser.from_checkpoint(tmp_path / "B")(ir, vi), Fuser.from_checkpoint(tmp_path / "B")(ir, vi)
    assert a.shape == (1, 37, 50, 3) and np.array_equal(a, b)  # same seed, same image
    module = models.get("dmfuse").build(second.model.to_dict())
    x = jnp.asarray(ir, jnp.float32) / 255
    apply = jax.jit(module.apply)  # one compile, not one per op (~20 s on a cold cache)
    draws = [apply(train.variables_of(stage2), x, x, jax.random.key(k)) for k in (0, 1)]
    assert draws[0].shape == (1, 37, 50, 1) and not np.allclose(draws[0], draws[1])  # another seed, another draw
