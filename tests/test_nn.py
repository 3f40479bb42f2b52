"""Block shapes and invariants (no ../shared needed)."""

import os
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxfuse.nn import layers, restormer, se, source_attention


def _apply(module, *xs, seed=0):
    params = module.init(jax.random.key(seed), *xs)
    return module.apply(params, *xs), params


def _np_corr(x, k, mode):
    """Reference cross-correlation of (H, W) with (3, 3), NumPy padding mode."""
    xp = np.pad(x, 1, mode=mode)
    return sum(k[i, j] * xp[i:i + x.shape[0], j:j + x.shape[1]] for i in range(3) for j in range(3))


@pytest.mark.parametrize("mode,np_mode", [("zeros", "constant"), ("reflect", "reflect")])
def test_conv_padding_matches_numpy(mode, np_mode):
    x = np.random.default_rng(0).random((1, 7, 5, 1), np.float32)
    y, params = _apply(layers.Conv2d(1, 3, padding_mode=mode, use_bias=False), jnp.asarray(x))
    k = np.asarray(params["params"]["kernel"])[:, :, 0, 0]
    np.testing.assert_allclose(y[0, :, :, 0], _np_corr(x[0, :, :, 0], k, np_mode), atol=1e-6)


def test_depthwise_matches_grouped_conv():
    x = jax.random.normal(jax.random.key(1), (2, 9, 6, 4))
    y, params = _apply(layers.depthwise3x3(4), x)
    k = params["params"]["kernel"]
    ref = jax.lax.conv_general_dilated(x, k, (1, 1), ((1, 1), (1, 1)),
                                       dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=4)
    np.testing.assert_allclose(y, ref, atol=1e-5)


def _grads(f, *args):
    return jax.jit(jax.grad(lambda *a: jnp.sum(jnp.sin(f(*a))), argnums=tuple(range(len(args)))))(*args)


@pytest.mark.parametrize("shape,k,pad", [((2, 19, 6, 5), 3, 1), ((1, 16, 9, 3), 3, 0), ((3, 9, 7, 2), 5, 2),
                                         ((2, 5, 4, 3), 3, 1)])
