"""The trainer: learning on synthetic data, exact resume, sharded == single device, NaN stop, CLI."""

import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from helpers import tiny_config
from jaxfuse import checkpoint, sharding, train


def _params(state):
    return jax.device_get(state["params"])


def _assert_trees_close(a, b, atol):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(x, y, atol=atol, rtol=0)


def test_smoke_training_reduces_the_loss(tmp_path):
    state, metrics = train.train(tiny_config(num_steps=24, checkpoint_every=100), str(tmp_path))
    losses = [m["loss"] for m in metrics]
    assert len(losses) == 24 and int(state["step"]) == 24
    assert np.mean(losses[-4:]) < 0.8 * np.mean(losses[:4]), losses
    assert (tmp_path / "checkpoints" / "24").is_dir()  # the last step is always saved


def test_kill_and_resume_matches_an_uninterrupted_run(tmp_path, monkeypatch):
    config = tiny_config(num_steps=4)
    full, _ = train.train(config, str(tmp_path / "full"))

    real_save = checkpoint.save

    def save_then_die(mgr, step, *args, **kwargs):
        real_save(mgr, step, *args, **kwargs)
        if step == 2:
            mgr.wait_until_finished()
            raise KeyboardInterrupt("simulated kill after the step-2 checkpoint")

    monkeypatch.setattr(checkpoint, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train.train(config, str(tmp_path / "resumed"))
    monkeypatch.setattr(checkpoint, "save", real_save)
    resumed, metrics = train.train(config, str(tmp_path / "resumed"))
    assert len(metrics) == 2  # only steps 3 and 4 ran again
    _assert_trees_close(_params(full), _params(resumed), atol=0)


def test_sharded_step_on_4_devices_equals_1_device(tmp_path):
    assert jax.device_count() >= 4, "conftest sets 4 host devices"
    config = tiny_config(num_steps=2, checkpoint_every=100)
    four, _ = train.train(config, str(tmp_path / "four"), mesh=sharding.make_mesh(jax.devices()[:4]))
    one, _ = train.train(config, str(tmp_path / "one"), mesh=sharding.make_mesh(jax.devices()[:1]))
    _assert_trees_close(_params(four), _params(one), atol=1e-5)


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    config = tiny_config(num_steps=6, checkpoint_every=1, learning_rate=1e30, clip_grad_norm=0.0)
    with pytest.raises(train.NonFiniteLossError, match="non-finite"):
        train.train(config, str(tmp_path))
    steps = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
    assert steps and steps[-1] < 6
    variables, _ = checkpoint.load_variables(tmp_path)
    params = variables["params"]
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(params))


def test_cli_output_rerun_and_one_line_config_errors(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "JAX_PLATFORMS"}  # as a user runs it
    env["XLA_FLAGS"] = ""
    base = [sys.executable, "-m", "jaxfuse.train", "--config", "configs/siba.py:smoke,tiny",
            "--workdir", str(tmp_path)]
    cmd = base + ["--config.train.num_steps=2", "--config.data.patch_size=32", "--config.data.synthetic_size=40"]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "checkpoints" / "2").is_dir()
    # For a person on stdout: header, progress, summary with what to run next.
    assert "jaxfuse.train: siba, stage fusion, float32" in run.stdout and "synthetic: 64 pairs" in run.stdout
    assert "step 2/2  loss " in run.stdout and "done: 2 steps in " in run.stdout, run.stdout
    for line in (f"checkpoint   {tmp_path}/checkpoints/2", f"tensorboard --logdir {tmp_path}",
                 f"python -m jaxfuse.fuse --checkpoint {tmp_path} ", f"python -m jaxfuse.evaluate --checkpoint {tmp_path} "):
        assert line in run.stdout, run.stdout
    # Library chatter goes to the log file, not the console; no TPU probe on a CPU-only machine.
    assert run.stderr.strip() == "", run.stderr[-3000:]
    assert "Found 0 checkpoint steps" in (tmp_path / "train.log").read_text()
    again = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert again.returncode == 0 and "already complete: step 2 of 2" in again.stdout, again.stdout + again.stderr
    bad = subprocess.run(base + ["--config.train.batch_sizee=1"], env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr == ("error: --config.train.batch_sizee=1: the config has no field "
                                                  "train.batch_sizee; did you mean train.batch_size?\n")


def test_init_from_a_checkpoint_with_a_frozen_subtree(tmp_path):
    """The multi-stage seam: start from another run's checkpoint, keep ``ir_conv`` frozen."""
    first, _ = train.train(tiny_config(num_steps=2, checkpoint_every=100), str(tmp_path / "stage1"))
    config = tiny_config(num_steps=2, checkpoint_every=100)
    config.init_from, config.freeze = str(tmp_path / "stage1"), ("ir_conv/.*",)
    second, _ = train.train(config, str(tmp_path / "stage2"))
    before, after = _params(first), _params(second)
    _assert_trees_close(before["ir_conv"], after["ir_conv"], atol=0)
    assert not np.allclose(before["vi_conv"]["conv1"]["kernel"], after["vi_conv"]["conv1"]["kernel"])
