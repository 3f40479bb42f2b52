"""DMFuse: "Diffusion model guided cross-attention learning network for infrared and visible
image fusion" (Qi, Zhang, Wang, CJIF 1(3), 2024), as the official code (Zhishe-Wang/DMFuse @ 6b763d6)
runs it.

A frozen SR3 diffusion UNet (stage ``ddpm``, trained as a denoiser) turns each image, noised at
t = 5, 50 and 100, into multi-level decoder features (Sec. 3.2): the six UNet calls (ir and vi
at three timesteps) run as **one** batch of 6B. Per level an encoder head (conv + ReLU + cSE +
sSE) reduces them to 32 channels, a shared criss-cross cross attention exchanges information
between the modalities (CAIM, Sec. 3.3), and a decoder with one shared pair of convolutions
fuses the five levels (Sec. 3.4) into tanh(.), used directly as a [0, 1] image. Inference pads
bottom/right to a multiple of 32 with white, as the official test loader; the noise comes from
an explicit rng, so a fixed key makes fusion deterministic. Loss (Sec. 3.5 as coded):
10 (1 - SSIM) + 16 texture + 14 intensity with batch-wide gradient weights.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxfuse import diffusion, losses
from jaxfuse.models.spec import ModelSpec, Stage
from jaxfuse.nn import CROSS_ATTENTION
from jaxfuse.nn.layers import Conv2d
from jaxfuse.nn.se import ChannelSpatialSE
from jaxfuse.nn.unet import SR3UNet

Dtype = Any


class ConvLayer(nn.Module):
    """DMFuse's ``ConvLayer``: reflect pad -> conv (``conv2d``) -> LeakyReLU(0.2) unless ``is_last``."""

    features: int
    kernel_size: int = 3
    is_last: bool = False
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        x = Conv2d(self.features, self.kernel_size, padding_mode="reflect", dtype=self.dtype, name="conv2d")(x)
        return x if self.is_last else nn.leaky_relu(x, 0.2)


class EncoderHead(nn.Module):
    """``Encoder``: ReLU(conv3x3) -> cSE + sSE (``ChannelSpatialSELayer``)."""

    features: int = 32
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        y = nn.relu(ConvLayer(self.features, 3, True, self.dtype, name="conv1")(x))
        return ChannelSpatialSE(2, self.dtype, name="ChannelSpatialSELayer")(y)


class OutputHead(nn.Module):
    """``Decoder1`` (``conv_t1``): 1x1 conv to one channel, tanh."""

    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        pre = ConvLayer(1, 1, True, self.dtype, name="conv1")(x).astype(jnp.float32)
        self.sow("intermediates", "dec.pre_tanh", pre)
        return jnp.tanh(pre)


def _up2(x):
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


