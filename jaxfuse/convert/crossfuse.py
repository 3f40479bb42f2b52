"""Official CrossFuse state dicts (hli1221/CrossFuse) -> one jaxfuse ``CrossFuse`` checkpoint.

Three files, in this order: the infrared auto-encoder, the visible auto-encoder (both
``Auto_Encoder_single``) and the fusion network (``Trans_FuseNet``). They become the subtrees
``ae_ir``, ``ae_vi`` and ``fusion``; BatchNorm running statistics go to ``batch_stats``. Keys
the official forward never uses are consumed by named ``Ignore`` rules, and the two fixed
1/9 averaging kernels are checked. No official CrossFuse weights are published anywhere today.
"""

from __future__ import annotations

import re

import jax
import numpy as np

from jaxfuse import models
from jaxfuse.convert.core import (ConversionError, Ignore, Rule, conv_kernel, convert as convert_table,
                                  expected_variables, linear_kernel, prefixed)
from jaxfuse.models.crossfuse import CrossFuse

AE_MARKER, FUSION_MARKER = "fea_encoder1.conv1.conv2d.0.weight", "decoder_fusion.conv1.conv2d.0.weight"
ROLES = ("infrared auto-encoder (AE_IR)", "visible auto-encoder (AE_VI)", "fusion network (FUSION)")


def _conv(torch_name: str, flax_name: str) -> dict[str, Rule]:
    return {f"{torch_name}.weight": Rule(f"{flax_name}/kernel", conv_kernel), f"{torch_name}.bias": Rule(f"{flax_name}/bias")}


def _dense(torch_name: str, flax_name: str) -> dict[str, Rule]:
    return {f"{torch_name}.weight": Rule(f"{flax_name}/kernel", linear_kernel), f"{torch_name}.bias": Rule(f"{flax_name}/bias")}


def _norm(torch_name: str, flax_name: str) -> dict[str, Rule]:
    return {f"{torch_name}.weight": Rule(f"{flax_name}/scale"), f"{torch_name}.bias": Rule(f"{flax_name}/bias")}


def autoencoder_table(dense_layers: int = 3) -> dict[str, Rule]:
    """One ``Auto_Encoder_single`` (Flax paths relative to ``ae_ir/`` or ``ae_vi/``)."""
    rules = _conv("fea_encoder1.conv1.conv2d.0", "fea_encoder1/conv1")
    for b in (0, 2):  # Sequential slots 1 and 3 are max-pools
        convs = [f"dense_conv{i}" for i in range(dense_layers)] + ["adjust_conv"]
        for c in convs:
            rules |= _conv(f"fea_encoder1.dense_blocks.{b}.{c}.conv2d.0", f"fea_encoder1/dense_blocks_{b}/{c}")
    for c in ("conv1", "conv_block.0", "conv_block.2", "conv_last"):
        rules |= _conv(f"recon_decoder1.{c}.conv2d.0", f"recon_decoder1/{c.replace('.', '_')}")
    return rules


UNUSED_NORM = Ignore("self_atten_module.norm is never applied (transformer_cam.py:242-253)")
UNUSED_QKV = Ignore("the cross Attention's qkv Linear is never used (transformer_cam.py:130)")
VIT_BLOCK = {**_norm("norm1", "norm1"), **_dense("attn.qkv", "attn/qkv"), **_dense("attn.proj", "attn/proj"),
             **_norm("norm2", "norm2"), **_dense("mlp.fc1", "mlp/fc1"), **_dense("mlp.fc2", "mlp/fc2")}
CROSS_BLOCK = {**{k: r for k, r in VIT_BLOCK.items() if not k.startswith("attn.qkv")},
               **{f"attn.qkv.{leaf}": UNUSED_QKV for leaf in ("weight", "bias")},
               **{k: r for n in ("q", "k", "v") for k, r in _dense(f"attn.{n}_linear", f"attn/{n}_linear").items()}}


