"""Official DMFuse weights (Zhishe-Wang/DMFuse) -> one jaxfuse ``DMFuse`` checkpoint.

Two files, told apart by their keys (the order does not matter): the fusion head
(``models/model.model``, shipped with the official code) and, where the user has it, the SR3
UNet (``experiments/pre_train/ddpm_gen.pth``, a ``GaussianDiffusion`` state dict: ``denoise_fn.``
prefix plus the schedule buffers, whose ``betas`` are checked against the cosine schedule).
Names map mechanically (``downs.12.attn.qkv`` -> ``unet/downs_12/attn/qkv``); the twelve keys of
the head the official forward never uses are dropped by an explicit list. Without the UNet file
the checkpoint holds the head only: usable as ``init_from`` after a jaxfuse-trained ``ddpm``
stage, not for fusing.
"""

from __future__ import annotations

import re

import jax
import numpy as np

from jaxfuse import diffusion, models
from jaxfuse.convert.core import (ConversionError, Ignore, Rule, conv_kernel, convert as convert_table,
                                  expected_variables, identity, linear_kernel, scalar)
from jaxfuse.models.dmfuse import DMFuse

HEAD_MARKER, UNET_MARKER = "crossatten.gamma", "init_conv.weight"
DEAD_HEAD_MODULES = ("conv_in2", "conv_in3", "conv_in4", "conv_in5", "conv_t3", "conv_t2")
SCHEDULE_BUFFERS = ("betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod",
                    "sqrt_one_minus_alphas_cumprod", "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod",
                    "sqrt_recipm1_alphas_cumprod", "posterior_variance", "posterior_log_variance_clipped",
                    "posterior_mean_coef1", "posterior_mean_coef2")


def _flax_path(key: str) -> str:
    return re.sub(r"\.(\d+)(?=\.|$)", r"_\1", key.rsplit(".", 1)[0]).replace(".", "/")


def mechanical_rule(key: str, value: np.ndarray, prefix: str = "") -> Rule:
    """``a.0.b.weight`` -> ``a_0/b/{kernel|scale}`` by the tensor's rank (conv, Linear, norm)."""
    leaf = key.rsplit(".", 1)[1]
    path = prefix + _flax_path(key)
    if key == HEAD_MARKER:
        return Rule("crossatten/gamma", scalar)
    if leaf == "bias":
        return Rule(f"{path}/bias", identity)
    transform, name = {4: (conv_kernel, "kernel"), 2: (linear_kernel, "kernel"), 1: (identity, "scale")}[np.ndim(value)]
    return Rule(f"{path}/{name}", transform)


def head_table(state) -> dict:
    table = {}
    for key, value in state.items():
        dead = key.split(".", 1)[0] in DEAD_HEAD_MODULES
        table[key] = Ignore("defined in Net.py but never used by the official forward") if dead else \
            mechanical_rule(key, value)
    return table


def unet_table(state, source: str, num_timesteps_check: bool = True) -> tuple[dict, dict]:
    """(table, unet state with the ``denoise_fn.`` prefix stripped); checks the schedule buffers."""
    table, unet = {}, {}
    for key, value in state.items():
        inner = key.removeprefix("denoise_fn.")
        if inner in SCHEDULE_BUFFERS:
            table[key] = Ignore("diffusion schedule buffer (recomputed from the config)")
            continue
        unet[key] = value
        table[key] = mechanical_rule(inner, value, "unet/")
    if "betas" in state and num_timesteps_check:
        betas = np.asarray(state["betas"], np.float64)
        want = diffusion.cosine_schedule(len(betas))["betas"].astype(np.float32)
        if not np.allclose(betas, want, rtol=1e-5, atol=1e-8):
            raise ConversionError(f"{source}: its betas are not the cosine schedule (T = {len(betas)}, s = 8e-3) "
                                  "that DMFuse's config uses")
    return table, unet


def _widths(state, prefix: str) -> list[int]:
    """Output channels of every ResnetBlock of the UNet's ``downs``, by index."""
    pat = re.compile(rf"{re.escape(prefix)}downs\.(\d+)\.res_block\.block1\.block\.3\.weight")
    return [np.shape(state[k])[0] for k in sorted((k for k in state if pat.fullmatch(k)),
                                                   key=lambda k: int(pat.fullmatch(k).group(1)))]