class DMFuse(nn.Module):
    """(ir, vi) NHWC in [0, 1], one channel, and an rng -> fused (tanh range; the image is clip(., 0, 1))."""

    inner_channel: int = 32
    channel_mults: Sequence[int] = (1, 2, 4, 8, 8)
    res_blocks: int = 2
    attn_res: Sequence[int] = (16,)
    image_size: int = 256
    norm_groups: int = 32
    dropout: float = 0.2
    timesteps: Sequence[int] = (5, 50, 100)
    num_timesteps: int = 2000
    cosine_s: float = 8e-3
    head_features: int = 32
    cross_attention: str = "criss_cross"
    row_chunk: int = 0  # criss-cross query rows per chunk (0: all at once; exact either way)
    pad_multiple: int = 32
    pad_value: float = 1.0  # the official loader pads with 256 -> 255: white
    dtype: Dtype = jnp.float32

    def setup(self):
        mults = tuple(self.channel_mults)
        if mults[-1] != mults[-2]:
            raise ValueError(f"DMFuse shares en3 between the last two levels: channel_mults {mults} must end equal")
        self.unet = SR3UNet(3, 3, self.inner_channel, mults, self.res_blocks, tuple(self.attn_res),
                            self.image_size, self.norm_groups, self.dropout, self.dtype)
        self.en0, self.en1, self.en2, self.en3 = (EncoderHead(self.head_features, self.dtype) for _ in range(4))
        self.crossatten = CROSS_ATTENTION[self.cross_attention](row_chunk=self.row_chunk or None, dtype=self.dtype)
        self.conv_in1 = ConvLayer(2 * self.head_features, 3, dtype=self.dtype)
        self.conv_t4 = ConvLayer(2 * self.head_features, 3, dtype=self.dtype)
        self.conv_t1 = OutputHead(self.dtype)
        self.sap = diffusion.cosine_schedule(self.num_timesteps, self.cosine_s)["sqrt_alphas_cumprod_prev"]

    # ---- the frozen diffusion encoder ----
    def noise_draws(self, rng, batch: int, shape):
        """(gamma (6B,), eps (6B, H, W, 3)) for the calls ir t1..tk, vi t1..tk (each B samples)."""
        keys = jax.random.split(rng, 2 * len(self.timesteps) + 1)
        gammas = [diffusion.sample_gamma(k, self.sap, t, (batch,))
                  for k, t in zip(keys[:-1], 2 * tuple(self.timesteps))]
        return jnp.concatenate(gammas), jax.random.normal(keys[-1], (2 * len(self.timesteps) * batch,) + shape)

    def features(self, ir, vi, rng):
        """Per level (finest first) the ir and vi features, timesteps concatenated on channels."""
        n_t, b = len(self.timesteps), ir.shape[0]
        x0 = jnp.concatenate([ir] * n_t + [vi] * n_t) * 2.0 - 1.0
        x0 = jnp.broadcast_to(x0, x0.shape[:3] + (3,))  # grey replicated to the UNet's 3 channels
        gamma, noise = self.noise_draws(rng, b, x0.shape[1:])
        return self.features_from_noisy(diffusion.q_sample(x0, gamma, noise), gamma, b)

    def features_from_noisy(self, x_t, gamma, batch: int):
        n_t = len(self.timesteps)
        out = []
        for f in self.unet.features(x_t, gamma):
            f = f.reshape((2, n_t, batch) + f.shape[1:])
            out.append(tuple(jnp.concatenate(list(f[m]), axis=-1) for m in (0, 1)))
        return out

    # ---- the fusion head ----
    def fuse_features(self, levels):
        """[(ir_l, vi_l)] for l = 1..5 -> tanh output at level 1's size."""
        heads = (self.en0, self.en1, self.en2, self.en3, self.en3)
        fused_levels = []
        for level, ((ir_l, vi_l), head) in enumerate(zip(levels, heads), 1):
            e_ir, e_vi = head(ir_l), head(vi_l)
            c_ir, c_vi = self.crossatten(e_ir, e_vi), self.crossatten(e_vi, e_ir)
            for name, v in (("en.ir", e_ir), ("en.vi", e_vi), ("cross.ir", c_ir), ("cross.vi", c_vi)):
                self.sow("intermediates", f"{name}.L{level}", v)
            fused_levels.append(jnp.concatenate([c_ir, c_vi], axis=-1).astype(self.dtype))
        f = fused_levels[-1]
        for level in range(len(fused_levels) - 1, 0, -1):
            u = self.conv_in1(_up2(f))
            self.sow("intermediates", f"dec.up_conv_in1.f_{level}", u)
            f = self.conv_t4(jnp.concatenate([u, fused_levels[level - 1]], axis=-1))
            self.sow("intermediates", f"dec.f_{level}", f)
        return self.conv_t1(f)

    def __call__(self, ir, vi, rng):
        """The official test path: pad bottom/right to ``pad_multiple`` (white), fuse, crop back."""
        h, w = ir.shape[1:3]
        m = self.pad_multiple
        pad = ((0, 0), (0, -h % m), (0, -w % m), (0, 0))
        ir, vi = (jnp.pad(x, pad, constant_values=self.pad_value) for x in (ir, vi))
        return self.fuse_features(self.features(ir, vi, rng))[:, :h, :w]

    # ---- stage ddpm ----
    def ddpm_loss(self, x01, rng, train: bool = True):
        """The eps objective on [0, 1] images (grey replicated to 3 channels; RGB kept)."""
        x0 = jnp.broadcast_to(x01 * 2.0 - 1.0, x01.shape[:3] + (3,))
        return diffusion.eps_loss(lambda x_t, g: self.unet(x_t, g, train), x0, rng, self.sap)

    def init_all(self, ir, vi, rng):
        """Touches every variable: the fusion path and the UNet's full (noise-predicting) path."""
        m = self.pad_multiple
        return self(ir, vi, rng), self.unet(jnp.zeros((1, m, m, 3)), jnp.ones((1,)))


