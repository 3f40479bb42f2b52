"""Official PyTorch weights -> jaxfuse: ``to_flax(model, state_dict_or_path)`` and a checkpoint writer.

    python -m jaxfuse.convert --model siba --torch SIBA_epoch60.pth --out DIR

One explicit mapping table per model lives in ``jaxfuse/convert/<model>.py``; each provides
``table(**model_config)`` and ``model_config(state_dict)``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import ModuleType

import jax
import jax.numpy as jnp

from jaxfuse import models
from jaxfuse.convert import core, siba
from jaxfuse.convert.core import ConversionError, load_state_dict

TABLES: dict[str, ModuleType] = {"siba": siba}
_TABLE_ARGS = {"siba": ("sa_depth", "ca_depth")}


def to_flax(model_name: str, state_dict: Mapping | str | os.PathLike) -> tuple[dict, dict]:
    """Converts an official state dict (mapping, ``.npz`` or ``.pth`` path) -> (params, model config)."""
    if model_name not in TABLES:
        raise ConversionError(f"no converter for model {model_name!r}; available: {sorted(TABLES)}")
    state = state_dict if isinstance(state_dict, Mapping) else load_state_dict(state_dict)
    mapping = TABLES[model_name]
    try:
        model_config = mapping.model_config(state)
    except (KeyError, IndexError, ValueError) as e:
        raise ConversionError(f"this does not look like a {model_name} state dict: cannot read its "
                              f"hyper-parameters (missing or odd key {e}); first keys: {sorted(state)[:8]}") from None
    table = mapping.table(**{k: model_config[k] for k in _TABLE_ARGS[model_name]})
    module = models.get(model_name).build(model_config)
    dummy = jnp.zeros((1, 8, 8, 1), jnp.float32)
    shapes = jax.eval_shape(module.init, jax.random.key(0), dummy, dummy)["params"]
    return core.convert(state, table, shapes, model_name), model_config