def model_config(head=None, unet=None, unet_prefix: str = "", norm_groups: int = 32) -> dict:
    """Widths from the shapes (``norm_groups`` cannot be read from the weights; 32 is the official)."""
    config = {"norm_groups": norm_groups}
    if head is not None:
        config["head_features"] = int(np.shape(head["en0.conv1.conv2d.weight"])[0])
    if unet is None:
        heads_in = [np.shape(head[f"en{i}.conv1.conv2d.weight"])[1] // 3 for i in range(4)]  # 3 timesteps
        ic = heads_in[0]
        config |= {"inner_channel": ic, "channel_mults": tuple(w // ic for w in heads_in + heads_in[-1:])}
        return config
    ic = int(np.shape(unet[f"{unet_prefix}init_conv.weight"])[0])
    widths = _widths(unet, unet_prefix)
    n_levels = 1 + len({k for k in unet if re.match(rf"{re.escape(unet_prefix)}downs\.\d+\.conv\.weight", k)})
    res_blocks = len(widths) // n_levels
    config |= {"inner_channel": ic, "res_blocks": res_blocks,
               "channel_mults": tuple(int(w // ic) for w in widths[::res_blocks])}
    if "betas" in unet:
        config["num_timesteps"] = len(unet["betas"])
    return config


def convert(states: list[tuple[str, dict]], norm_groups: int = 32) -> tuple[dict, dict]:
    """[(name, state dict)]: the fusion head and/or the UNet -> ({"params"}, model config).

    A missing part is left out of ``params`` (``jaxfuse.fuse`` then says what is missing).
    """
    kinds = ["head" if HEAD_MARKER in sd else "UNet" if UNET_MARKER in sd or f"denoise_fn.{UNET_MARKER}" in sd
             else "neither" for _, sd in states]
    if "neither" in kinds or kinds.count("head") > 1 or kinds.count("UNet") > 1:
        raise ConversionError(f"dmfuse takes the fusion-head file (models/model.model, has {HEAD_MARKER}) and/or "
                              f"the UNet file (ddpm_gen.pth, has {UNET_MARKER}), one of each at most; got: "
                              + ", ".join(f"{s} ({k})" for (s, _), k in zip(states, kinds)))
    heads = [st for st, k in zip(states, kinds) if k == "head"]
    unets = [st for st, k in zip(states, kinds) if k == "UNet"]
    head, unet = heads[0] if heads else None, unets[0] if unets else None
    prefix = "denoise_fn." if unet and f"denoise_fn.{UNET_MARKER}" in unet[1] else ""
    config = model_config(head[1] if head else None, unet[1] if unet else None, prefix, norm_groups)
    shapes = expected_variables("dmfuse", config, size=32)["params"]
    params = {}
    if head:
        head_shapes = {k: v for k, v in shapes.items() if k != "unet"}
        params = convert_table(head[1], head_table(head[1]), {"params": head_shapes}, "dmfuse head", head[0])["params"]
    if unet:
        table, _ = unet_table(unet[1], unet[0])
        params |= convert_table(unet[1], table, {"params": {"unet": shapes["unet"]}}, "dmfuse UNet", unet[0])["params"]
    return {"params": params}, config


# ----------------------------------------------------------------------------------------------
# Parity hook (../shared/reference/dmfuse): golden key -> my array (NCHW)
# ----------------------------------------------------------------------------------------------
def _nchw(x) -> np.ndarray:
    return np.transpose(np.asarray(x), (0, 3, 1, 2))


def _nhwc(x) -> np.ndarray:
    return np.transpose(np.asarray(x), (0, 2, 3, 1))


def golden_levels(golden) -> list[tuple[np.ndarray, np.ndarray]]:
    """The fusion head's inputs from ``golden_fusion_net.npz``: per level (ir, vi), t5|t50|t100 on channels."""
    def level(m, i):
        return np.concatenate([_nhwc(golden[f"{m}.t{t:03d}.td{i:02d}"]) for t in (5, 50, 100)], axis=-1)

    return [(level("ir", i), level("vi", i)) for i in (2, 5, 8, 11, 14)]


def parity_arrays(variables, config: dict, golden, levels=None) -> dict[str, np.ndarray]:
    """UNet goldens (``fd_00`` ...) run the UNet on the stored x_noisy/gamma; fusion-net goldens run
    the head on the stored features (``levels``, default ``golden_levels(golden)``)."""
    module = models.get("dmfuse").build(config)
    with jax.default_matmul_precision("highest"):
        if "fd_00" in golden.files:
            def run(v, x, g):
                return module.apply(v, x, g, method=lambda m, x, g: m.unet(x, g), mutable=["intermediates"])

            out, inter = jax.jit(run)(variables, _nhwc(golden["x_noisy"]), golden["gamma"])
            inter = inter["intermediates"]["unet"]
            arrays = {"out": _nchw(out)}
            arrays |= {k: _nchw(v[0]) for k, v in sorted(inter.items()) if k.startswith(("fe_", "fd_", "mid"))}
            return {k: v for k, v in arrays.items() if k in golden.files}
        levels = golden_levels(golden) if levels is None else levels
        fused, inter = jax.jit(lambda v, lv: module.apply(v, lv, method=DMFuse.fuse_features,
                                                          mutable=["intermediates"]))(variables, levels)
    inter = dict(inter["intermediates"])
    arrays = {k: _nchw(v[0]) for k, v in inter.items() if isinstance(v, tuple)}
    arrays["dec.pre_tanh"] = _nchw(inter["conv_t1"]["dec.pre_tanh"][0])
    arrays["fused"] = _nchw(fused)
    return {k: v for k, v in arrays.items() if k in golden.files or k + "/shape" in golden.files}