def _is_box_kernel(w) -> bool:
    return bool(np.all(np.abs(np.asarray(w, np.float64) - 1 / 9) <= 1e-7))


def _conv_bn(torch_name: str, flax_name: str) -> dict:
    t, f = f"{torch_name}.conv2d", flax_name
    return {**_conv(f"{t}.0", f"{f}/conv"), **_norm(f"{t}.1", f"{f}/bn"),
            f"{t}.1.running_mean": Rule(f"{f}/bn/mean", collection="batch_stats"),
            f"{t}.1.running_var": Rule(f"{f}/bn/var", collection="batch_stats"),
            f"{t}.1.num_batches_tracked": Ignore("BatchNorm counter; the momentum is fixed (0.1)")}


def fusion_table(self_depth: int = 1) -> dict:
    """``Trans_FuseNet`` (Flax paths relative to ``fusion/``)."""
    rules = {}
    for stage in (1, 2):
        for m in (1, 2):
            torch_mod, flax_mod = (f"cross_atten_block.self_atten_block{stage}.self_atten{m}",
                                   f"cross_atten_block/self_atten_block{stage}/self_atten{m}")
            for i in range(self_depth):
                rules |= prefixed(VIT_BLOCK, f"{torch_mod}.blocks.{i}", f"{flax_mod}/blocks_{i}")
            rules |= {f"{torch_mod}.norm.weight": UNUSED_NORM, f"{torch_mod}.norm.bias": UNUSED_NORM}
    for m in (1, 2):
        torch_mod, flax_mod = (f"cross_atten_block.cross_atten_block.cross_atten{m}",
                               f"cross_atten_block/cross_atten_block/cross_atten{m}")
        rules |= prefixed(CROSS_BLOCK, f"{torch_mod}.blocks.0", f"{flax_mod}/blocks_0")
        rules |= _norm(f"{torch_mod}.norm", f"{flax_mod}/norm")
    rules["conv_gra.weight"] = Ignore("conv_gra is created but never used in a forward pass")
    for c in ("conv1", "conv_block.0", "conv_block.2", "conv_block.4", "conv_last"):
        rules |= _conv_bn(f"decoder_fusion.{c}", f"decoder_fusion/{c.replace('.', '_')}")
    for c in ("conv_sh", "conv_de"):
        rules[f"decoder_fusion.weight.{c}.weight"] = Ignore(
            "the fixed averaging kernel of Weight, a constant in jaxfuse", _is_box_kernel, "all 1/9")
    return rules


def _under(table: dict, prefix: str) -> dict:
    return {k: r.under(prefix) for k, r in table.items()}


def _check_roles(states) -> None:
    if len(states) != 3:
        raise ConversionError(f"crossfuse takes three state dicts, AE_IR,AE_VI,FUSION (the two "
                              f"auto_encoder_epoch_4_*.model files and fusetrans_*.model), got {len(states)}")
    for i, (source, state) in enumerate(states):
        kind = 2 if FUSION_MARKER in state else 0 if AE_MARKER in state else None
        if kind is None:
            raise ConversionError(f"{source}: not a CrossFuse state dict (neither {AE_MARKER} nor "
                                  f"{FUSION_MARKER}); first keys: {sorted(state)[:6]}")
        if (kind == 2) != (i == 2):
            found = "the fusion network" if kind == 2 else "an auto-encoder"
            raise ConversionError(f"{source}: given as the {ROLES[i]} but it holds {found}; pass the files "
                                  "in the order AE_IR,AE_VI,FUSION")


