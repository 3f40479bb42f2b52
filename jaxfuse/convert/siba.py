"""Name-mapping table: official SIBA state dict (Afreshbird/SIBA) -> jaxfuse ``SIBA`` params."""

import re

import jax
import numpy as np

from jaxfuse import models
from jaxfuse.convert.core import (ConversionError, Rule, conv_kernel, convert as convert_table, expected_variables,
                                  flatten, linear_kernel, prefixed, scalar)


def _conv(torch_name, flax_name, bias=True):
    rules = {f"{torch_name}.weight": Rule(f"{flax_name}/kernel", conv_kernel)}
    if bias:
        rules[f"{torch_name}.bias"] = Rule(f"{flax_name}/bias")
    return rules


SE = {
    "se.fc.0.weight": Rule("se/fc1/kernel", linear_kernel),
    "se.fc.2.weight": Rule("se/fc2/kernel", linear_kernel),
}
CBSM = {**_conv("conv1", "conv1"), **_conv("conv2", "conv2"),
        "act.weight": Rule("act/slope", scalar), **SE}
RES_SE = {**_conv("res_conv", "res_conv"), **CBSM}
RES_NO_SE = {k: r for k, r in RES_SE.items() if not k.startswith("se.")}

_ATTENTION_AND_FFN = {
    "norm1.body.weight": Rule("norm1/scale"),
    "norm1.body.bias": Rule("norm1/bias"),
    "attn.scale": Rule("attn/temperature", flatten),
    **_conv("attn.qkv1", "attn/qkv1", bias=False),
    **_conv("attn.qkv2", "attn/qkv2", bias=False),
    **_conv("attn.proj", "attn/proj", bias=False),
    "norm2.body.weight": Rule("norm2/scale"),
    "norm2.body.bias": Rule("norm2/bias"),
    **_conv("mlp.project_in", "mlp/project_in", bias=False),
    **_conv("mlp.dwconv", "mlp/dwconv", bias=False),
    **_conv("mlp.project_out", "mlp/project_out", bias=False),
}
SELF_BLOCK = CROSS_BLOCK = _ATTENTION_AND_FFN  # same keys; qkv has 3C vs 2C channels


def table(sa_depth: int = 1, ca_depth: int = 1) -> dict[str, Rule]:
    """The full official-key -> Flax-path table for a SIBA with the given block depths."""
    rules = {}
    for m in ("ir", "vi"):
        rules |= prefixed(RES_SE, f"{m}_conv", f"{m}_conv")
        for i in range(sa_depth):
            rules |= prefixed(SELF_BLOCK, f"{m}_sa.{i}", f"{m}_sa_{i}")
    for q in ("weight_ir", "weight_irI", "weight_vi", "weight_viI"):
        rules |= prefixed(CBSM, q, q)
    for branch in ("ir2vi", "irI2vi", "vi2ir", "viI2ir"):
        for i in range(ca_depth):
            rules |= prefixed(CROSS_BLOCK, f"{branch}_ca.{i}", f"{branch}_ca_{i}")
    rules |= prefixed(RES_SE, "fuse_conv.0", "fuse_conv_0")
    rules |= prefixed(RES_SE, "fuse_conv.1", "fuse_conv_1")
    rules |= prefixed(RES_NO_SE, "out_conv", "out_conv")
    return rules


def model_config(state) -> dict:
    """Reads the SIBA hyper-parameters a state dict was trained with."""

    def depth(prefix):
        idx = {int(m.group(1)) for k in state if (m := re.match(rf"{prefix}\.(\d+)\.", k))}
        return max(idx) + 1 if idx else 0

    return {
        "features": int(np.shape(state["ir_conv.conv1.weight"])[0]),
        "heads": int(np.size(state["ir_sa.0.attn.scale"])),
        "sa_depth": depth("ir_sa"),
        "ca_depth": depth("ir2vi_ca"),
    }


def convert(states: list[tuple[str, dict]]) -> tuple[dict, dict]:
    """[(name, official state dict)] (exactly one) -> ({"params": ...}, model config)."""
    if len(states) != 1:
        raise ConversionError(f"siba takes one state dict (SIBA_epoch60.pth), got {len(states)}")
    source, state = states[0]
    try:
        config = model_config(state)
    except (KeyError, IndexError, ValueError) as e:
        raise ConversionError(f"{source} does not look like a siba state dict: cannot read its "
                              f"hyper-parameters (missing or odd key {e}); first keys: {sorted(state)[:8]}") from None
    shapes = expected_variables("siba", config, size=8)
    return convert_table(state, table(config["sa_depth"], config["ca_depth"]), shapes, "siba", source), config


def activation_path(official_module: str) -> tuple[str, ...]:
    """Official module name (a forward-hook key, e.g. ``ir_sa.0.attn.qkv2``) -> Flax module path."""
    name = {"fuse_conv": "fuse_conv.1"}.get(official_module, official_module)
    return tuple(re.sub(r"\.(\d+)(?=\.|$)", r"_\1", name).split("."))


def recorded_modules(golden) -> list[str]:
    """Official module names with a recorded activation (``act/<module>``, whole or summarised)."""
    names = {k[4:] for k in golden.files if k.startswith("act/") and k.count("/") == 1}
    names |= {k[4:].rsplit("/", 1)[0] for k in golden.files if k.startswith("act/") and k.endswith("/shape")}
    return sorted(names)


def parity_arrays(variables, config: dict, golden) -> dict[str, np.ndarray]:
    """{"out": output, "act/<official module>": activation} (NCHW) on a golden case's (ir, vi)."""
    module = models.get("siba").build(config)
    wanted = {activation_path(n): n for n in recorded_modules(golden)}
    ir, vi = (np.transpose(golden[k], (0, 2, 3, 1)) for k in ("ir", "vi"))

    def capture(mdl, method_name):
        return method_name == "__call__" and tuple(mdl.path) in wanted

    with jax.default_matmul_precision("highest"):
        out, state = jax.jit(lambda v, a, b: module.apply(
            v, a, b, capture_intermediates=capture, mutable=["intermediates"]))(variables, ir, vi)
    arrays = {"out": np.transpose(np.asarray(out), (0, 3, 1, 2))}
    for path, name in wanted.items():
        node = state["intermediates"]
        for part in path:
            node = node[part]
        arrays[f"act/{name}"] = np.transpose(np.asarray(node["__call__"][0]), (0, 3, 1, 2))
    return arrays