def test_depthwise_gradients_match_grouped_conv(shape, k, pad):
    # 19 and 9 rows: blocks of 8 rows plus a remainder; 5 rows: no whole block; pad 0, k = 5: the general rule.
    x = jax.random.normal(jax.random.key(1), shape)
    kernel = jax.random.normal(jax.random.key(2), (k, k, shape[-1]))

    def grouped(x, kernel):
        return jax.lax.conv_general_dilated(x, kernel[:, :, None, :], (1, 1), ((pad, pad), (pad, pad)),
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                            feature_group_count=shape[-1], precision="highest")

    ours = _grads(lambda x, kernel: layers._depthwise(x, kernel, pad), x, kernel)
    for a, b in zip(ours, _grads(grouped, x, kernel)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_pointwise_depthwise_pads_the_input_with_the_same_numbers():
    x = jax.random.normal(jax.random.key(4), (2, 7, 5, 3))

    class Padded(nn.Module):
        @nn.compact
        def __call__(self, x):
            return layers.pointwise_depthwise3x3(x, 6, ("a", "b"))

    class Plain(nn.Module):
        @nn.compact
        def __call__(self, x):
            return layers.depthwise3x3(6, name="b")(layers.conv1x1(6, name="a")(x))

    y, params = _apply(Padded(), x)
    np.testing.assert_allclose(y, Plain().apply(params, x), rtol=1e-6, atol=1e-6)


def test_pointwise_gradients_match_autodiff():
    x = jax.random.normal(jax.random.key(1), (2, 5, 3, 6))
    kernel = jax.random.normal(jax.random.key(2), (6, 4))
    for a, b in zip(_grads(layers.pointwise, x, kernel),
                    _grads(lambda x, kernel: jnp.matmul(x, kernel, precision="highest"), x, kernel)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_conv_default_init_is_torch_uniform():
    x = jnp.zeros((1, 4, 4, 8))
    _, params = _apply(layers.Conv2d(64, 3), x)
    bound = 1 / np.sqrt(8 * 9)
    assert np.abs(params["params"]["kernel"]).max() <= bound
    assert np.abs(params["params"]["bias"]).max() <= bound
    assert np.abs(params["params"]["kernel"]).max() > 0.8 * bound


def test_prelu_single_slope():
    y, params = _apply(layers.PReLU(), jnp.array([-2.0, 0.0, 3.0]))
    assert params["params"]["slope"].shape == ()
    np.testing.assert_allclose(y, [-0.5, 0.0, 3.0])


def test_se_shapes_and_gate_range():
    x = jax.random.normal(jax.random.key(0), (2, 5, 5, 48))
    y, params = _apply(se.SqueezeExcite(), x)
    assert params["params"]["fc1"]["kernel"].shape == (48, 3)
    ratio = np.asarray(y / x)
    assert np.all((ratio > 0) & (ratio < 1))  # a sigmoid gate per (sample, channel)


@pytest.mark.parametrize("block", [se.ResSE(8), se.CBSM(8)])
def test_se_blocks_shapes(block):
    y, _ = _apply(block, jnp.ones((2, 7, 9, 1)))
    assert y.shape == (2, 7, 9, 8)


def test_channel_layernorm_normalises_over_channels():
    x = jax.random.normal(jax.random.key(0), (1, 3, 3, 16)) * 5 + 2
    y, _ = _apply(restormer.ChannelLayerNorm(), x)
    np.testing.assert_allclose(y.mean(-1), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(-1), 1, atol=1e-3)


def test_transposed_attention_is_channel_attention_over_whole_image():
    rng = jax.random.split(jax.random.key(0), 3)
    q, k, v = (jax.random.normal(r, (1, 6, 5, 8)) for r in rng)
    tau = jnp.ones(2)
    out = restormer.transposed_attention(q, k, v, tau, heads=2)
    assert out.shape == (1, 6, 5, 8)
    # Each output channel is a convex combination of its head's value channels.
    v_flat = np.asarray(v).reshape(30, 2, 4)
    out_flat = np.asarray(out).reshape(30, 2, 4)
    weights = np.linalg.lstsq(v_flat[:, 0], out_flat[:, 0], rcond=None)[0]
    np.testing.assert_allclose(weights.sum(0), 1, atol=1e-4)
    # Every output pixel depends on every input pixel (through the L2 norms over H*W).
    k2 = k.at[0, 5, 4].add(1.0)
    changed = np.abs(restormer.transposed_attention(q, k2, v, tau, 2) - out)[0, 0, 0]
    assert changed.max() > 0


def _attention_per_head(q, k, v, tau, heads):
    """MDTA as the official code writes it: per head, F.normalize over pixels, q k^T, softmax, @ v."""
    b, h, w, c = q.shape
    split = lambda t: t.reshape(b, h * w, heads, c // heads).transpose(0, 2, 3, 1)  # (B, heads, d, N)
    normalize = lambda t: t / jnp.maximum(jnp.linalg.norm(t, axis=-1, keepdims=True), 1e-12)
    logits = jnp.einsum("bhin,bhjn->bhij", normalize(split(q)), normalize(split(k)), precision="highest")
    attn = jax.nn.softmax(logits * tau[None, :, None, None], -1)
    out = jnp.einsum("bhij,bhjn->bhin", attn, split(v), precision="highest")
    return out.transpose(0, 3, 1, 2).reshape(b, h, w, c)


def test_transposed_attention_and_its_gradients_match_per_head_form():
    rng = jax.random.split(jax.random.key(3), 4)
    q, k, v = (jax.random.normal(r, (2, 7, 5, 12)) for r in rng[:3])
    tau = jax.random.uniform(rng[3], (3,), minval=0.5, maxval=2.0)
    np.testing.assert_allclose(restormer.transposed_attention(q, k, v, tau, 3),
                               _attention_per_head(q, k, v, tau, 3), rtol=1e-5, atol=1e-6)
    ours = _grads(lambda *a: restormer.transposed_attention(*a, 3), q, k, v, tau)
    for a, b in zip(ours, _grads(lambda *a: _attention_per_head(*a, 3), q, k, v, tau)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_mdta_gdfn_and_blocks_shapes():
    x = jax.random.normal(jax.random.key(0), (2, 6, 7, 16))
    y, params = _apply(restormer.RestormerBlock(heads=4), x)
    assert y.shape == x.shape
    attn = params["params"]["attn"]
    assert attn["temperature"].shape == (4,)
    assert attn["qkv1"]["kernel"].shape == (1, 1, 16, 48) and "bias" not in attn["qkv1"]
    assert attn["qkv2"]["kernel"].shape == (3, 3, 1, 48)
    assert params["params"]["mlp"]["project_in"]["kernel"].shape == (1, 1, 16, 32)  # expansion 1
    block = restormer.RestormerBlock(heads=4, attention=source_attention.SourceCrossAttention)
    y, params = _apply(block, x, jnp.ones((2, 6, 7, 16)))
    assert y.shape == x.shape
    assert params["params"]["attn"]["qkv1"]["kernel"].shape == (1, 1, 16, 32)  # only k|v projected


@pytest.mark.parametrize("env, want", [
    ({}, "--xla_cpu_experimental_ynn_fusion_type= --xla_cpu_experimental_onednn_custom_call=true"),
    ({"XLA_FLAGS": "--xla_cpu_experimental_ynn_fusion_type=individual_dot"},  # a user's choice is kept
     "--xla_cpu_experimental_ynn_fusion_type=individual_dot --xla_cpu_experimental_onednn_custom_call=true"),
    ({"JAXFUSE_XLA_DEFAULTS": "0", "XLA_FLAGS": "--foo"}, "--foo"),
])
def test_xla_cpu_defaults_are_set_before_jax_starts(env, want):
    base = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAXFUSE_XLA_DEFAULTS")}
    out = subprocess.run([sys.executable, "-c", "import os, jaxfuse; print(os.environ.get('XLA_FLAGS', ''))"],
                         env={**base, **env}, capture_output=True, text=True, check=True).stdout.strip()
    assert out == want
