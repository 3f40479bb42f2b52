"""RefineFuse: equation-level checks of SFIM / PSIM / FIM and the loss with hand-set weights, the
pinned parameter count, odd sizes and batches, the presets, one training step on :smoke."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from helpers import write_pair_folder
from jaxfuse import configs, losses, models, train
from jaxfuse.data import images, pipeline, sources
from jaxfuse.models import refinefuse
from jaxfuse.nn import global_attention
from jaxfuse.nn.layers import Conv2d
from jaxfuse.nn.spatial_channel import FIM, SFIM, PairedGroupedConv, SpatialAttentionMaps

SPEC = models.get("refinefuse")
TINY = configs.load("refinefuse:tiny").model.to_dict()


@pytest.fixture
def fast_compile():
    """XLA without most optimisations: these tests compile whole networks and run them once."""
    old = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", old)


def _rand(key, shape):
    return jax.random.uniform(jax.random.key(key), shape, jnp.float32)


def _zero(tree, prefix):
    """``tree`` with every parameter under the "a/b" ``prefix`` set to zero."""
    flat = traverse_util.flatten_dict(tree, sep="/")
    return traverse_util.unflatten_dict(
        {k: jnp.zeros_like(v) if k.startswith(prefix) else v for k, v in flat.items()}, sep="/")


def _param_count(model_config):
    x = jnp.zeros((1, 32, 32, 1))
    shapes = jax.eval_shape(lambda: SPEC.build(model_config).init(jax.random.key(0), x, x))
    return sum(a.size for a in jax.tree.leaves(shapes))


# ---- parameter counts ----
def test_default_parameter_count_is_pinned():
    assert _param_count(configs.load("refinefuse").model.to_dict()) == 2_035_853  # paper: 2.21 M


def test_ablation_presets_move_the_parameter_count_the_documented_way():
    count = {p: _param_count(configs.load(f"refinefuse{':' + p if p else ''}").model.to_dict())
             for p in ("", "t9_I", "t9_II", "t9_III", "t9_IV", "t9_V", "t10_A", "t10_B")}
    assert count["t9_II"] < count["t9_I"]  # SFIM's grouped conv is lighter than concat's 2C -> C conv
    assert count["t9_II"] < count["t9_III"] < count["t9_IV"]  # a second level, then PSIM on it
    assert count["t9_V"] == count[""] + 64 * 64  # FIM has no parameters; D2's 1x1 conv sees [D3, F_2]
    assert count["t10_A"] < count[""] < count["t10_B"]


# ---- SFIM (Eq. 1-2) ----
def test_sfim_with_a_zero_spatial_conv_weights_by_one_half():
    e_ir, e_vi = _rand(0, (2, 5, 6, 4)), _rand(1, (2, 5, 6, 4))
    sfim = SFIM()
    variables = _zero(sfim.init(jax.random.key(2), e_ir, e_vi), "params/spatial")
    out, sown = sfim.apply(variables, e_ir, e_vi, mutable="intermediates")
    np.testing.assert_array_equal(sown["intermediates"]["weights"][0], 0.5)
    grouped = {"params": variables["params"]["grouped"]}
    expected = jax.nn.relu(PairedGroupedConv().apply(grouped, 1.5 * e_ir, 1.5 * e_vi))  # E (+) E (x) 0.5
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_spatial_maps_pool_max_then_mean():
    x = _rand(3, (1, 4, 4, 3))
    maps = SpatialAttentionMaps(2)
    v = maps.init(jax.random.key(0), x)
    kernel = np.zeros((3, 3, 2, 2), np.float32)
    kernel[1, 1, 0, 0] = kernel[1, 1, 1, 1] = 1.0  # map 0 = max, map 1 = mean (centre taps)
    v = {"params": {"conv": {"kernel": jnp.asarray(kernel), "bias": jnp.zeros(2)}}}
    out = maps.apply(v, x)
    np.testing.assert_allclose(out[..., 0], jax.nn.sigmoid(x.max(-1)), rtol=1e-6)
    np.testing.assert_allclose(out[..., 1], jax.nn.sigmoid(x.mean(-1)), rtol=1e-6)


def test_paired_grouped_conv_fast_path_equals_lax_grouped_conv():
    ir, vi = _rand(4, (2, 7, 9, 5)), _rand(5, (2, 7, 9, 5))
    v = PairedGroupedConv().init(jax.random.key(6), ir, vi)
    fast = PairedGroupedConv(fast=True).apply(v, ir, vi)
    grouped = PairedGroupedConv(fast=False).apply(v, ir, vi)
    np.testing.assert_allclose(fast, grouped, atol=1e-6)


def test_eq2_output_channel_sees_only_its_own_pair():
    ir, vi = _rand(7, (1, 6, 6, 4)), _rand(8, (1, 6, 6, 4))
    conv = PairedGroupedConv()
    v = conv.init(jax.random.key(9), ir, vi)
    jac_ir = jax.jacobian(lambda a: conv.apply(v, a, vi))(ir)  # (1,6,6,4, 1,6,6,4)
    jac_vi = jax.jacobian(lambda b: conv.apply(v, ir, b))(vi)
    for jac in (jac_ir, jac_vi):
        per_channel = np.abs(np.asarray(jac)).sum(axis=(0, 1, 2, 4, 5, 6))  # (out c, in c)
        assert np.count_nonzero(per_channel - np.diag(np.diag(per_channel))) == 0
        assert np.all(np.diag(per_channel) > 0)


# ---- PSIM (Eq. 3-4) ----
def test_attention_rows_sum_to_one():
    q, k = _rand(10, (2, 12, 8)), _rand(11, (2, 12, 8))
    out = global_attention.attend(q, k, jnp.ones((2, 12, 8)), heads=2)
    np.testing.assert_allclose(out, 1.0, rtol=1e-6)


@pytest.mark.parametrize("variant", ["paper", "gefm"])
def test_psim_with_zero_keys_or_queries_averages_the_values(variant):
    f_ir, f_vi = _rand(12, (2, 8, 8, 4)), _rand(13, (2, 8, 8, 4))
    psim = global_attention.PSIM(variant=variant, grid=8)
    v = psim.init(jax.random.key(14), f_ir, f_vi)
    zeroed = "params/key" if variant == "paper" else "params/query"  # the softmax's keys
    v = _zero(v, zeroed)
    _, sown = psim.apply(v, f_ir, f_vi, mutable="intermediates")
    value = Conv2d(4, 3).apply({"params": v["params"]["value_ir"]}, f_ir)
    np.testing.assert_allclose(sown["intermediates"]["global_ir"][0],
                               jnp.broadcast_to(value.mean(axis=(1, 2), keepdims=True), value.shape), atol=1e-5)


def test_psim_grid_at_the_level_size_is_bit_equal_to_no_resampling():
    f_ir, f_vi = _rand(15, (1, 16, 16, 4)), _rand(16, (1, 16, 16, 4))
    v = global_attention.PSIM(grid=16).init(jax.random.key(17), f_ir, f_vi)
    grid = global_attention.PSIM(resample="grid", grid=16).apply(v, f_ir, f_vi)
    none = global_attention.PSIM(resample="none").apply(v, f_ir, f_vi)
    np.testing.assert_array_equal(grid, none)
    ratio = global_attention.PSIM(resample="ratio", ratio=4).apply(v, f_ir, f_vi)
    assert ratio.shape == grid.shape and np.all(np.isfinite(ratio))


def test_psim_none_on_a_large_level_is_refused_with_the_memory_estimate():
    x = jax.ShapeDtypeStruct((1, 96, 128, 4), jnp.float32)  # M3FD 1024x768 at level 4
    psim = global_attention.PSIM(resample="none", max_attention_gb=0.1)
    with pytest.raises(ValueError, match=r"12288 tokens: 1\.1 GiB .*psim_resample='grid'"):
        jax.eval_shape(lambda: psim.init(jax.random.key(0), x, x))


# ---- FIM (Eq. 5) ----
def test_fim_with_zero_deep_features_gates_shallow_by_one_half_plus_its_own_gate():
    shallow = _rand(18, (2, 6, 7, 4)) - 0.3
    out = FIM().apply({}, jnp.zeros((2, 3, 4, 4)), shallow)
    gate = jax.nn.sigmoid(shallow.mean(axis=(1, 2), keepdims=True))
    np.testing.assert_allclose(out, shallow * (0.5 + gate), rtol=1e-6)


# ---- loss (Eq. 6-11) ----
def _gaussian_variance_loop(x, size=9, sigma=1.5):
    g = np.exp(-(np.arange(size) - size // 2) ** 2 / (2 * sigma ** 2))
    g = np.outer(g / g.sum(), g / g.sum())
    p = size // 2
    xp = np.pad(x.astype(np.float64), p)
    out = np.zeros_like(x, np.float64)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            win = xp[i:i + size, j:j + size]
            out[i, j] = (g * win ** 2).sum() - (g * win).sum() ** 2
    return out


def test_contrast_map_matches_a_numpy_loop():
    x = np.random.default_rng(0).random((13, 11)).astype(np.float32)
    ours = losses.gaussian_local_variance(jnp.asarray(x)[None, :, :, None])[0, :, :, 0]
    np.testing.assert_allclose(ours, _gaussian_variance_loop(x), atol=1e-6)


def test_eq6_masks_hot_label_and_flat_overexposed_visible():
    ir = np.full((1, 24, 24, 1), 0.1, np.float32)
    vi = np.random.default_rng(1).random((1, 24, 24, 1)).astype(np.float32)
    ir[:, 2:8, 2:8] = 0.9  # a hot labelled square
    vi[:, 12:24, 12:24] = 1.0  # flat overexposed visible over flat dark infrared
    salient = np.zeros_like(ir)
    salient[:, 2:8, 2:8] = 1
    m_ir, m_vi = losses.salient_masks(jnp.asarray(ir), jnp.asarray(vi), jnp.asarray(salient))
    assert np.all(m_ir[:, 2:8, 2:8] == 1)
    assert np.all(m_vi[:, 17:24, 17:24] == 1)  # beyond the window's reach of the textured part
    np.testing.assert_array_equal(m_ir + m_vi, 1.0)


def test_intensity_loss_is_zero_on_its_target_and_texture_zero_for_f_equal_ir_over_black():
    ir, vi = _rand(19, (2, 16, 16, 1)), _rand(20, (2, 16, 16, 1))
    m_ir, m_vi = losses.salient_masks(ir, vi)
    target = m_ir * ir + m_vi * vi
    for norm in ("l1", "l2"):
        assert float(losses.mask_intensity_loss(target, ir, vi, m_ir, m_vi, norm)) == 0.0
    assert float(losses.sobel_direction_loss(ir, ir, jnp.zeros_like(ir))) == 0.0


def test_loss_variants_against_numpy():
    f, ir, vi = (np.asarray(_rand(k, (2, 12, 10, 1))) for k in (21, 22, 23))
    m_ir, m_vi = (np.asarray(m) for m in losses.salient_masks(jnp.asarray(ir), jnp.asarray(vi)))

    def sobel(x, k):
        return np.asarray(losses.filter3x3(jnp.asarray(x), k))

    direction = sum(np.mean(np.abs(np.maximum(np.abs(sobel(ir, k)), np.abs(sobel(vi, k))) - np.abs(sobel(f, k))))
                    for k in (losses.SOBEL_X, losses.SOBEL_Y))
    l1 = np.mean(np.abs(m_ir * (f - ir))) + np.mean(np.abs(m_vi * (f - vi)))
    l2 = np.mean((m_ir * (f - ir)) ** 2) + np.mean((m_vi * (f - vi)) ** 2)
    expected = {
        ("mask", "l1", 1.0): 5 * l1 + direction,
        ("mask", "l2", 1.0): 5 * l2 + direction,
        ("plain", "l1", 1.0): 5 * (np.mean(np.abs(f - ir)) + np.mean(np.abs(f - vi))) + direction,
        ("max", "l1", 1.0): 5 * np.mean(np.abs(f - np.maximum(ir, vi))) + direction,
        ("mask", "l1", 0.0): 5 * l1,
    }
    for (intensity, norm, w_text), value in expected.items():
        total, _ = refinefuse.fusion_loss(jnp.asarray(f), jnp.asarray(ir), jnp.asarray(vi), intensity=intensity,
                                          norm=norm, texture_weight=w_text)
        np.testing.assert_allclose(float(total), value, rtol=1e-5, err_msg=f"{intensity}/{norm}/{w_text}")
    total, terms = refinefuse.fusion_loss(jnp.asarray(f), jnp.asarray(ir), jnp.asarray(vi), texture="sum")
    np.testing.assert_allclose(float(terms["loss_texture"]),
                               float(losses.sobel_gradient_loss(jnp.asarray(f), jnp.asarray(ir), jnp.asarray(vi))))


def test_salient_classes_from_labels():
    label = jnp.asarray([[0, 1, 2, 3, 4, 8]], jnp.uint8).reshape(1, 1, 6, 1)
    np.testing.assert_array_equal(refinefuse.salient_from_labels(label, (1, 2, 3))[0, 0, :, 0], [0, 1, 1, 1, 0, 0])
    np.testing.assert_array_equal(refinefuse.salient_from_labels(label, "nonzero")[0, 0, :, 0], [0, 1, 1, 1, 1, 1])


# ---- any size, any batch, both dtypes ----
@pytest.mark.parametrize("batch,height,width", [(1, 7, 9), (3, 33, 257)])
def test_tiny_model_at_odd_sizes_gives_the_input_size_in_unit_range(batch, height, width, fast_compile):
    module = SPEC.build(TINY)
    ir, vi = _rand(24, (batch, height, width, 1)), _rand(25, (batch, height, width, 1))
    variables = module.init(jax.random.key(0), ir, vi)
    out = jax.jit(module.apply)(variables, ir, vi)
    assert out.shape == (batch, height, width, 1) and out.dtype == jnp.float32
    assert np.all(np.isfinite(out)) and float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    out_bf16 = jax.jit(SPEC.build(TINY, "bfloat16").apply)(variables, ir, vi)
    assert np.all(np.isfinite(out_bf16)) and out_bf16.shape == out.shape


def test_module_names_are_stable_for_capture_intermediates():
    module = SPEC.build(TINY)
    x = _rand(26, (1, 16, 16, 1))
    variables = module.init(jax.random.key(0), x, x)
    assert set(variables["params"]) == {"enc_ir", "enc_vi", "sfim_1", "sfim_2", "psim_3", "psim_4",
                                        "dec_4", "dec_3", "dec_2", "dec_1"}
    _, sown = module.apply(variables, x, x, capture_intermediates=True, mutable="intermediates")
    assert {"sfim_1", "psim_4", "fim", "dec_2"} <= set(sown["intermediates"])
    assert sown["intermediates"]["fim"]["__call__"][0].shape == (1, 8, 8, 8)


# ---- training ----
def test_smoke_preset_trains_with_contrast_only_masks(tmp_path, caplog, fast_compile):
    config = configs.load("refinefuse:smoke")
    config.train.update(num_steps=3, checkpoint_every=100, image_every=100)
    state, metrics = train.train(config, str(tmp_path))
    assert int(state["step"]) == 3 and all(np.isfinite(m["loss"]) for m in metrics)
    assert "contrast-only masks" in caplog.text


# ---- salient planes through the data pipeline ----
def _labelled_folder(root, sizes=((40, 48), (44, 40)), label_size=None, bad_class=False):
    """ir = 20 * label (so a crop of one can be checked against the other), labels/ beside ir/ and vi/."""
    from PIL import Image

    write_pair_folder(root, sizes)
    (root / "labels").mkdir()
    rng = np.random.default_rng(3)
    for i, (h, w) in enumerate(sizes):
        label = rng.integers(0, 9, (h, w)).astype(np.uint8)
        if bad_class and i == 1:
            label[0, 0] = 12
        Image.fromarray(20 * label).save(root / "ir" / f"{i:02d}.png")
        lh, lw = label_size or (h, w)
        Image.fromarray(np.resize(label, (lh, lw))).save(root / "labels" / f"{i:02d}.png")
    return root


def test_labels_travel_with_the_pair_through_crop_flips_and_rot90(tmp_path):
    source = sources.make_source(f"folder:{_labelled_folder(tmp_path)}", min_size=16, salient="labels")
    dataset = pipeline.train_dataset(source, batch_size=2, patch=16, margin=0, flips=True, rot90=True, seed=1)
    it = iter(dataset)
    for _ in range(4):
        batch = next(it)
        assert batch["label"].shape == (2, 16, 16, 1) and batch["label"].dtype == np.uint8
        np.testing.assert_array_equal(np.round(batch["ir"] * 255), 20 * batch["label"].astype(np.float32))
    again = next(iter(pipeline.train_dataset(source, batch_size=2, patch=16, margin=0, flips=True, rot90=True,
                                             seed=1)))
    first = next(iter(dataset))
    np.testing.assert_array_equal(again["label"], first["label"])  # deterministic in (seed, index)


def test_masks_folder_gives_a_binary_salient_plane(tmp_path):
    from PIL import Image

    root = write_pair_folder(tmp_path, [(20, 24)])
    (root / "mask").mkdir()  # PSFusion's layout
    mask = np.zeros((20, 24), np.uint8)
    mask[5:10, 6:12] = 255
    Image.fromarray(mask).save(root / "mask" / "00.png")
    item = sources.make_source(f"folder:{root}", salient="masks")[0]
    np.testing.assert_array_equal(item["salient"][..., 0], mask > 0)


def test_yolo_boxes_fill_msrs_class_ids(shared):
    source = sources.make_source(f"folder:{shared / 'data' / 'msrs_train'}", salient="boxes")
    label = source[0]["label"][..., 0]  # 00556D: two cars, one person
    assert label.shape == (480, 640) and set(np.unique(label)) == {0, 1, 2}
    assert label[int(0.504167 * 480), int(0.584375 * 640)] == 2  # the person's centre


@pytest.mark.parametrize("problem,message", [
    ("missing", r"1 pair\(s\) have no file in .*labels: 01.png"),
    ("size", r"labels/00.png: 40x30 but the pair 00.png is 48x40"),
    ("class", r"labels/01.png: class id 12 outside 0-8"),
])
def test_bad_labels_are_named(tmp_path, problem, message):
    root = _labelled_folder(tmp_path, label_size=(30, 40) if problem == "size" else None,
                            bad_class=problem == "class")
    if problem == "missing":
        (root / "labels" / "01.png").unlink()
    with pytest.raises(images.ImageError, match=message):
        source = sources.make_source(f"folder:{root}", salient="labels")
        source[1]


def test_tfds_labels_are_checked_per_item():
    class FakeTfds:
        drop, pairs = (), None

        def __len__(self):
            return 1

        def __getitem__(self, i):
            return {"ir": np.zeros((4, 5, 1), np.uint8), "vi": np.zeros((4, 5, 3), np.uint8), "name": "a.png",
                    "label": np.zeros((0, 0), np.uint8)}

    with pytest.raises(images.ImageError, match="pair a.png: its label is missing"):
        sources.SalientPlanes(FakeTfds(), "labels", None)[0]
    with pytest.raises(ValueError, match="needs a folder source"):
        sources.SalientPlanes(FakeTfds(), "boxes", None)
    with pytest.raises(ValueError, match="has no labels, masks or boxes"):
        sources.make_source("synthetic", salient="labels")


def test_loss_takes_salient_classes_from_the_label_plane():
    ir, vi, f = (_rand(k, (1, 16, 16, 1)) for k in (30, 31, 32))
    label = jnp.zeros((1, 16, 16, 1), jnp.uint8).at[:, 4:12, 4:12].set(2)
    batch = {"ir": ir, "vi": vi, "label": label}
    with_person = refinefuse.fusion_loss(f, ir, vi, refinefuse.batch_salient(batch, (1, 2, 3)))[0]
    with_cars_only = refinefuse.fusion_loss(f, ir, vi, refinefuse.batch_salient(batch, (1,)))[0]
    contrast_only = refinefuse.fusion_loss(f, ir, vi, None)[0]
    assert float(with_cars_only) == float(contrast_only) != float(with_person)


# ---- SGD with warm-up and poly decay (C12) ----
def test_sgd_schedule_warms_up_exponentially_then_decays_to_zero():
    t = configs.load("refinefuse").train
    schedule = train.make_schedule(t, 135, num_steps=40_500)
    np.testing.assert_allclose([float(schedule(s)) for s in (0, 500, 1000)], [1e-5, 1e-4, 1e-3], rtol=1e-5)
    np.testing.assert_allclose(float(schedule(1001)), 1e-3 * (1 - 1 / 39_500) ** 0.9, rtol=1e-5)
    assert float(schedule(40_500)) == 0.0
    t.update(warmup_steps=0, poly_power=0.0)
    assert float(train.make_schedule(t, 135, 100)(99)) == pytest.approx(1e-3)  # the constant option


def test_sgd_step_is_torch_sgd_with_momentum_and_l2_weight_decay():
    t = configs.load("refinefuse").train
    lrs = (0.1, 0.05)
    tx = train.make_optimizer(t, lambda step: jnp.asarray(lrs)[step], {"w": jnp.ones(3)}, ())
    p0 = jnp.asarray([1.0, -2.0, 3.0])
    state = tx.init({"w": p0})
    g0 = p0 + t.weight_decay * p0  # d/dw of |w|^2 / 2, plus L2
    updates, state = tx.update({"w": p0}, state, {"w": p0})
    p1 = p0 - lrs[0] * g0
    np.testing.assert_allclose(p0 + updates["w"], p1, rtol=1e-6)
    updates, state = tx.update({"w": p1}, state, {"w": p1})
    np.testing.assert_allclose(p1 + updates["w"], p1 - lrs[1] * (t.momentum * g0 + p1 + t.weight_decay * p1),
                               rtol=1e-6)


# ---- counting (bench --count) ----
def test_count_gives_thop_conv_macs_and_xla_flops_of_the_default():
    from jaxfuse import bench

    record, per_module = bench.count("refinefuse", configs.load("refinefuse"), 256, 256)
    assert record["params"] == 2_035_853
    assert record["conv_macs"] == 13_626_048_512  # paper (thop): 12.73 G
    assert per_module["sfim_1"] == 256 * 256 * (64 * 2 * 9 + 2 * 2 * 9)  # grouped conv counts in / groups = 2
    assert record["xla_flops"] > 2 * record["conv_macs"]  # XLA counts a MAC as 2 flops, and the attention


# ---- every preset and option: one gradient step on the tiny widths ----
MODEL_PRESETS = ("t9_I", "t9_II", "t9_III", "t9_IV", "t9_V", "t10_A", "t10_B")
OPTIONS = (dict(psim_variant="gefm", psim_heads=2, psim_scaled=True, psim_resample="ratio"),
           dict(fim_spatial=True, skip="add", align_corners=True, output="tanh", sfim_residual=False))


def _gradient_step(config, run: bool):
    """(loss, grads) of one step of ``config`` on a 2 x 16 x 16 batch; shapes only unless ``run``."""
    module = SPEC.build(config.model.to_dict())
    batch = {"ir": _rand(40, (2, 16, 16, 1)), "vi": _rand(41, (2, 16, 16, 1))}
    loss_fn = SPEC.loss_fn(module, config)

    def step():
        variables = SPEC.init(module, jax.random.key(0), batch["ir"][:1], batch["vi"][:1])
        (loss, _), grads = jax.value_and_grad(lambda p: loss_fn({"params": p}, batch, None), has_aux=True)(
            variables["params"])
        return loss, grads

    return step() if run else jax.eval_shape(step)


@pytest.mark.parametrize("preset", MODEL_PRESETS)
def test_every_model_preset_traces_a_gradient_step(preset):
    loss, grads = _gradient_step(configs.load(f"refinefuse:{preset},tiny"), run=False)
    assert loss.shape == () and jax.tree.leaves(grads)


@pytest.mark.parametrize("options", OPTIONS)
def test_every_model_option_takes_a_gradient_step(options):
    """The second option set runs (eager: cheaper here than a compile); the first, whose blocks
    have their own numeric tests, is traced. (Under jax_disable_most_optimizations XLA CPU gave NaN
    gradients below fim_spatial's gate, which neither eager nor optimised jit shows.)"""
    config = configs.load("refinefuse:tiny")
    config.model.update(options)
    run = "fim_spatial" in options
    loss, grads = _gradient_step(config, run=run)
    assert loss.shape == () and jax.tree.leaves(grads)
    if run:
        assert np.isfinite(float(loss)) and all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))


