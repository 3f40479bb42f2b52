"""Parity with golden tensors from the official PyTorch code (``../shared/reference/<model>``).

Model-agnostic: a model's mapping module (``jaxfuse/convert/<model>.py``) supplies
``activation_path(official_module) -> Flax module path`` and ``golden_inputs(golden)``; the
harness runs the Flax model with the converted weights, captures the outputs of exactly the
recorded modules and compares each golden array, stored whole or as a summary (per-channel
mean/std and three 16x16 windows), with one absolute tolerance, as the reference READMEs specify.
"""

from __future__ import annotations

import jax
import numpy as np

from jaxfuse import models
from jaxfuse.convert import TABLES

SUMMARY_PARTS = ("mean", "std", "win_tl", "win_c", "win_br")


def recorded_modules(golden) -> list[str]:
    """Official module names with a recorded activation (``act/<module>``, whole or summarised)."""
    names = {k[4:] for k in golden.files if k.startswith("act/") and k.count("/") == 1}
    names |= {k[4:].rsplit("/", 1)[0] for k in golden.files if k.startswith("act/") and k.endswith("/shape")}
    return sorted(names)


def max_error(golden, key: str, mine_nchw: np.ndarray) -> float:
    """Largest absolute error of ``mine`` against golden ``key``, whole or through its summary."""
    if key in golden.files:
        return float(np.abs(mine_nchw.astype(np.float64) - golden[key]).max())
    shape = tuple(golden[key + "/shape"])
    if shape != mine_nchw.shape:
        raise AssertionError(f"{key}: shape {mine_nchw.shape}, golden {shape}")
    m = mine_nchw.astype(np.float64)
    errors = [np.abs(m.mean(axis=(2, 3)) - golden[key + "/mean"]).max(),
              np.abs(m.std(axis=(2, 3)) - golden[key + "/std"]).max()]
    for name, (y0, x0, h, w) in zip(("tl", "c", "br"), golden[key + "/win_boxes"]):
        errors.append(np.abs(m[:, :, y0:y0 + h, x0:x0 + w] - golden[f"{key}/win_{name}"]).max())
    return float(max(errors))


def run_case(model_name: str, params, model_config: dict, golden) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Runs the model on a golden case; returns (output, {official module: activation}), NCHW."""
    mapping = TABLES[model_name]
    module = models.get(model_name).build(model_config)
    wanted = {mapping.activation_path(n): n for n in recorded_modules(golden)}

    def capture(mdl, method_name):
        return method_name == "__call__" and tuple(mdl.path) in wanted

    with jax.default_matmul_precision("highest"):
        out, state = jax.jit(lambda p, *xs: module.apply(
            {"params": p}, *xs, capture_intermediates=capture, mutable=["intermediates"]))(
            params, *mapping.golden_inputs(golden))
    acts = {}
    for path, name in wanted.items():
        node = state["intermediates"]
        for part in path:
            node = node[part]
        acts[name] = np.transpose(np.asarray(node["__call__"][0]), (0, 3, 1, 2))
    return np.transpose(np.asarray(out), (0, 3, 1, 2)), acts


def compare(model_name: str, params, model_config: dict, golden) -> dict[str, float]:
    """Max abs error per golden key (``out`` and every ``act/<module>``), in forward order."""
    out, acts = run_case(model_name, params, model_config, golden)
    errors = {"out": max_error(golden, "out", out)}
    errors |= {f"act/{n}": max_error(golden, f"act/{n}", a) for n, a in acts.items()}
    return errors