def model_config(ae_state, fusion_state) -> dict:
    """Reads the CrossFuse widths and depths from the shapes (heads and tile are not readable)."""
    def out_channels(key):
        return int(np.shape(ae_state[key])[0])

    dense_layers = len({m.group(1) for k in ae_state if (m := re.match(r"fea_encoder1\.dense_blocks\.0\.dense_conv(\d+)\.", k))})
    self_depth = len({m.group(1) for k in fusion_state
                      if (m := re.match(r"cross_atten_block\.self_atten_block1\.self_atten1\.blocks\.(\d+)\.", k))})
    deep = out_channels("fea_encoder1.dense_blocks.0.adjust_conv.conv2d.0.weight")
    prefix = "cross_atten_block.self_atten_block1.self_atten1.blocks.0"
    dim = int(np.shape(fusion_state[f"{prefix}.norm1.weight"])[0])
    return {"shallow": out_channels(AE_MARKER), "growth": out_channels("fea_encoder1.dense_blocks.0.dense_conv0.conv2d.0.weight"),
            "deep": deep, "dense_layers": dense_layers, "patch": int(round((dim / deep) ** 0.5)),
            "mlp_ratio": np.shape(fusion_state[f"{prefix}.mlp.fc1.weight"])[0] / dim, "self_depth": self_depth}


def convert(states: list[tuple[str, dict]]) -> tuple[dict, dict]:
    """[(name, state dict)] x 3 (AE_IR, AE_VI, FUSION) -> ({"params", "batch_stats"}, model config)."""
    _check_roles(states)
    (ir_src, ir_sd), (vi_src, vi_sd), (fu_src, fu_sd) = states
    try:
        config = model_config(ir_sd, fu_sd)
    except (KeyError, IndexError, ValueError) as e:
        raise ConversionError(f"cannot read the CrossFuse widths from {ir_src} / {fu_src} (missing key {e})") from None
    shapes = expected_variables("crossfuse", config, size=16)
    parts = []
    for name, (src, sd), table in (("ae_ir", (ir_src, ir_sd), autoencoder_table(config["dense_layers"])),
                                    ("ae_vi", (vi_src, vi_sd), autoencoder_table(config["dense_layers"])),
                                    ("fusion", (fu_src, fu_sd), fusion_table(config["self_depth"]))):
        expected = {c: {name: tree[name]} for c, tree in shapes.items() if name in tree}
        parts.append(convert_table(sd, _under(table, name), expected, f"crossfuse {name}", src))
    variables = {c: {k: v for part in parts for k, v in part.get(c, {}).items()} for c in shapes}
    return variables, config


# ----------------------------------------------------------------------------------------------
# Parity hook: golden key -> my array in the golden layout (../shared/reference/crossfuse)
# ----------------------------------------------------------------------------------------------
CAM_KEYS = ("in_ir", "in_vi", "ir_self", "vi_self", "ir_shift_self", "vi_shift_self",
            "cross_q_ir_kv_vi", "cross_q_vi_kv_ir")
DEC_KEYS = ("w_de_ir", "w_de_vi", "conv1_input", "conv1", "conv_block.0", "conv_block.2", "conv_block.4",
            "shape_adjust", "w_sh_ir", "w_sh_vi", "conv_last_input", "conv_last")
SOWN_AS = {"conv1": "conv1_out", "conv_last": "conv_last_out"}  # sow names may not shadow submodules
TOKEN_KEYS = {  # golden key -> path under fusion/cross_atten_block (CAM)
    "tok/sa1_ir_in": "self_atten_block1/self_atten1/tokens_in",
    "tok/sa1_ir_norm1": "self_atten_block1/self_atten1/blocks_0/norm1_out",
    "tok/sa1_ir_qkv": "self_atten_block1/self_atten1/blocks_0/attn/qkv_out",
    "tok/sa1_ir_attn": "self_atten_block1/self_atten1/blocks_0/attn_out",
    **{f"tok/ca1_{n}": f"cross_atten_block/cross_atten1/blocks_0/attn/{n}" for n in ("q", "k", "v")},
    "tok/ca1_attn": "cross_atten_block/cross_atten1/blocks_0/attn_out",
    "tok/ca1_mlp": "cross_atten_block/cross_atten1/blocks_0/mlp_out",
}


def _nchw(x) -> np.ndarray:
    return np.transpose(np.asarray(x), (0, 3, 1, 2))


