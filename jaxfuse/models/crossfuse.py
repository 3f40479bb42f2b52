"""CrossFuse: "A novel cross attention mechanism based infrared and visible image fusion approach"
(Li & Wu, Information Fusion 103, 2024), as the official code (hli1221/CrossFuse @ bb00cb4) runs it.

Two auto-encoders (Sec. 3.1: a 3x3 conv, then two dense blocks between max-pools; features at 1
and 1/8 resolution), the cross-attention mechanism (CAM, Sec. 3.2: self-attention, shifted
self-attention, re-softmax cross attention, Eq. 1-3) on independent 32x32 tiles of the 1/8 map,
and a decoder whose skips are mixed by fixed weights (Eq. 4-5), ending in a per-image min-max
stretch that is part of the network and of the stage-2 loss. Where the paper and the code
differ, this follows the code (see README, "CrossFuse"). Inputs are NHWC in [0, 1] (the official
auto-encoder divides its 0-255 input by 255 first; the losses work on the 0-255 scale).

Submodule names follow the official module names (``dense_blocks.0`` -> ``dense_blocks_0``), and
the recorded points of the reference goldens are ``sow``-ed into ``intermediates``.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxfuse import losses
from jaxfuse.models.spec import ModelSpec, Stage
from jaxfuse.nn import CROSS_ATTENTION, SELF_ATTENTION
from jaxfuse.nn.dense import DenseBlock, reflect_conv
from jaxfuse.nn.fusion_weights import deep_weights, shallow_weights
from jaxfuse.nn.layers import BatchNorm
from jaxfuse.nn.resoftmax_attention import CrossTransformer
from jaxfuse.nn.vit import TokenMapTransformer

Dtype = Any
MIN_SIZE = 16  # 1/8 map >= 2; below the official 136 px the tile padding reflects repeatedly


def max_pool2(x):
    return nn.max_pool(x, (2, 2), strides=(2, 2), padding="VALID")


def upsample2(x):
    """``nn.Upsample(scale_factor=2)``: nearest neighbour."""
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def repad_to(x, height: int, width: int):
    """``UpsampleReshape_eval``: reflect-pad to (height, width), floor(d/2) before, the rest after."""
    dh, dw = height - x.shape[1], width - x.shape[2]
    if dh == dw == 0:
        return x
    return jnp.pad(x, ((0, 0), (dh // 2, dh - dh // 2), (dw // 2, dw - dw // 2), (0, 0)), mode="reflect")


def stretch(y):
    """``utils.normalize_tensor``: (y - min) / (max - min + 1e-6) per image and channel, float32."""
    y = y.astype(jnp.float32)
    lo, hi = jnp.min(y, axis=(1, 2), keepdims=True), jnp.max(y, axis=(1, 2), keepdims=True)
    return (y - lo) / (hi - lo + 1e-6)


# ----------------------------------------------------------------------------------------------
# Stage 1: one auto-encoder per modality
# ----------------------------------------------------------------------------------------------
class Encoder(nn.Module):
    """``fea_encoder1``: c_sh = conv1(x); c_de = pool(dense2(pool(dense1(pool(c_sh)))))."""

    shallow: int = 32
    growth: int = 64
    deep: int = 128
    dense_layers: int = 3
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        c_sh = reflect_conv(self.shallow, dtype=self.dtype, name="conv1")(x.astype(self.dtype))
        h = max_pool2(c_sh)
        self.sow("intermediates", "enc.pool", h)
        h = DenseBlock(self.deep, self.growth, self.dense_layers, self.dtype, name="dense_blocks_0")(h)
        self.sow("intermediates", "enc.dense_blocks.0", h)
        h = max_pool2(h)
        self.sow("intermediates", "enc.dense_blocks.1", h)
        h = DenseBlock(self.deep, self.growth, self.dense_layers, self.dtype, name="dense_blocks_2")(h)
        self.sow("intermediates", "enc.dense_blocks.2", h)
        c_de = max_pool2(h)
        self.sow("intermediates", "c_de", c_de)
        return c_sh, c_de


class ReconDecoder(nn.Module):
    """``recon_decoder1`` (``Decoder_rec``): three conv + x2 stages, re-pad, + c_sh, 1x1 conv."""

    shallow: int = 32
    deep: int = 128
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, c_sh, c_de):
        o = reflect_conv(self.deep // 2, dtype=self.dtype, name="conv1")(c_de)
        self.sow("intermediates", "dec.conv1", o)
        o = reflect_conv(self.deep // 2, dtype=self.dtype, name="conv_block_0")(upsample2(o))
        self.sow("intermediates", "dec.conv_block.0", o)
        o = reflect_conv(self.shallow, dtype=self.dtype, name="conv_block_2")(upsample2(o))
        self.sow("intermediates", "dec.conv_block.2", o)
        o = repad_to(upsample2(o), c_sh.shape[1], c_sh.shape[2])
        self.sow("intermediates", "dec.shape_adjust", o)
        return reflect_conv(1, 1, dtype=self.dtype, name="conv_last")(o + c_sh).astype(jnp.float32)


class AutoEncoder(nn.Module):
    """``Auto_Encoder_single``: ``encode`` gives (c_sh, c_de); ``reconstruct`` the [0, 1] image."""

    shallow: int = 32
    growth: int = 64
    deep: int = 128
    dense_layers: int = 3
    dtype: Dtype = jnp.float32

    def setup(self):
        self.fea_encoder1 = Encoder(self.shallow, self.growth, self.deep, self.dense_layers, self.dtype)
        self.recon_decoder1 = ReconDecoder(self.shallow, self.deep, self.dtype)

    def encode(self, x):
        return self.fea_encoder1(x)

    def reconstruct(self, x):
        return self.recon_decoder1(*self.fea_encoder1(x))


# ----------------------------------------------------------------------------------------------
# Stage 2: the cross-attention mechanism on tiles, and the fusion decoder
# ----------------------------------------------------------------------------------------------
class SelfAttentionStage(nn.Module):
    """``self_atten_block{1,2}``: ``self_atten1`` on IR, ``self_atten2`` on VI (own weights)."""

    depth: int
    heads: int
    mlp_ratio: float
    patch: int
    shift: int
    attention: str
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, ir, vi):
        def branch(name):
            return TokenMapTransformer(self.depth, self.heads, self.mlp_ratio, self.patch, self.shift,
                                       SELF_ATTENTION[self.attention], self.dtype, name=name)

        return branch("self_atten1")(ir), branch("self_atten2")(vi)


class CrossAttentionStage(nn.Module):
    """``cross_atten_block``: c1 = q IR / kv VI (``cross_atten1``), c2 = q VI / kv IR."""

    heads: int
    mlp_ratio: float
    patch: int
    attention: str
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, ir, vi):
        def branch(name):
            return CrossTransformer(self.heads, self.mlp_ratio, self.patch, CROSS_ATTENTION[self.attention],
                                    self.dtype, name=name)

        return branch("cross_atten1")(vi, query=ir), branch("cross_atten2")(ir, query=vi)


class CrossAttentionMechanism(nn.Module):
    """The CAM (``cross_encoder``) on (T, tile, tile, C) tile pairs -> fused tiles c1 + c2."""

    heads: int = 16
    mlp_ratio: float = 4.0
    patch: int = 2
    self_depth: int = 1
    shift: int = 16
    self_attention: str = "mhsa"
    cross_attention: str = "resoftmax"
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, ir, vi):
        args = (self.self_depth, self.heads, self.mlp_ratio, self.patch)
        self.sow("intermediates", "in_ir", ir)
        self.sow("intermediates", "in_vi", vi)
        ir, vi = SelfAttentionStage(*args, 0, self.self_attention, self.dtype, name="self_atten_block1")(ir, vi)
        self.sow("intermediates", "ir_self", ir)
        self.sow("intermediates", "vi_self", vi)
        ir, vi = SelfAttentionStage(*args, self.shift, self.self_attention, self.dtype,
                                    name="self_atten_block2")(ir, vi)
        self.sow("intermediates", "ir_shift_self", ir)
        self.sow("intermediates", "vi_shift_self", vi)
        c1, c2 = CrossAttentionStage(self.heads, self.mlp_ratio, self.patch, self.cross_attention, self.dtype,
                                     name="cross_atten_block")(ir, vi)
        self.sow("intermediates", "cross_q_ir_kv_vi", c1)
        self.sow("intermediates", "cross_q_vi_kv_ir", c2)
        return c1 + c2


class ConvBN(nn.Module):
    """The fusion decoder's ``ConvLayer``: reflect pad -> conv -> BatchNorm, no activation."""

    features: int
    kernel_size: int = 3
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = reflect_conv(self.features, self.kernel_size, dtype=self.dtype, name="conv")(x)
        return BatchNorm(dtype=self.dtype, name="bn")(x, use_running_average=not train)


