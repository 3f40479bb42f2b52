"""Official PyTorch state dict -> Flax variables through an explicit name-mapping table.

A table maps each official key to a Flax variable (collection + path, e.g. ``params`` or
BatchNorm ``batch_stats``) and a layout transform, or to an ``Ignore`` rule naming why the
official forward never uses it (optionally checking its value, e.g. a fixed kernel).
Conversion is strict: every official key must be consumed and every Flax variable filled, with
the expected shape; otherwise a ``ConversionError`` lists the offending keys.
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
    """One official key -> one Flax variable ("a/b/kernel" in ``collection``) with a layout transform."""

    flax_path: str
    transform: Callable[[np.ndarray], np.ndarray] = identity
    collection: str = "params"

    def under(self, flax_prefix: str) -> "Rule":
        return Rule(f"{flax_prefix}/{self.flax_path}", self.transform, self.collection)


@dataclass(frozen=True)
class Ignore:
    """An official key that the official forward pass never uses: consumed, not converted.

    ``check(value) -> bool`` (with ``expected``, its description) verifies a value the model
    relies on without storing it, e.g. a fixed averaging kernel; a mismatch is an error.
    """

    reason: str
    check: Callable[[np.ndarray], bool] | None = None
    expected: str = ""

    def under(self, flax_prefix: str) -> "Ignore":
        del flax_prefix
        return self


def prefixed(block_table: Mapping[str, Rule | Ignore], torch_prefix: str, flax_prefix: str) -> dict:
    """Instantiates a per-block table under a module prefix ("ir_sa.0." -> "ir_sa_0/")."""
    return {f"{torch_prefix}.{k}": r.under(flax_prefix) for k, r in block_table.items()}


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


def convert(state: Mapping[str, np.ndarray], table: Mapping[str, Rule | Ignore], expected_variables,
            model_name: str = "model", source: str = "the file") -> dict[str, dict]:
    """Applies ``table`` to ``state``; ``expected_variables`` is the Flax variables tree (or its shapes).

    Returns ``{collection: nested dict}`` of float32 NumPy arrays (``params``, ``batch_stats``...).
    """
    missing = sorted(set(table) - set(state))
    extra = sorted(set(state) - set(table))
    expected = {"/".join(k): v for k, v in traverse_util.flatten_dict(dict(expected_variables)).items()}
    rules = {k: r for k, r in table.items() if isinstance(r, Rule)}
    targets = {f"{r.collection}/{r.flax_path}" for r in rules.values()}
    unfilled = sorted(set(expected) - targets)
    problems = []
    if missing:
        problems.append(f"official keys the {model_name} table expects but {source} lacks: {missing}")
    if extra:
        problems.append(f"keys in {source} that {model_name} does not use: {extra}")
    if unfilled:
        problems.append(f"Flax variables the table leaves unfilled: {unfilled}")
    for key, rule in table.items():
        if isinstance(rule, Ignore) and rule.check and key in state and not rule.check(np.asarray(state[key])):
            problems.append(f"{key} in {source} should be {rule.expected} ({rule.reason}), but is not")
    flat, bad_shapes = {}, []
    for key, rule in rules.items():
        if key not in state:
            continue
        value = rule.transform(np.asarray(state[key], dtype=np.float32))
        target = f"{rule.collection}/{rule.flax_path}"
        want = tuple(expected[target].shape) if target in expected else None
        if want is None:
            bad_shapes.append(f"{key} -> {target}: no such Flax variable")
        elif value.shape != want:
            bad_shapes.append(f"{key} {tuple(np.shape(state[key]))} -> {target}: "
                              f"got {value.shape}, model expects {want}")
        flat[tuple(target.split("/"))] = value
    if bad_shapes:
        problems.append("shape mismatches: " + "; ".join(bad_shapes))
    if problems:
        raise ConversionError(f"cannot convert {source} to {model_name}:\n  " + "\n  ".join(problems))
    return traverse_util.unflatten_dict(flat)


def expected_variables(model_name: str, model_config: dict, size: int = 32) -> dict:
    """The shapes of every Flax variable of ``model_name`` (``jax.eval_shape`` of its init)."""
    import jax  # noqa: PLC0415
    import jax.numpy as jnp  # noqa: PLC0415

    from jaxfuse import models  # noqa: PLC0415

    spec = models.get(model_name)
    module = spec.build(dict(model_config))
    dummy = jnp.zeros((1, size, size, 1), jnp.float32)
    return jax.eval_shape(lambda: spec.init(module, jax.random.key(0), dummy, dummy))


def load_all(sources) -> list[tuple[str, dict]]:
    """[(name, state dict)] for a list of paths (or mappings, named by position)."""
    return [(f"state dict #{i + 1}", dict(s)) if isinstance(s, Mapping) else (str(s), load_state_dict(s))
            for i, s in enumerate(sources)]
