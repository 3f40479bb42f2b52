"""Parity with golden tensors from the official PyTorch code (``../shared/reference/<model>``).

Model-agnostic: the model's converter module supplies ``parity_arrays(variables, model_config,
golden) -> {golden key: my array in the golden's layout}`` (NCHW maps, (T, L, D) tokens); the
harness compares each against the golden array, stored whole or as a summary (per-channel
mean/std and three windows), with one absolute error per key, as the reference READMEs specify.
"""

from __future__ import annotations

import numpy as np

from jaxfuse.convert import converter


def max_error(golden, key: str, mine: np.ndarray) -> float:
    """Largest absolute error of ``mine`` against golden ``key``, whole or through its summary.

    Summaries: 4-D (N, C, H, W) maps have per-channel statistics over H x W and (y0, x0, h, w)
    windows; 3-D (T, L, D) token tensors have statistics over L and (start, length) windows.
    """
    m = np.asarray(mine, np.float64)
    if key in golden.files:
        if golden[key].shape != m.shape:
            raise AssertionError(f"{key}: shape {m.shape}, golden {golden[key].shape}")
        return float(np.abs(m - golden[key]).max())
    shape = tuple(golden[key + "/shape"])
    if shape != m.shape:
        raise AssertionError(f"{key}: shape {m.shape}, golden {shape}")
    axes = (2, 3) if m.ndim == 4 else (1,)
    errors = [np.abs(m.mean(axis=axes) - golden[key + "/mean"]).max(),
              np.abs(m.std(axis=axes) - golden[key + "/std"]).max()]
    for name, box in zip(("tl", "c", "br"), golden[key + "/win_boxes"]):
        if m.ndim == 4:
            y0, x0, h, w = box
            win = m[:, :, y0:y0 + h, x0:x0 + w]
        else:
            start, length = box
            win = m[:, start:start + length, :]
        errors.append(np.abs(win - golden[f"{key}/win_{name}"]).max())
    return float(max(errors))


def compare(model_name: str, variables, model_config: dict, golden) -> dict[str, float]:
    """Max abs error per golden key the model's hook produces, in the hook's (forward) order."""
    arrays = converter(model_name).parity_arrays(variables, model_config, golden)
    return {key: max_error(golden, key, mine) for key, mine in arrays.items()}