class FusionDecoder(nn.Module):
    """``decoder_fusion``: deep skip (Eq. 4), 4 ConvBN + x2 stages, re-pad, shallow skip (Eq. 5)."""

    deep: int = 128
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, ir_sh, vi_sh, ir_de, vi_de, c_f, train: bool = False):
        def sow(name, v):
            self.sow("intermediates", name, v)
            return v

        w_de_ir, w_de_vi = deep_weights(ir_de, vi_de)
        sow("w_de_ir", w_de_ir)
        sow("w_de_vi", w_de_vi)
        f32 = jnp.float32
        o = sow("conv1_input", c_f.astype(f32) + w_de_ir * ir_de.astype(f32) + w_de_vi * vi_de.astype(f32))
        o = sow("conv1_out", ConvBN(self.deep // 2, dtype=self.dtype, name="conv1")(o.astype(self.dtype), train))
        o = sow("conv_block.0", ConvBN(self.deep // 2, dtype=self.dtype, name="conv_block_0")(upsample2(o), train))
        o = sow("conv_block.2", ConvBN(self.deep // 4, dtype=self.dtype, name="conv_block_2")(upsample2(o), train))
        o = sow("conv_block.4", ConvBN(self.deep // 4, dtype=self.dtype, name="conv_block_4")(upsample2(o), train))
        o = sow("shape_adjust", repad_to(o, ir_sh.shape[1], ir_sh.shape[2]))
        w_sh_ir, w_sh_vi = shallow_weights(ir_sh, vi_sh)
        sow("w_sh_ir", w_sh_ir)
        sow("w_sh_vi", w_sh_vi)
        o = sow("conv_last_input", o.astype(f32) + 0.5 * w_sh_ir * ir_sh.astype(f32) + w_sh_vi * vi_sh.astype(f32))
        return sow("conv_last_out", ConvBN(1, 1, dtype=self.dtype, name="conv_last")(o.astype(self.dtype), train))


class FusionNet(nn.Module):
    """``Trans_FuseNet``: tile the 1/8 maps, CAM per tile, re-assemble, decode (unstretched y)."""

    deep: int = 128
    tile: int = 32
    heads: int = 16
    mlp_ratio: float = 4.0
    patch: int = 2
    self_depth: int = 1
    self_attention: str = "mhsa"
    cross_attention: str = "resoftmax"
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, ir_sh, vi_sh, ir_de, vi_de, train: bool = False):
        n, h8, w8, c = ir_de.shape
        t = self.tile
        rows, cols = -(-h8 // t), -(-w8 // t)

        def to_tiles(x):  # bottom/right reflect pad to the tile grid, raster-order tiles
            x = jnp.pad(x, ((0, 0), (0, rows * t - h8), (0, cols * t - w8), (0, 0)), mode="reflect")
            return x.reshape(n, rows, t, cols, t, c).transpose(0, 1, 3, 2, 4, 5).reshape(n * rows * cols, t, t, c)

        cam = CrossAttentionMechanism(self.heads, self.mlp_ratio, self.patch, self.self_depth, t // 2,
                                      self.self_attention, self.cross_attention, self.dtype, name="cross_atten_block")
        tiles = cam(to_tiles(ir_de), to_tiles(vi_de))
        c_f = tiles.reshape(n, rows, cols, t, t, c).transpose(0, 1, 3, 2, 4, 5).reshape(n, rows * t, cols * t, c)
        c_f = c_f[:, :h8, :w8]
        self.sow("intermediates", "x1_c_f", c_f)
        return FusionDecoder(self.deep, self.dtype, name="decoder_fusion")(ir_sh, vi_sh, ir_de, vi_de, c_f, train)


class CrossFuse(nn.Module):
    """(ir, vi) NHWC in [0, 1], one channel each -> fused in [0, 1) (min-max stretched per image)."""

    shallow: int = 32
    growth: int = 64
    deep: int = 128
    dense_layers: int = 3
    tile: int = 32
    patch: int = 2
    heads: int = 16
    mlp_ratio: float = 4.0
    self_depth: int = 1
    self_attention: str = "mhsa"
    cross_attention: str = "resoftmax"
    dtype: Dtype = jnp.float32

    def setup(self):
        if self.shallow * 4 != self.deep:
            raise ValueError(f"CrossFuse's decoder needs shallow = deep / 4 (got {self.shallow}, {self.deep})")
        if self.tile % (2 * self.patch):
            raise ValueError(f"tile {self.tile} must be a multiple of 2 * patch ({2 * self.patch}) for the shift")
        ae = dict(shallow=self.shallow, growth=self.growth, deep=self.deep, dense_layers=self.dense_layers,
                  dtype=self.dtype)
        self.ae_ir, self.ae_vi = AutoEncoder(**ae), AutoEncoder(**ae)
        self.fusion = FusionNet(self.deep, self.tile, self.heads, self.mlp_ratio, self.patch, self.self_depth,
                                self.self_attention, self.cross_attention, self.dtype)

    def encode(self, ir, vi):
        """((ir_sh, ir_de), (vi_sh, vi_de)) from the two encoders."""
        h, w = ir.shape[1:3]
        if min(h, w) < MIN_SIZE:
            raise ValueError(f"CrossFuse needs images of at least {MIN_SIZE}x{MIN_SIZE} pixels, got {w}x{h} (W x H)")
        return self.ae_ir.encode(ir), self.ae_vi.encode(vi)

    def fuse(self, features, train: bool = False):
        (ir_sh, ir_de), (vi_sh, vi_de) = features
        return stretch(self.fusion(ir_sh, vi_sh, ir_de, vi_de, train))

    def __call__(self, ir, vi, train: bool = False):
        return self.fuse(self.encode(ir, vi), train)

    def reconstruct(self, ir, vi):
        """Both auto-encoders' reconstructions, [0, 1] scale (stage 1)."""
        return self.ae_ir.reconstruct(ir), self.ae_vi.reconstruct(vi)

    def init_all(self, ir, vi):
        return self(ir, vi), self.reconstruct(ir, vi)


# ----------------------------------------------------------------------------------------------
# Losses (0-255 scale, as the official code: its coupled weight decay makes the scale matter)
# ----------------------------------------------------------------------------------------------
def autoencoder_loss(recon, x, weights=(1.0, 1e4)):
    """Stage 1 (Eq. 7 as coded): w0 * MSE + w1 * (1 - MS-SSIM), both on 0-255 images."""
    r, t = 255.0 * recon, 255.0 * x
    pixel = weights[0] * jnp.mean(jnp.square(r - t))
    ssim = weights[1] * (1.0 - losses.ms_ssim_pytorch_msssim(r, t))
    return pixel + ssim, pixel, ssim


def fusion_loss(fused, ir, vi, weights=(1.0, 10.0)):
    """Stage 2 (Eq. 8-12 as coded): w_pix * L_pix (max-mean mask) + w_grad * L_grad (Laplacian)."""
    f, a, b = 255.0 * fused, 255.0 * ir, 255.0 * vi
    pixel = weights[0] * losses.box_mask_pixel_loss(f, a, b)
    grad = weights[1] * losses.positive_laplacian_loss(f, a, b)
    return pixel + grad, pixel, grad


def _loss_fn(module, config):
    w = config.loss

    def autoencoder(variables, batch, rng):
        del rng
        r_ir, r_vi = module.apply(variables, batch["ir"], batch["vi"], method=CrossFuse.reconstruct)
        ir_total, ir_pix, ir_ssim = autoencoder_loss(r_ir, batch["ir"], tuple(w.autoencoder))
        vi_total, vi_pix, vi_ssim = autoencoder_loss(r_vi, batch["vi"], tuple(w.autoencoder))
        terms = {"loss_ir_mse": ir_pix, "loss_ir_msssim": ir_ssim, "loss_vi_mse": vi_pix, "loss_vi_msssim": vi_ssim}
        return ir_total + vi_total, (terms, {})

    def fusion(variables, batch, rng):
        del rng
        feats = module.apply(variables, batch["ir"], batch["vi"], method=CrossFuse.encode)
        fused, updated = module.apply(variables, jax.lax.stop_gradient(feats), True, method=CrossFuse.fuse,
                                      mutable=["batch_stats"])
        total, pix, grad = fusion_loss(fused, batch["ir"], batch["vi"], tuple(w.fusion))
        return total, ({"loss_pixel": pix, "loss_gradient": grad}, dict(updated))

    return {"autoencoder": autoencoder, "fusion": fusion}[config.stage]


def _init(module, rng, ir, vi):
    return dict(module.init(rng, ir, vi, method=CrossFuse.init_all))


SPEC = ModelSpec(
    name="crossfuse",
    build=lambda model_config, dtype="float32": CrossFuse(**model_config, dtype=dtype),
    loss_fn=_loss_fn,
    stages={
        "autoencoder": Stage("autoencoder", freeze=("fusion/.*",)),
        "fusion": Stage("fusion", freeze=("ae_ir/.*", "ae_vi/.*"), starts_from="autoencoder"),
    },
    init=_init,
    converter="jaxfuse.convert.crossfuse",
    official="jaxfuse.official.crossfuse",
    min_size=MIN_SIZE,
)
