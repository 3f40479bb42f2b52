"""SIBA: "The Source Image is the Best Attention for Infrared and Visible Image Fusion" (ICCV 2025).

Architecture (Sec. 3, Fig. 2): Res-SE shallow features per modality, a Restormer self-attention
block per modality, four CBSM queries from ir, 1-ir, vi, 1-vi (the inverted images), four
source cross-attention blocks (I-SCA / V-SCA, Eq. 2-5), then Res-SE fusion layers. The loss is
Eq. 6-10: 0.1 * max-intensity (Eq. 7) + Sobel gradient (Eq. 9) + 10 * joint Laplacian (Eq. 10).

Submodule names follow the official PyTorch module names (``ir_sa.0`` -> ``ir_sa_0``), so
``apply(..., capture_intermediates=True)`` exposes every boundary the parity tests compare.
"""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxfuse import losses
from jaxfuse.models.spec import ModelSpec, Stage
from jaxfuse.nn import CROSS_ATTENTION, SELF_ATTENTION
from jaxfuse.nn.restormer import RestormerBlock
from jaxfuse.nn.se import CBSM, ResSE

Dtype = Any


class SIBA(nn.Module):
    """SIBA fusion network: (ir, vi) NHWC in [0, 1], one channel each -> fused (unbounded)."""

    features: int = 48
    heads: int = 8
    sa_depth: int = 1
    ca_depth: int = 1
    ffn_expansion: float = 1.0
    self_attention: str = "mdta"
    cross_attention: str = "source"
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, ir, vi):
        c, dt = self.features, self.dtype
        ir, vi = ir.astype(dt), vi.astype(dt)

        def self_branch(x, prefix):
            x = ResSE(c, dtype=dt, name=f"{prefix}_conv")(x)
            for i in range(self.sa_depth):
                block = RestormerBlock(self.heads, self.ffn_expansion, SELF_ATTENTION[self.self_attention],
                                       dtype=dt, name=f"{prefix}_sa_{i}")
                x = block(x)
            return x

        def cross_branch(x, query, prefix):
            for i in range(self.ca_depth):
                block = RestormerBlock(self.heads, self.ffn_expansion, CROSS_ATTENTION[self.cross_attention],
                                            dtype=dt, name=f"{prefix}_ca_{i}")
                x = block(x, query)
            return x

        def query(source, name):
            return CBSM(c, dtype=dt, name=name)(source)

        s_ir, s_vi = self_branch(ir, "ir"), self_branch(vi, "vi")
        q_ir, q_irI = query(ir, "weight_ir"), query(1 - ir, "weight_irI")
        q_vi, q_viI = query(vi, "weight_vi"), query(1 - vi, "weight_viI")
        merged = jnp.concatenate([
            cross_branch(s_vi, q_ir, "ir2vi"),    # query from IR, key/value from VI
            cross_branch(s_ir, q_vi, "vi2ir"),
            cross_branch(s_vi, q_irI, "irI2vi"),
            cross_branch(s_ir, q_viI, "viI2ir"),
        ], axis=-1)
        g = ResSE(2 * c, dtype=dt, name="fuse_conv_0")(merged)
        g = ResSE(c, dtype=dt, name="fuse_conv_1")(g)
        return ResSE(1, use_se=False, dtype=dt, name="out_conv")(g).astype(jnp.float32)


def siba_loss(fused, ir, vi, weights=(10.0, 0.1, 1.0)):
    """Eq. 6 and 8: w_lap * L_lap + w_int * L_int + w_sobel * L_sobel; returns (loss, terms)."""
    terms = {
        "loss_laplacian": losses.joint_laplacian_loss(fused, ir, vi),
        "loss_intensity": losses.max_intensity_loss(fused, ir, vi),
        "loss_sobel": losses.sobel_gradient_loss(fused, ir, vi),
    }
    total = sum(w * t for w, t in zip(weights, terms.values()))
    return total, terms


def _loss_fn(module, config):
    weights = tuple(config.loss.weights)

    def loss_fn(variables, batch, rng):
        del rng  # SIBA is deterministic
        fused = module.apply(variables, batch["ir"], batch["vi"])
        loss, terms = siba_loss(fused, batch["ir"], batch["vi"], weights)
        return loss, (terms, {})

    return loss_fn


SPEC = ModelSpec(
    name="siba",
    build=lambda model_config, dtype="float32": SIBA(**model_config, dtype=dtype),
    loss_fn=_loss_fn,
    stages={"fusion": Stage("fusion")},
    converter="jaxfuse.convert.siba",
    official="jaxfuse.official.siba",
)
