"""Source-image cross attention of SIBA (I-SCA / V-SCA, Sec. 3.3, Eq. 2-5).

The query is a source image turned into features by a CBSM (no LayerNorm, no projection); key
and value come from the other modality's features through a 1x1 then a depthwise 3x3 conv. The
attention itself is MDTA's transposed (channel) attention; wrap it in a block with
``RestormerBlock(attention=SourceCrossAttention)``, whose residual stream is the key/value feature.
"""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxfuse.nn.layers import conv1x1, pointwise_depthwise3x3
from jaxfuse.nn.restormer import transposed_attention

Dtype = Any


class SourceCrossAttention(nn.Module):
    """Cross attention with query = the source map ``query``; k|v = DW3(Conv1(x))."""

    heads: int = 8
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x, query):
        c = x.shape[-1]
        kv = pointwise_depthwise3x3(x, 2 * c, ("qkv1", "qkv2"), self.dtype)
        k, v = jnp.split(kv, 2, axis=-1)
        tau = self.param("temperature", nn.initializers.ones, (self.heads,))
        out = transposed_attention(query.astype(self.dtype), k, v, tau, self.heads)
        return conv1x1(c, dtype=self.dtype, name="proj")(out)
