"""The seam between a model and the shared tools: ``ModelSpec`` and its training ``Stage``s.

Each ``jaxfuse/models/<model>.py`` ends with its own ``SPEC = ModelSpec(...)``; the trainer,
fuse, evaluate, convert and bench only ever call these hooks (the vdm / nanodo seam), so a
model's quirks (padding, tiling, output stretch, rounding, rng) live in its own file.

Model state is a dict of Flax variable collections, ``{"params": ..., "batch_stats": ...}``,
from init to checkpoint to predict. Collections other than ``params`` are updated by the loss
hook (BatchNorm statistics in training mode) and carried in the train state beside ``params``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import traverse_util

from jaxfuse.data import color

Variables = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Stage:
    """One training stage.

    ``freeze``: regexes over "a/b/kernel" variable paths that stay fixed (parameters and, for
    the same paths, BatchNorm statistics). ``starts_from``: the stage whose checkpoint
    ``config.init_from`` should name. ``data``: "pairs" (ir + vi) or "images" (single images).
    """

    name: str
    freeze: tuple[str, ...] = ()
    starts_from: str | None = None
    data: str = "pairs"


def _apply(module: nn.Module, variables: Variables, ir, vi, rng=None):
    del rng
    return module.apply(variables, ir, vi)


def _init(module: nn.Module, rng, ir, vi) -> Variables:
    return dict(module.init(rng, ir, vi))


def _truncate(fused):
    return color.to_uint8(fused, xp=jnp)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Hooks of one model.

    * ``build(model_config: dict, dtype: str) -> nn.Module``
    * ``loss_fn(module, config) -> f(variables, batch, rng) -> (loss, (metrics, updated))``,
      ``updated`` being the new non-``params`` collections (``{}`` when there are none).
    * ``init(module, rng, ir, vi) -> variables`` (every subtree of every stage).
    * ``predict(module, variables, ir, vi, rng) -> fused``: NHWC in [0, 1], the model's own
      padding/tiling inside; output float32, meant to lie in [0, 1].
    * ``quantize(fused) -> uint8``: the official test script's rounding (default truncation).
    * ``converter``: module name providing ``convert(paths) -> (variables, model_config)``
      and ``parity_arrays(variables, model_config, golden) -> {golden key: array}``.
    * ``official``: module name providing ``load(repo)`` -> an object with the ``torch`` module it
      uses and ``infer(ir, vi)`` / ``train(ir, vi, stage)`` returning closures that run the
      official PyTorch code (``bench --against-official``; ``train`` raises ``OfficialError`` where
      there is no official step); None where there is no official implementation.
    * ``min_size``: the smallest H and W ``predict`` accepts.
    * ``required``: {variable path prefix: what to tell a user whose checkpoint lacks it}.
    """

    name: str
    build: Callable[..., nn.Module]
    loss_fn: Callable
    stages: dict[str, Stage]
    init: Callable = _init
    predict: Callable = _apply
    quantize: Callable = _truncate
    converter: str | None = None
    official: str | None = None
    min_size: int = 1
    required: dict[str, str] = dataclasses.field(default_factory=dict)

    def stage(self, name: str) -> Stage:
        if name not in self.stages:
            raise ValueError(f"{self.name} has no stage {name!r}; stages: {sorted(self.stages)}")
        return self.stages[name]

    def check_complete(self, module: nn.Module, variables: Variables, source: str = "checkpoint") -> None:
        """Raises ValueError if ``variables`` lacks any variable the model needs, saying what and why."""
        x = jnp.zeros((1, max(32, self.min_size), max(32, self.min_size), 1), jnp.float32)
        need = jax.eval_shape(lambda: self.init(module, jax.random.key(0), x, x))
        have = {"/".join(k) for k in traverse_util.flatten_dict(dict(variables))}
        missing = sorted(p for p in ("/".join(k) for k in traverse_util.flatten_dict(dict(need))) if p not in have)
        if missing:
            inner = ["/".join(p.split("/")[1:]) for p in missing]
            why = next((msg for prefix, msg in self.required.items() if any(p.startswith(prefix) for p in inner)),
                       f"it lacks {len(missing)} variables of the {self.name} model, e.g. {missing[:3]}")
            raise ValueError(f"{source}: {why}")

    def check_size(self, height: int, width: int, what: str = "image") -> None:
        """Raises ValueError naming the minimum if ``what`` is too small for this model."""
        if min(height, width) < self.min_size:
            raise ValueError(f"{what} is {width}x{height} (W x H); {self.name} needs at least "
                             f"{self.min_size}x{self.min_size}")