@pytest.mark.parametrize("preset", ["t8_A", "t8_B", "t8_C"])
def test_every_loss_preset_gives_a_finite_loss(preset):
    loss = configs.load(f"refinefuse:{preset}").loss.to_dict()
    loss.pop("salient_classes")
    f, ir, vi = (_rand(k, (2, 16, 16, 1)) for k in (42, 43, 44))
    total, terms = refinefuse.fusion_loss(f, ir, vi, **loss)
    assert np.isfinite(float(total)) and (float(terms["loss_texture"]) > 0)
    assert preset != "t8_C" or float(total) == pytest.approx(5 * float(terms["loss_intensity"]))


@pytest.mark.parametrize("line,message", [("7 0.5 0.5 0.2 0.2", r"00.txt:1: class id 7 outside 0-2"),
                                          ("2 0.5 0.5", r"00.txt:1: expected 'class cx cy w h'")])
def test_bad_yolo_boxes_are_named(tmp_path, line, message):
    root = write_pair_folder(tmp_path, [(20, 24)])
    (root / "det_labels" / "ir").mkdir(parents=True)
    (root / "det_labels" / "ir" / "00.txt").write_text(line + "\n")
    with pytest.raises(images.ImageError, match=message):
        sources.make_source(f"folder:{root}", salient="boxes")[0]
