"""The official PyTorch implementations, timed side by side (``bench --against-official PATH``).

Nothing of the official code is in jaxfuse: each model's module here imports it at run time
from a local clone of the official repository, builds the module the official test (and, where
the official code can train, train) scripts build, and returns closures that run it eagerly on
the CPU with the same inputs and thread count as the jaxfuse case. torch (and whatever the
official code imports) is only needed with the flag.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import types
from pathlib import Path

import numpy as np


class OfficialError(RuntimeError):
    """The official code could not be imported or run (a one-line reason)."""


def threads() -> int:
    """The CPU cores this process may use (XLA:CPU's thread pool uses all of them)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def torch_cpu():
    """torch with ``threads()`` intra-op threads and ``.cuda()`` a no-op (the official code calls it)."""
    try:
        import torch
    except ImportError as e:
        raise OfficialError("--against-official needs torch (pip install torch)") from e
    torch.set_num_threads(threads())
    torch.Tensor.cuda = lambda self, *a, **k: self
    torch.nn.Module.cuda = lambda self, *a, **k: self
    return torch


@contextlib.contextmanager
def official_imports(repo: str | Path, required: str, stubs: dict[str, dict] | None = None):
    """Import from ``repo`` (which must contain ``required``); modules in ``stubs`` that are not
    installed are replaced by namespaces holding the given attributes (e.g. timm's init helper)."""
    repo = Path(repo).expanduser().resolve()
    if not (repo / required).is_file():
        raise OfficialError(f"{repo}: not a clone of the official repository ({required} not found)")
    absent = {}  # top-level package -> not installed
    for name, attrs in (stubs or {}).items():
        top = name.split(".")[0]
        if top not in absent:
            absent[top] = top not in sys.modules and importlib.util.find_spec(top) is None
        if absent[top] and name not in sys.modules:
            module = sys.modules[name] = types.ModuleType(name)
            module.__dict__.update(attrs)
    sys.path.insert(0, str(repo))
    try:
        yield
    except ImportError as e:
        raise OfficialError(f"{repo}: importing the official code failed: {e}") from e
    finally:
        sys.path.remove(str(repo))


def nchw(torch, x_BxHxWxC: np.ndarray, scale: float = 1.0, offset: float = 0.0):
    """A float32 NCHW tensor from an NHWC array: x * scale + offset."""
    return torch.from_numpy(np.ascontiguousarray(np.transpose(x_BxHxWxC * scale + offset, (0, 3, 1, 2)), np.float32))
