"""Shared Flax Linen blocks (NHWC). Attention variants are registered by name for configs.

Families, each swappable by config within its interface:
* feature-map attention (SIBA): self ``f(x)``, cross ``f(x, query)`` on (B, H, W, C) maps;
* token attention (CrossFuse): self ``f(tokens)``, cross ``f(x, query)`` on (B, L, D) tokens;
* residual cross attention on maps (DMFuse): ``f(x, query) -> gamma * attention + x``.
* pair fusion on maps (RefineFuse): ``f(f_ir, f_vi) -> fused`` (B, H, W, C), same C.
In every cross variant ``x`` is the key/value (and residual) stream and ``query`` the query.
"""

from jaxfuse.nn.criss_cross import CrissCrossAttention
from jaxfuse.nn.global_attention import PSIM
from jaxfuse.nn.restormer import MDTA
from jaxfuse.nn.resoftmax_attention import ReSoftmaxCrossAttention, SoftmaxCrossAttention
from jaxfuse.nn.source_attention import SourceCrossAttention
from jaxfuse.nn.spatial_channel import SFIM, ConcatFusion
from jaxfuse.nn.vit import MultiHeadSelfAttention

# ``config.model.self_attention`` / ``config.model.cross_attention``.
SELF_ATTENTION = {"mdta": MDTA, "mhsa": MultiHeadSelfAttention}
CROSS_ATTENTION = {"source": SourceCrossAttention, "resoftmax": ReSoftmaxCrossAttention,
                   "softmax": SoftmaxCrossAttention, "criss_cross": CrissCrossAttention}
# ``config.model.level_modules``: the fusion module of each encoder level.
PAIR_FUSION = {"sfim": SFIM, "psim": PSIM, "concat": ConcatFusion}