# ----------------------------------------------------------------------------------------------
# Loss (loss.py g_content_loss): every mean runs over the whole (global) batch
# ----------------------------------------------------------------------------------------------
def fusion_loss(fused, ir, vi, weights=(10.0, 16.0, 14.0), variant: str = "code"):
    """(total, terms): w_s (1 - SSIM) + w_t texture + w_i intensity.

    ``code`` (loss.py): SSIM weighted by the batch-mean Sobel magnitudes, intensity target
    max(ir, vi). ``paper`` (Eq. 12-15): SSIM weights 0.5 / 0.5, intensity target (ir + vi) / 2.
    """
    if variant not in ("code", "paper"):
        raise ValueError(f"loss variant must be 'code' or 'paper', got {variant!r}")
    if variant == "code":
        s_ir, s_vi = jnp.mean(losses.sobel_magnitude(ir)), jnp.mean(losses.sobel_magnitude(vi))
        w_ir = s_ir / (s_ir + s_vi)
        intensity = losses.max_intensity_loss(fused, ir, vi)
    else:
        w_ir = 0.5
        intensity = jnp.mean(jnp.abs(fused - (ir + vi) / 2))
    ssim = w_ir * losses.gaussian_ssim(ir, fused) + (1 - w_ir) * losses.gaussian_ssim(vi, fused)
    texture = losses.sobel_gradient_loss(fused, ir, vi)
    total = weights[0] * (1 - ssim) + weights[1] * texture + weights[2] * intensity
    return total, {"ssim": ssim, "loss_texture": texture, "loss_intensity": intensity}


def _loss_fn(module, config):
    weights, variant = tuple(config.loss.weights), config.loss.get("variant", "code")

    def ddpm(variables, batch, rng):
        k_loss, k_drop = jax.random.split(rng)
        loss = module.apply(variables, batch["image"], k_loss, method=DMFuse.ddpm_loss, rngs={"dropout": k_drop})
        return loss, ({}, {})

    def fusion(variables, batch, rng):
        feats = module.apply(variables, batch["ir"], batch["vi"], rng, method=DMFuse.features)
        fused = module.apply(variables, jax.lax.stop_gradient(feats), method=DMFuse.fuse_features)
        total, terms = fusion_loss(fused, batch["ir"], batch["vi"], weights, variant)
        return total, (terms, {})

    return {"ddpm": ddpm, "fusion": fusion}[config.stage]


def _init(module, rng, ir, vi):
    return dict(module.init(rng, ir, vi, rng, method=DMFuse.init_all))


def _predict(module, variables, ir, vi, rng):
    return module.apply(variables, ir, vi, rng)


def _round(fused):
    """The official ``cv2.imwrite`` of 255 * clip(f, 0, 1) as float32: round to nearest."""
    return jnp.round(jnp.clip(fused, 0.0, 1.0) * 255.0).astype(jnp.uint8)


SPEC = ModelSpec(
    name="dmfuse",
    build=lambda model_config, dtype="float32": DMFuse(**model_config, dtype=dtype),
    loss_fn=_loss_fn,
    stages={
        "ddpm": Stage("ddpm", freeze=("(en[0-3]|crossatten|conv_in1|conv_t4|conv_t1)/.*",), data="images"),
        "fusion": Stage("fusion", freeze=("unet/.*",), starts_from="ddpm"),
    },
    init=_init,
    predict=_predict,
    quantize=_round,
    converter="jaxfuse.convert.dmfuse",
    official="jaxfuse.official.dmfuse",
    required={"unet/": "this checkpoint has no diffusion UNet weights (the official ddpm_gen.pth is only on "
                       "Baidu Pan): convert with --torch FUSION,UNET, or train the ddpm stage "
                       "(configs/dmfuse.py:ddpm) and start the fusion stage from it (--config.init_from)"},
)
