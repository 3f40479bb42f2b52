"""Model registry: it only lists the models; each model file owns its ``SPEC`` (see ``spec.py``)."""

from jaxfuse.models import crossfuse, dmfuse, refinefuse, siba
from jaxfuse.models.spec import ModelSpec, Stage

REGISTRY: dict[str, ModelSpec] = {m.SPEC.name: m.SPEC for m in (siba, crossfuse, dmfuse, refinefuse)}

__all__ = ["REGISTRY", "ModelSpec", "Stage", "get"]


def get(name: str) -> ModelSpec:
    if name not in REGISTRY:
        raise KeyError(f"unknown model {name!r}; available: {sorted(REGISTRY)}")
    return REGISTRY[name]
