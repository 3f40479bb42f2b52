"""Model registry: name -> Linen module builder, loss hook and training stages.

A model plugs into the one trainer through three hooks (the seam of google-research/vdm and
nanodo): ``build(model_config) -> nn.Module``, ``loss_fn(module, config) -> f(params, batch,
rng) -> (loss, metrics)``, and ``predict(module, params, ir, vi) -> fused``. Multi-stage recipes
(CrossFuse: two auto-encoders, then the fusion net with the encoders frozen; DMFuse: a DDPM
UNet, then the fusion head with the UNet frozen) are named ``Stage``s: a stage lists the
parameter subtrees it keeps frozen and the stage whose checkpoint it starts from
(``config.init_from`` names that checkpoint).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import flax.linen as nn

from jaxfuse.models import siba


@dataclasses.dataclass(frozen=True)
class Stage:
    """One training stage: regexes over "a/b/kernel" parameter paths that stay frozen."""

    name: str
    freeze: tuple[str, ...] = ()
    starts_from: str | None = None  # the stage whose checkpoint config.init_from should name


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    name: str
    build: Callable[..., nn.Module]
    loss_fn: Callable
    stages: dict[str, Stage]

    def predict(self, module: nn.Module, params, ir, vi):
        """Fused image(s) from NHWC ir/vi in [0, 1]; unbounded, clamp for display."""
        return module.apply({"params": params}, ir, vi)


def _siba_loss_fn(module, config):
    weights = tuple(config.loss.weights)

    def loss_fn(params, batch, rng):
        del rng  # SIBA is deterministic
        fused = module.apply({"params": params}, batch["ir"], batch["vi"])
        loss, terms = siba.siba_loss(fused, batch["ir"], batch["vi"], weights)
        return loss, terms

    return loss_fn


REGISTRY: dict[str, ModelSpec] = {
    "siba": ModelSpec(
        name="siba",
        build=lambda model_config, dtype="float32": siba.SIBA(**model_config, dtype=dtype),
        loss_fn=_siba_loss_fn,
        stages={"fusion": Stage("fusion")},
    ),
}


def get(name: str) -> ModelSpec:
    if name not in REGISTRY:
        raise KeyError(f"unknown model {name!r}; available: {sorted(REGISTRY)}")
    return REGISTRY[name]
