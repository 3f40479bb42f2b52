"""Shared Flax Linen blocks (NHWC). Attention variants are registered by name for configs."""

from jaxfuse.nn.restormer import MDTA
from jaxfuse.nn.source_attention import SourceCrossAttention

# Swappable by config (``config.model.self_attention`` / ``config.model.cross_attention``).
SELF_ATTENTION = {"mdta": MDTA}
CROSS_ATTENTION = {"source": SourceCrossAttention}
