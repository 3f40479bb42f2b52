"""Image-fusion quality metrics in pure ``jax.numpy``: jitted, batched, two conventions.

>>> from jaxfuse.metrics import compute_metrics, to_gray
>>> scores = compute_metrics(fused, ir, vi, names=("EN", "MI", "Qabf"), convention="matlab")

See :mod:`jaxfuse.metrics.conventions` for what differs between the ``matlab`` toolbox and the
``cddfuse`` evaluator, and ``docs/metrics.md`` for accuracy and speed.

The names below load their module on first use, so that the NumPy-only modules
(``conventions``, ``buckets``) import without JAX: the evaluate CLI decodes images while JAX loads.
"""

import importlib

_EXPORTS = {"CONVENTIONS": "conventions", "to_gray": "conventions", "CDDFUSE_METRICS": "core",
            "LOWER_IS_BETTER": "core", "METRICS": "core", "compute_metrics": "core",
            "keep_freed_memory": "core", "parse_names": "core", "undefined": "core"}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
