"""Official PyTorch state dict -> Flax params through an explicit name-mapping table.

A table maps each official key to a Flax parameter path and a layout transform. Conversion
is strict: every official key must be consumed and every Flax parameter filled, with the
expected shape; otherwise a ``ConversionError`` lists the offending keys.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
from flax import traverse_util


class ConversionError(ValueError):
    """The state dict does not fit the model; the message lists missing/extra/mis-shaped keys."""


# Layout transforms (PyTorch -> Flax NHWC).
def conv_kernel(w):
    """Conv2d weight OIHW (depthwise/grouped: (O, I/groups, H, W)) -> HWIO."""
    return np.transpose(w, (2, 3, 1, 0))


def linear_kernel(w):
    """Linear weight (out, in) -> Dense kernel (in, out)."""
    return np.transpose(w)


def scalar(w):
    """A one-element tensor (e.g. PReLU's single slope) -> a 0-d array."""
    return np.reshape(w, ())


def flatten(w):
    """E.g. per-head temperatures (h, 1, 1) -> (h,)."""
    return np.reshape(w, (-1,))


def identity(w):
    return np.asarray(w)


@dataclass(frozen=True)
class Rule:
    """One official key -> one Flax path ("a/b/kernel") with a layout transform."""

    flax_path: str
    transform: Callable[[np.ndarray], np.ndarray] = identity


def prefixed(block_table: Mapping[str, Rule], torch_prefix: str, flax_prefix: str) -> dict[str, Rule]:
    """Instantiates a per-block table under a module prefix ("ir_sa.0." -> "ir_sa_0/")."""
    return {f"{torch_prefix}.{k}": Rule(f"{flax_prefix}/{r.flax_path}", r.transform)
            for k, r in block_table.items()}


def load_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads a state dict from ``.npz`` (no torch needed) or a PyTorch ``.pth``/``.pt``/``.model``.

    Nested checkpoints (``{'model': sd}``, ``{'state_dict': sd}``) and ``module.`` prefixes
    (DataParallel) are unwrapped.
    """
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"{path}: no such file")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                sd = {k: z[k] for k in z.files}
        else:
            sd = _load_torch(path)
    except ConversionError:
        raise
    except Exception as e:  # truncated/corrupt archives raise many different types
        raise ConversionError(f"{path}: cannot read state dict ({type(e).__name__}: {e})") from None
    return {k.removeprefix("module."): v for k, v in sd.items()}


def _load_torch(path: Path) -> dict[str, np.ndarray]:
    try:
        import torch  # optional dependency, only to read .pth files
    except ImportError:
        raise ConversionError(
            f"{path}: reading a PyTorch checkpoint needs torch (pip install torch), "
            "or pass an .npz of the state dict") from None
    obj = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("model", "state_dict", "params"):
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping):
        raise ConversionError(f"{path}: expected a state dict, got {type(obj).__name__}")
    return {k: v.detach().cpu().numpy() for k, v in obj.items() if hasattr(v, "detach")}


def convert(state: Mapping[str, np.ndarray], table: Mapping[str, Rule], expected_params,
            model_name: str = "model") -> dict:
    """Applies ``table`` to ``state``; ``expected_params`` is the Flax param tree (or its shapes).

    Returns the nested Flax ``params`` dict (float32 NumPy arrays).
    """
    missing = sorted(set(table) - set(state))
    extra = sorted(set(state) - set(table))
    expected = {"/".join(k): v for k, v in traverse_util.flatten_dict(expected_params).items()}
    targets = {r.flax_path for r in table.values()}
    unfilled = sorted(set(expected) - targets)
    problems = []
    if missing:
        problems.append(f"official keys the {model_name} table expects but the file lacks: {missing}")
    if extra:
        problems.append(f"keys in the file that {model_name} does not use: {extra}")
    if unfilled:
        problems.append(f"Flax parameters the table leaves unfilled: {unfilled}")
    flat, bad_shapes = {}, []
    for key, rule in table.items():
        if key not in state:
            continue
        value = rule.transform(np.asarray(state[key], dtype=np.float32))
        want = tuple(expected[rule.flax_path].shape) if rule.flax_path in expected else None
        if want is None:
            bad_shapes.append(f"{key} -> {rule.flax_path}: no such Flax parameter")
        elif value.shape != want:
            bad_shapes.append(f"{key} {tuple(np.shape(state[key]))} -> {rule.flax_path}: "
                              f"got {value.shape}, model expects {want}")
        flat[tuple(rule.flax_path.split("/"))] = value
    if bad_shapes:
        problems.append("shape mismatches: " + "; ".join(bad_shapes))
    if problems:
        raise ConversionError(f"cannot convert to {model_name}:\n  " + "\n  ".join(problems))
    return traverse_util.unflatten_dict(flat)