def _get(tree, path: str):
    for part in path.split("/"):
        tree = tree[part]
    return tree[0]  # sow keeps a tuple of values


def _grid(tiles, rows: int, cols: int) -> np.ndarray:
    """(T, t, t, C) tiles of one image -> the (1, C, rows*t, cols*t) tile-grid map (padding kept)."""
    t, c = tiles.shape[1], tiles.shape[3]
    grid = np.asarray(tiles).reshape(rows, cols, t, t, c).transpose(0, 2, 1, 3, 4).reshape(1, rows * t, cols * t, c)
    return _nchw(grid)


def parity_arrays(variables, config: dict, golden) -> dict[str, np.ndarray]:
    """Every golden key this port records, in forward order (stage 1, CAM, tokens, decoder, output)."""
    module = models.get("crossfuse").build(config)
    ir, vi = (np.transpose(golden[k], (0, 2, 3, 1)) / np.float32(255.0) for k in ("ir", "vi"))

    def run(v, a, b):
        out, inter = module.apply(v, a, b, mutable=["intermediates"])
        recon, rec_inter = module.apply(v, a, b, method=CrossFuse.reconstruct, mutable=["intermediates"])
        (ir_sh, _), (vi_sh, _) = module.apply(v, a, b, method=CrossFuse.encode)
        return out, inter["intermediates"], recon, rec_inter["intermediates"], ir_sh, vi_sh

    with jax.default_matmul_precision("highest"):
        out, inter, recon, rec_inter, ir_sh, vi_sh = jax.jit(run)(variables, ir, vi)
    arrays = {}
    for m, sh, rec in (("ae_ir", ir_sh, recon[0]), ("ae_vi", vi_sh, recon[1])):
        enc = inter[m]["fea_encoder1"]
        arrays[f"{m}/c_sh"] = _nchw(sh)
        for k in ("enc.pool", "enc.dense_blocks.0", "enc.dense_blocks.1", "enc.dense_blocks.2"):
            arrays[f"{m}/{k}"] = _nchw(enc[k][0])
        arrays[f"{m}/c_de"] = _nchw(enc["c_de"][0])
        for k in ("dec.conv1", "dec.conv_block.0", "dec.conv_block.2", "dec.shape_adjust"):
            arrays[f"{m}/{k}"] = _nchw(rec_inter[m]["recon_decoder1"][k][0])
        arrays[f"{m}/dec.conv_last"] = _nchw(rec)
        arrays[f"{m}/recon"] = 255.0 * _nchw(rec)
    rows, cols = (int(v) for v in _meta(golden)["tiles_h_w"])
    cam = inter["fusion"]["cross_atten_block"]
    for k in CAM_KEYS:
        arrays[f"cam/{k}"] = _grid(cam[k][0], rows, cols)
    arrays["cam/c_f"] = _grid(np.asarray(cam["cross_q_ir_kv_vi"][0]) + np.asarray(cam["cross_q_vi_kv_ir"][0]), rows, cols)
    for key, path in TOKEN_KEYS.items():
        arrays[key] = np.asarray(_get(cam, path))
    dec = inter["fusion"]["decoder_fusion"]
    arrays["dec/x1_c_f"] = _nchw(inter["fusion"]["x1_c_f"][0])
    for k in DEC_KEYS:
        arrays[f"dec/{k}"] = _nchw(dec[SOWN_AS.get(k, k)][0])
    arrays["fuse/out"] = 255.0 * _nchw(out)
    if "train_module/stage2_out_shiftFalse" in golden.files:  # == the tiled forward for one tile
        arrays["train_module/stage2_out_shiftFalse"] = arrays["fuse/out"]
    return {k: v for k, v in arrays.items() if k in golden.files or k + "/shape" in golden.files}


def _meta(golden) -> dict:
    import json  # noqa: PLC0415

    return json.loads(str(golden["meta_json"]))
