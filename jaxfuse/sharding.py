"""Device mesh and shardings: batch on a ``data`` axis, parameters replicated.

The same code runs on one CPU, N host devices (``XLA_FLAGS=--xla_force_host_platform_device_count=N``),
a GPU, or several hosts (``jax.distributed.initialize()``, auto-detected on TPU pods, SLURM and
Open MPI, or configured by the ``JAX_COORDINATOR_ADDRESS`` / ``JAX_NUM_PROCESSES`` /
``JAX_PROCESS_ID`` environment variables).
"""

import importlib.util
import os
from pathlib import Path

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

DATA_AXIS = "data"
_DISTRIBUTED_ENV = ("JAX_COORDINATOR_ADDRESS", "SLURM_JOB_ID", "OMPI_COMM_WORLD_SIZE", "TPU_WORKER_HOSTNAMES")


def maybe_initialize_distributed(mode: str = "auto") -> None:
    """Starts multi-host JAX: ``mode`` is "auto" (when the environment names a cluster), "on" or "off"."""
    if mode == "off" or (mode == "auto" and not any(v in os.environ for v in _DISTRIBUTED_ENV)):
        return
    if mode not in ("on", "auto"):
        raise ValueError(f"distributed must be 'auto', 'on' or 'off', got {mode!r}")
    # jax.distributed.initialize() reads JAX_COORDINATOR_ADDRESS itself, but not these two.
    count, index = os.environ.get("JAX_NUM_PROCESSES"), os.environ.get("JAX_PROCESS_ID")
    jax.distributed.initialize(num_processes=None if count is None else int(count),
                               process_id=None if index is None else int(index))


# PCI vendors of the accelerators JAX has runtimes for: NVIDIA, AMD, Google (TPU).
_ACCELERATOR_VENDORS = {"0x10de", "0x1002", "0x1ae0"}


def skip_tpu_probe_on_cpu_only_machines() -> None:
    """Without ``JAX_PLATFORMS``, JAX first tries the TPU runtime and, on every machine without
    one, logs "Unable to initialize backend 'tpu'". Where neither an accelerator on the PCI bus
    nor libtpu is present, only the CPU can come up anyway: ask for it directly. Machines with a
    GPU or TPU (or no readable PCI list, e.g. macOS) keep JAX's own discovery."""
    pci = Path("/sys/bus/pci/devices")
    if "JAX_PLATFORMS" in os.environ or not pci.is_dir() or importlib.util.find_spec("libtpu"):
        return
    for device in pci.iterdir():
        try:
            if (device / "vendor").read_text().strip() in _ACCELERATOR_VENDORS:
                return
        except OSError:
            return
    jax.config.update("jax_platforms", "cpu")


def make_mesh(devices=None) -> jax.sharding.Mesh:
    """A 1-D mesh over ``devices`` (default: every device of every process).

    Axis type Auto: model code is written as single-device code and XLA (GSPMD) inserts the
    all-reduces; no op in the models needs explicit sharding annotations.
    """
    devices = jax.devices() if devices is None else devices
    return jax.make_mesh((len(devices),), (DATA_AXIS,), axis_types=(jax.sharding.AxisType.Auto,),
                         devices=devices)


def batch_sharding(mesh) -> NamedSharding:
    return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def global_batch(local_batch: dict, sharding: NamedSharding) -> dict:
    """Assembles each process's local batch into one global array sharded on ``data``."""
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)),
                        local_batch)
