"""Multi-host training over loopback: 2 processes x 2 CPU devices == 1 process x 4 devices.

Two subprocesses run ``train.train`` on the tiny synthetic config (plus random crops, flips and
rotations) with ``distributed="on"``; ``jax.distributed.initialize()`` is configured only
through the ``JAX_COORDINATOR_ADDRESS`` / ``JAX_NUM_PROCESSES`` / ``JAX_PROCESS_ID`` environment
variables (the documented launch path, see ``jaxfuse/sharding.py``), and the coordinator binds
127.0.0.1 at a free port. (XLA's Gloo CPU collectives connect the processes at the address the
host name resolves to; jax offers no setting for it.) Both processes write into one shared
workdir (every process takes part in the Orbax save; the last step also writes the image
summary through ``process_allgather``), then each writes its final parameters with
``np.savez``. The test compares them and the per-step losses with a single-process run over
the pytest process's 4 fake devices (tests/conftest.py), and reloads the jointly written
checkpoint in this one process. The children are killed after ``TIMEOUT_S`` or as soon as one
of them fails.
"""

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import traverse_util

from helpers import tiny_config
from jaxfuse import checkpoint, sharding, train
from jaxfuse.data import pipeline
from jaxfuse.data.synthetic import SyntheticPairs

TESTS = Path(__file__).resolve().parent
NUM_PROCESSES, LOCAL_DEVICES, NUM_STEPS = 2, 2, 2
TIMEOUT_S = 240

# Runs in each subprocess: argv = workdir, output .npz path, rendezvous folder.
DRIVER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    import jax
    import numpy as np
    from flax import traverse_util
    from jaxfuse import train
    from test_multihost import compile_then_meet, make_config

    workdir, out, rendezvous = sys.argv[1:4]
    train._loop = compile_then_meet(train._loop, rendezvous)
    config = make_config(distributed="on")
    state, metrics = train.train(config, workdir)
    assert jax.process_count() == {procs} and jax.device_count() == {devices}, jax.devices()
    assert len(jax.local_devices()) == {local}
    params = traverse_util.flatten_dict(jax.device_get(state["params"]), sep="/")
    np.savez(out, step=int(jax.device_get(state["step"])), losses=[m["loss"] for m in metrics], **params)
    jax.distributed.shutdown()
