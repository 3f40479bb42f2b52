"""Image-fusion quality metrics in pure ``jax.numpy``: jitted, batched, two conventions.

>>> from jaxfuse.metrics import compute_metrics, to_gray
>>> scores = compute_metrics(fused, ir, vi, names=("EN", "MI", "Qabf"), convention="matlab")

See :mod:`jaxfuse.metrics.conventions` for what differs between the ``matlab`` toolbox and the
``cddfuse`` evaluator, and ``docs/metrics.md`` for accuracy and speed.
"""

from jaxfuse.metrics.conventions import CONVENTIONS, to_gray
from jaxfuse.metrics.core import (CDDFUSE_METRICS, LOWER_IS_BETTER, METRICS, compute_metrics,
                                  keep_freed_memory, parse_names, undefined)

__all__ = ["CONVENTIONS", "CDDFUSE_METRICS", "LOWER_IS_BETTER", "METRICS", "compute_metrics",
           "keep_freed_memory", "parse_names", "to_gray", "undefined"]
