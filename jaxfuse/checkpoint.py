"""Orbax checkpoints: train state + Grain iterator state + config, so a checkpoint describes itself.

Layout: ``WORKDIR/checkpoints/<step>/{state,data,config}``. ``state`` holds the model's
variable collections (``params``, and ``batch_stats`` for models with BatchNorm) and, for
training checkpoints, ``opt_state`` and ``step``; ``config`` is the ml_collections config as
JSON; ``data`` is the iterator state (absent in converted checkpoints).
"""

from __future__ import annotations

from pathlib import Path

import grain
import jax
import orbax.checkpoint as ocp


class CheckpointError(ValueError):
    """A checkpoint path that does not hold a jaxfuse checkpoint."""


def manager(directory, keep: int = 3) -> ocp.CheckpointManager:
    directory = Path(directory).absolute()
    return ocp.CheckpointManager(directory, options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True))


def save(mgr: ocp.CheckpointManager, step: int, state, config: dict, data_iter=None) -> None:
    """Saves asynchronously; every process must call it (multi-host)."""
    items = {"state": ocp.args.StandardSave(state), "config": ocp.args.JsonSave(config)}
    if data_iter is not None:
        items["data"] = grain.checkpoint.CheckpointSave(data_iter)
    mgr.save(step, args=ocp.args.Composite(**items))


def restore(mgr: ocp.CheckpointManager, step: int, abstract_state, data_iter=None):
    """Restores ``state`` onto the shardings in ``abstract_state`` and the iterator in place."""
    items = {"state": ocp.args.StandardRestore(abstract_state)}
    if data_iter is not None:
        items["data"] = grain.checkpoint.CheckpointRestore(data_iter)
    return mgr.restore(step, args=ocp.args.Composite(**items))["state"]


def resolve(path) -> tuple[Path, int]:
    """Finds (manager directory, step) for a workdir, a checkpoints directory or one step directory."""
    path = Path(path).absolute()
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint or directory")
    if (path / "checkpoints").is_dir():
        path = path / "checkpoints"
    if (path / "state").is_dir() and path.name.isdigit():
        return path.parent, int(path.name)
    steps = sorted(int(p.name) for p in path.iterdir() if p.name.isdigit() and (p / "state").is_dir())
    if not steps:
        raise CheckpointError(f"{path}: not a jaxfuse checkpoint (expected a training workdir, "
                              "its checkpoints/ folder, or one checkpoints/<step> folder)")
    return path, steps[-1]


def load_variables(path) -> tuple[dict, dict]:
    """Loads (variables, config dict) from any checkpoint ``path`` (see :func:`resolve`), on the host.

    ``variables`` holds every collection of the state (``params``, ``batch_stats``...), not the
    optimiser state or the step.
    """
    directory, step = resolve(path)
    # Reading needs no CheckpointManager (whose read_only mode warns "Given directory is read
    # only" on every call): a plain Checkpointer restores the one step directory and writes nothing.
    reader = ocp.Checkpointer(ocp.CompositeCheckpointHandler())
    # A saved sharding over devices this process lacks (another topology, e.g. a multi-host
    # run's) cannot be rebuilt; such arrays are restored onto one local device instead.
    fallback = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    try:
        restored = reader.restore(directory / str(step), args=ocp.args.Composite(
            state=ocp.args.StandardRestore(fallback_sharding=fallback), config=ocp.args.JsonRestore()))
    except Exception as e:
        raise CheckpointError(f"{directory / str(step)}: cannot restore checkpoint "
                              f"({type(e).__name__}: {e})") from None
    finally:
        reader.close()
    state = restored["state"]
    return {k: v for k, v in state.items() if k not in ("step", "opt_state")}, dict(restored["config"])
