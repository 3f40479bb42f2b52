"""Official PyTorch weights -> jaxfuse: ``to_flax(model, sources)`` and a checkpoint writer.

    python -m jaxfuse.convert --model siba --torch SIBA_epoch60.pth --out DIR
    python -m jaxfuse.convert --model crossfuse --torch AE_IR.model,AE_VI.model,FUSION.model --out DIR

Each model names its converter module in its ``ModelSpec`` (``jaxfuse/convert/<model>.py``);
that module holds one explicit mapping table and provides ``convert(states) -> (variables,
model_config)`` and the parity hook ``parity_arrays(variables, model_config, golden)``.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping, Sequence
from types import ModuleType

from jaxfuse import models
from jaxfuse.convert.core import ConversionError, load_all, load_state_dict

__all__ = ["ConversionError", "available", "converter", "load_state_dict", "to_flax"]


def available() -> list[str]:
    """Models that have a converter for official weights."""
    return sorted(name for name, spec in models.REGISTRY.items() if spec.converter)


def converter(model_name: str) -> ModuleType:
    spec = models.REGISTRY.get(model_name)
    if spec is None or not spec.converter:
        raise ConversionError(f"no converter for model {model_name!r}; available: {available()}")
    return importlib.import_module(spec.converter)


def to_flax(model_name: str, sources: Mapping | str | os.PathLike | Sequence, **options) -> tuple[dict, dict]:
    """Official state dict(s) (mappings, ``.npz`` or ``.pth``/``.model`` paths) -> (variables, model config).

    ``variables`` is ``{"params": ..., ["batch_stats": ...]}``.
    """
    if isinstance(sources, (Mapping, str, os.PathLike)):
        sources = [sources]
    return converter(model_name).convert(load_all(sources), **options)