""").format(tests=str(TESTS), procs=NUM_PROCESSES, devices=NUM_PROCESSES * LOCAL_DEVICES,
            local=LOCAL_DEVICES)


def make_config(distributed: str):
    """The tiny config, with random crops, flips and rotations (the global batch must not
    depend on the process count, augmentations included)."""
    config = tiny_config(num_steps=NUM_STEPS, checkpoint_every=NUM_STEPS)
    config.data.update(crop_margin=0, flips=True, rot90=True)
    config.distributed = distributed
    return config


def compile_then_meet(loop, rendezvous: str, timeout_s: float = TIMEOUT_S):
    """Wraps ``train._loop``: compiles the step ahead of time, then waits for every process.

    XLA's Gloo CPU collectives give a peer only 30 s (fixed) to join a collective's first
    call; on a loaded machine one process can finish compiling the step much later than the
    other. The file rendezvous lines them up before the first step runs.
    """

    def wrapped(config, workdir, mgr, state, data_iter, step_fn, predict_fn, data_sharding, num_steps):
        p = config.data.patch_size
        batch = jax.ShapeDtypeStruct((config.train.batch_size, p, p, 1), np.float32, sharding=data_sharding)
        step_fn.lower(state, {"ir": batch, "vi": batch}).compile()  # reused by the first call
        folder = Path(rendezvous)
        (folder / f"compiled{jax.process_index()}").touch()
        deadline = time.monotonic() + timeout_s
        while len(list(folder.glob("compiled*"))) < jax.process_count():
            if time.monotonic() > deadline:
                raise TimeoutError(f"not every process compiled the step within {timeout_s} s")
            time.sleep(0.1)
        return loop(config, workdir, mgr, state, data_iter, step_fn, predict_fn, data_sharding, num_steps)

    return wrapped


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _child_env(port: int, process_id: int) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JAX_", "XLA_", "SLURM_", "OMPI_", "TPU_")) and "proxy" not in k.lower()}
    env.update(
        JAX_PLATFORMS="cpu", XLA_FLAGS=f"--xla_force_host_platform_device_count={LOCAL_DEVICES}",
        JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_COORDINATOR_BIND_ADDRESS=f"127.0.0.1:{port}",
        JAX_NUM_PROCESSES=str(NUM_PROCESSES), JAX_PROCESS_ID=str(process_id),
        PYTHONPATH=os.pathsep.join([str(TESTS.parent), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        TF_CPP_MIN_LOG_LEVEL="2")
    # Shares compiled programs with the other tests (tests/conftest.py) when they set a cache.
    for k in ("JAX_COMPILATION_CACHE_DIR", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
              "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"):
        if k in os.environ:
            env[k] = os.environ[k]
    return env


def _run_two_processes(tmp_path: Path) -> list[Path]:
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    workdir, port = tmp_path / "multi", _free_loopback_port()
    rendezvous = tmp_path / "rendezvous"
    rendezvous.mkdir()
    outs = [tmp_path / f"params{i}.npz" for i in range(NUM_PROCESSES)]
    logs = [open(tmp_path / f"process{i}.log", "w") for i in range(NUM_PROCESSES)]  # noqa: SIM115
    procs, deadline = [], time.monotonic() + TIMEOUT_S
    try:
        for i in range(NUM_PROCESSES):
            procs.append(subprocess.Popen(
                [sys.executable, str(driver), str(workdir), str(outs[i]), str(rendezvous)], env=_child_env(port, i),
                cwd=tmp_path, stdout=logs[i], stderr=subprocess.STDOUT, start_new_session=True))
        while any(p.poll() is None for p in procs):
            failed = [p for p in procs if p.returncode not in (None, 0)]
            if failed or time.monotonic() > deadline:
                break  # one process died (its peer would wait for it) or the run hangs
            time.sleep(0.5)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        for p in procs:
            p.wait(timeout=30)
        for f in logs:
            f.close()
    codes = [p.returncode for p in procs]
    if codes != [0] * NUM_PROCESSES:
        tails = "\n".join(f"--- process {i} (exit {c}) ---\n" + (tmp_path / f"process{i}.log").read_text()[-4000:]
                          for i, c in enumerate(codes))
        timed_out = "" if time.monotonic() <= deadline else f" (killed after {TIMEOUT_S} s)"
        pytest.fail(f"multi-host run failed{timed_out}: exit codes {codes}\n{tails}")
    return outs


def test_global_batch_does_not_depend_on_the_process_count():
    """Each process's share, concatenated in process order, is the 1-process batch, crops included."""
    src = SyntheticPairs(12, 48, 48)
    kw = dict(batch_size=4, patch=32, margin=0, flips=True, rot90=True, seed=3)
    for count in (2, 4):
        one = iter(pipeline.train_dataset(src, **kw))
        split = [iter(pipeline.train_dataset(src, **kw, process_index=i, process_count=count))
                 for i in range(count)]
        for _ in range(4):  # crosses an epoch boundary (3 batches per epoch)
            expected, shares = next(one), [next(it) for it in split]
            for key in ("ir", "vi"):
                np.testing.assert_array_equal(np.concatenate([s[key] for s in shares]), expected[key])


def test_two_processes_of_two_devices_equal_one_process_of_four(tmp_path):
    assert jax.device_count() >= 4, "conftest sets 4 host devices"
    outs = _run_two_processes(tmp_path)

    mesh = sharding.make_mesh(jax.devices()[:4])
    state, metrics = train.train(make_config("off"), str(tmp_path / "single"), mesh=mesh)
    single = traverse_util.flatten_dict(jax.device_get(state["params"]), sep="/")

    results = [dict(np.load(o)) for o in outs]
    for r in results:
        assert int(r.pop("step")) == NUM_STEPS
        np.testing.assert_allclose(r.pop("losses"), [m["loss"] for m in metrics], rtol=1e-5)
        assert sorted(r) == sorted(single)
        for k, v in single.items():
            np.testing.assert_allclose(r[k], v, atol=1e-5, rtol=0, err_msg=k)
    # Both processes hold bit-identical replicas.
    for k in single:
        np.testing.assert_array_equal(results[0][k], results[1][k], err_msg=k)

    # The jointly written checkpoint is complete and readable by a single process.
    saved, saved_config = checkpoint.load_variables(tmp_path / "multi")
    saved = saved["params"]
    assert saved_config["distributed"] == "on"
    for k, v in traverse_util.flatten_dict(saved, sep="/").items():
        np.testing.assert_array_equal(v, results[0][k], err_msg=k)
    data_states = (tmp_path / "multi" / "checkpoints" / str(NUM_STEPS) / "data").glob("*.json")
    assert sorted(p.name for p in data_states) == [f"process_{i}-of-{NUM_PROCESSES}.json"
                                                   for i in range(NUM_PROCESSES)]
