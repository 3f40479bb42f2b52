"""python -m jaxfuse.train --config configs/siba.py --workdir DIR [--config.x=y ...]

One trainer for every model (big_vision style): models enter through the registry hooks
(``jaxfuse.models``). One ``jax.jit``-compiled step over a mesh of all devices: the batch is
sharded on the ``data`` axis, parameters and optimizer state are replicated, XLA inserts the
gradient all-reduce. Rerunning the same command resumes from the last checkpoint, data
iterator included, so a resumed run sees exactly the batches an uninterrupted one would; a
rerun of a finished run says so and exits at once.

The console shows a header, one line per ``train.log_every`` steps (loss terms, steps/s, ETA)
and a closing summary (checkpoint, TensorBoard, the fuse/evaluate commands) on stdout. Library
logs (Orbax, absl, CLU, JAX) go to ``WORKDIR/train.log``; ``--verbosity=0`` (``-v 0``) puts them
back on stderr. A config mistake is one ``error:`` line and exit status 2.
"""

from __future__ import annotations

import contextlib
import logging as std_logging
import os
import re
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import app, flags, logging
from flax import traverse_util
from jax.experimental import multihost_utils
from ml_collections import config_flags

from jaxfuse import checkpoint, configs, models, sharding
from jaxfuse.data import images, pipeline, sources

_CONFIG = config_flags.DEFINE_config_file("config", None, "configs/<model>.py[:presets]", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Where checkpoints and TensorBoard events go.")


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN/Inf; the last checkpoint on disk is still the last good one."""


# ----------------------------------------------------------------------------------------------
# Optimiser: the official Adam + StepLR + global-norm clipping, with frozen subtrees; or SGD with
# momentum, warm-up and poly decay (``train.optimizer = "sgd"``, RefineFuse / PSFusion).
# ----------------------------------------------------------------------------------------------
def make_schedule(t: ml_collections.ConfigDict, steps_per_epoch: int, num_steps: int = 0):
    """Adam: StepLR, lr * decay every ``lr_decay_every_epochs`` epochs, floored at ``min_learning_rate``.

    SGD: ``warmup_steps`` of exponential warm-up from ``warmup_start_lr`` (start * f^it), then
    lr (1 - (it - warmup) / (num_steps - warmup))^``poly_power``, it counted from 0 (the BiSeNet /
    PSFusion ``Optimizer``); ``poly_power=0`` keeps lr constant after the warm-up.
    """
    if t.get("optimizer", "adam") == "sgd":
        lr, start, warmup, power = t.learning_rate, t.warmup_start_lr, t.warmup_steps, t.poly_power
        total = max(num_steps, warmup + 1)

        def schedule(step):
            it = jnp.asarray(step, jnp.float32)
            warm = start * (lr / start) ** (it / max(warmup, 1))
            poly = lr * jnp.maximum(1.0 - (it - warmup) / (total - warmup), 0.0) ** power
            return jnp.where(it <= warmup, warm, poly) if warmup > 0 else poly

        return schedule
    return optax.exponential_decay(
        t.learning_rate, transition_steps=max(1, t.lr_decay_every_epochs * steps_per_epoch),
        decay_rate=t.lr_decay, staircase=True, end_value=t.min_learning_rate)


def _matches(patterns):
    compiled = [re.compile(p) for p in patterns]
    return lambda path: any(c.match("/".join(path)) for c in compiled)


def frozen_labels(params, patterns) -> dict:
    """Labels each parameter "frozen" if its "a/b/kernel" path matches any regex, else "trained"."""
    frozen = _matches(patterns)
    flat = traverse_util.flatten_dict(params)
    return traverse_util.unflatten_dict({k: "frozen" if frozen(k) else "trained" for k in flat})


def make_optimizer(t: ml_collections.ConfigDict, schedule, params, freeze) -> optax.GradientTransformation:
    """PyTorch order: clip_grad_norm_ on the raw gradients, then Adam, or SGD with ``momentum``
    (``torch.optim.SGD``: buf = momentum buf + g, no dampening), L2 weight decay inside either."""
    optimizer = t.get("optimizer", "adam")
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"train.optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    parts = [optax.clip_by_global_norm(t.clip_grad_norm)] if t.clip_grad_norm > 0 else []
    if t.weight_decay:
        parts.append(optax.add_decayed_weights(t.weight_decay))
    parts.append(optax.scale_by_adam() if optimizer == "adam" else optax.trace(decay=t.momentum))
    parts.append(optax.scale_by_learning_rate(schedule))
    tx = optax.chain(*parts)
    if not freeze:
        return tx
    return optax.multi_transform({"trained": tx, "frozen": optax.set_to_zero()}, frozen_labels(params, freeze))


def variables_of(state) -> dict:
    """The model's variable collections in a train state (``params``, ``batch_stats``...)."""
    return {k: v for k, v in state.items() if k not in ("step", "opt_state")}


def init_from_checkpoint(variables: dict, path: str) -> dict:
    """Copies every variable (all collections) of a checkpoint whose path and shape match."""
    loaded, _ = checkpoint.load_variables(path)
    flat, src = traverse_util.flatten_dict(variables), traverse_util.flatten_dict(loaded)
    taken = {k: jnp.asarray(src[k], v.dtype) for k, v in flat.items() if k in src and src[k].shape == v.shape}
    logging.info("init_from %s: %d of %d variables loaded; not found or mis-shaped: %s", path,
                 len(taken), len(flat), ["/".join(k) for k in flat if k not in taken][:20])
    return traverse_util.unflatten_dict({**flat, **taken})


def keep_frozen(old: dict, new: dict, freeze) -> dict:
    """``new`` collections with the variables on frozen paths taken from ``old`` (e.g. BN statistics)."""
    if not freeze:
        return new
    frozen = _matches(freeze)
    out = {}
    for collection, tree in new.items():
        flat_old, flat_new = traverse_util.flatten_dict(old[collection]), traverse_util.flatten_dict(tree)
        out[collection] = traverse_util.unflatten_dict(
            {k: flat_old[k] if frozen(k) else v for k, v in flat_new.items()})
    return out


def make_train_step(loss_fn, tx, schedule, seed: int, freeze=()):
    """(state, batch) -> (state, metrics): one optimiser step; randomness from fold_in(seed, step).

    ``loss_fn(variables, batch, rng) -> (loss, (metrics, updated collections))``; gradients are
    taken for ``params`` only; the other collections (BatchNorm statistics) come back updated.
    """

    def train_step(state, batch):
        rng = jax.random.fold_in(jax.random.key(seed), state["step"])
        others = {k: v for k, v in variables_of(state).items() if k != "params"}

        def loss_of_params(params):
            return loss_fn({"params": params, **others}, batch, rng)

        (loss, (metrics, updated)), grads = jax.value_and_grad(loss_of_params, has_aux=True)(state["params"])
        updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
        metrics = {**metrics, "loss": loss, "grad_norm": optax.tree.norm(grads),
                   "learning_rate": schedule(state["step"])}
        new_state = {**state, **keep_frozen(others, dict(updated), freeze), "step": state["step"] + 1,
                     "params": optax.apply_updates(state["params"], updates), "opt_state": opt_state}
        return new_state, metrics

    return train_step


# ----------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------
def train(config: ml_collections.ConfigDict, workdir: str, mesh=None) -> tuple[dict, list[dict]]:
    """Trains (or resumes); returns the final state and this run's per-step host metrics.

    ``mesh`` defaults to all devices. A workdir that already holds the final step is left as it
    is: (None, []) is returned.
    """
    # ---- start-up and mesh ----
    sharding.maybe_initialize_distributed(config.distributed)
    mesh = mesh or sharding.make_mesh()
    data_sharding, repl = sharding.batch_sharding(mesh), sharding.replicated(mesh)
    if config.train.batch_size % mesh.size:
        raise configs.ConfigError(f"train.batch_size={config.train.batch_size} must be divisible by the "
                                  f"{mesh.size} devices")
    spec = models.get(config.model_name)
    stage = spec.stage(config.stage)

    # ---- data ----
    d = config.data
    resize, pad_small = d.get("resize", 0), d.get("pad_small", False)
    source = sources.make_source(
        d.source, data=stage.data, split=d.split, data_dir=d.data_dir or None,
        min_size=0 if resize else d.patch_size, synthetic_pairs=d.synthetic_pairs,
        synthetic_size=d.synthetic_size, seed=config.seed, limit=d.get("num_pairs", 0), pad_small=pad_small,
        salient=d.get("salient_source", "none"))
    steps_per_epoch = max(1, len(source) // config.train.batch_size)
    num_steps = config.train.num_steps or config.train.epochs * steps_per_epoch
    if _already_complete(workdir, num_steps):
        _say(*_next_stage(spec, config, workdir))
        return None, []
    _print_header(config, source, steps_per_epoch, num_steps, mesh, workdir)
    dataset = pipeline.train_dataset(
        source, batch_size=config.train.batch_size, patch=d.patch_size, margin=d.crop_margin,
        flips=d.flips, rot90=d.rot90, resize=resize, pad_small=pad_small, seed=config.seed,
        process_index=jax.process_index(),
        process_count=jax.process_count(), num_workers=d.num_workers)
    data_iter = iter(dataset)
    logging.info("data: %r, %d steps/epoch, %d steps", source, steps_per_epoch, num_steps)

    # ---- model and optimiser ----
    module = spec.build(config.model.to_dict(), dtype=config.dtype)
    p = resize or d.patch_size
    dummy = jnp.zeros((1, p, p, 1), jnp.float32)
    schedule = make_schedule(config.train, steps_per_epoch, num_steps)
    freeze = tuple(stage.freeze) + tuple(config.freeze)

    def init_state(rng):
        variables = spec.init(module, rng, dummy, dummy)
        tx = make_optimizer(config.train, schedule, variables["params"], freeze)
        return {"step": jnp.zeros((), jnp.int32), **variables, "opt_state": tx.init(variables["params"])}

    abstract = jax.eval_shape(init_state, jax.random.key(config.seed))
    tx = make_optimizer(config.train, schedule, abstract["params"], freeze)
    state_sharding = jax.tree.map(lambda _: repl, abstract)
    abstract = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, state_sharding)

    # ---- state: resume, or initialise (optionally from another checkpoint) ----
    mgr = checkpoint.manager(f"{workdir}/checkpoints", keep=config.train.keep_checkpoints)
    if mgr.latest_step() is not None:
        state = checkpoint.restore(mgr, mgr.latest_step(), abstract, data_iter)
        logging.info("resumed from step %d", int(state["step"]))
    else:
        state = jax.jit(init_state, out_shardings=state_sharding)(jax.random.key(config.seed))
        if config.init_from:
            variables = init_from_checkpoint(jax.device_get(variables_of(state)), config.init_from)
            state = jax.device_put({**state, **variables, "opt_state": tx.init(variables["params"])}, state_sharding)

    # ---- the update step ----
    train_step = make_train_step(spec.loss_fn(module, config), tx, schedule, config.seed, freeze)
    step_fn = jax.jit(train_step, donate_argnums=0, out_shardings=(state_sharding, repl))
    predict_fn = jax.jit(lambda variables, ir, vi: spec.predict(module, variables, ir, vi, jax.random.key(config.seed)))
    result = _loop(config, workdir, mgr, state, data_iter, step_fn, predict_fn, data_sharding, num_steps)
    _say(*_next_stage(spec, config, workdir))
    return result


def _loop(config, workdir, mgr, state, data_iter, step_fn, predict_fn, data_sharding, num_steps):
    """Dispatches step n, then checks step n-1's metrics on the host, so the device never waits."""
    with _native_stderr_to_log():
        from clu import metric_writers, parameter_overview, periodic_actions  # noqa: PLC0415 (imports TF)

    is_chief = jax.process_index() == 0
    writer = metric_writers.create_default_writer(workdir, just_logging=not is_chief, asynchronous=True)
    first_step = int(jax.device_get(state["step"]))
    if first_step == 0:
        parameter_overview.log_parameter_overview(jax.device_get(state["params"]))
        flat = traverse_util.flatten_dict(config.to_dict(), sep=".")
        writer.write_hparams({k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in flat.items()})
    hooks = [periodic_actions.ReportProgress(num_train_steps=num_steps, writer=writer,
                                             every_steps=config.train.log_every)] if is_chief else []
    bar = _progress_bar(first_step, num_steps) if is_chief and sys.stderr.isatty() else None
    t = config.train
    sample, pending, history, per_step = None, None, [], []
    console = _Console(first_step, num_steps, bar)
    n_params = sum(np.size(x) for x in jax.tree.leaves(state["params"]))
    console.say(f"resuming from step {first_step}: " if first_step else "",
                f"compiling the train step ({n_params:,} parameters) ...", sep="")

    def check(step, metrics):
        host = jax.device_get(metrics)
        if not all(np.isfinite(v) for v in host.values()):
            raise NonFiniteLossError(
                f"non-finite training metrics at step {step}: {host}. Stopped; the last checkpoint in "
                f"{workdir}/checkpoints (step {mgr.latest_step()}) is the last good state. Lower "
                "train.learning_rate or check the data.")
        history.append(host)
        per_step.append(host)
        console.step_done(step)
        if _due(step, t.log_every) or step == num_steps:
            means = {k: float(np.mean([h[k] for h in history])) for k in host}
            writer.write_scalars(step, means)
            console.log(step, means, len(history))
            history.clear()

    try:
        for step in range(first_step + 1, num_steps + 1):
            batch = sharding.global_batch(next(data_iter), data_sharding)
            if sample is None:
                sample = batch
            state, metrics = step_fn(state, batch)
            if pending is not None:
                check(*pending)
            pending = (step, metrics)
            for hook in hooks:
                hook(step)
            if bar is not None:
                bar.update(1)
            if "ir" in sample and (_due(step, t.image_every) or step == num_steps):
                _write_images(writer, step, sample, predict_fn(variables_of(state), sample["ir"], sample["vi"]))
            if _due(step, t.checkpoint_every) or step == num_steps:
                check(*pending)
                pending = None
                checkpoint.save(mgr, step, state, config.to_dict(), data_iter)
        if pending is not None:
            check(*pending)
    finally:
        mgr.wait_until_finished()
        writer.flush()
        if bar is not None:
            bar.close()
    console.summary(workdir, mgr.latest_step())
    return state, per_step


def _due(step: int, every: int) -> bool:
    """True every ``every`` steps; ``every`` <= 0 means only at the end."""
    return every > 0 and step % every == 0


def _write_images(writer, step, batch, fused):
    """ir | vi | fused side by side for up to 4 samples, clamped to [0, 1]."""
    rows = [jnp.concatenate([batch["ir"][i], batch["vi"][i], jnp.clip(fused[i], 0, 1)], axis=1)
            for i in range(min(4, fused.shape[0]))]
    writer.write_images(step, {"ir|vi|fused": np.asarray(multihost_utils.process_allgather(jnp.stack(rows), tiled=True))})


def _progress_bar(first_step, num_steps):
    from tqdm import tqdm  # noqa: PLC0415

    return tqdm(total=num_steps, initial=first_step, unit="step", dynamic_ncols=True)


# ----------------------------------------------------------------------------------------------
# Console output for a person (process 0, stdout): header, progress, closing summary.
# ----------------------------------------------------------------------------------------------
def _say(*lines, sep="\n"):
    if jax.process_index() == 0:
        print(*lines, sep=sep, flush=True)


_setup_started = None  # when the last header was printed: the summary's wall time counts from it


def _print_header(config, source, steps_per_epoch, num_steps, mesh, workdir):
    global _setup_started
    _setup_started = time.perf_counter()
    d, t = config.data, config.train
    kinds = ", ".join(sorted({dev.platform if dev.device_kind == dev.platform else
                              f"{dev.platform}: {dev.device_kind}" for dev in mesh.devices.flat}))
    _say(f"jaxfuse.train: {config.model_name}, stage {config.stage}, {config.dtype}"
         + (f", starting from {config.init_from}" if config.init_from else ""),
         f"  data     {d.source}: {len(source)} {source.yields}, {_sample_shape(d, source)}, "
         f"batch {t.batch_size}, {steps_per_epoch} steps/epoch",
         f"  devices  {mesh.size} x {kinds}" + (f", {jax.process_count()} processes" if jax.process_count() > 1 else ""),
         f"  steps    {num_steps}, loss every {t.log_every}, checkpoint every {t.checkpoint_every}",
         f"  workdir  {Path(workdir).absolute()}",
         "setting up: model, optimiser state, checkpoints, TensorBoard writer ...")


def _sample_shape(d, source) -> str:
    if d.get("resize", 0) and source.yields == "pairs":
        return f"resized to {d.resize}x{d.resize}"
    return f"{d.patch_size}x{d.patch_size} patches"


def _next_steps(workdir, step) -> list[str]:
    """How to use a finished run: its checkpoint, TensorBoard, the fuse and evaluate commands."""
    w = Path(workdir).absolute()
    lines = [f"  checkpoint   {w}/checkpoints/{step}",
             f"  tensorboard  tensorboard --logdir {w}",
             f"  fuse         python -m jaxfuse.fuse --checkpoint {w} --ir IR_DIR --vi VI_DIR --out {w}/fused",
             f"  evaluate     python -m jaxfuse.evaluate --checkpoint {w} --ir IR_DIR --vi VI_DIR --out {w}/report"]
    if (w / LOG_FILE).exists():
        lines.append(f"  library log  {w / LOG_FILE}")
    return lines


def _next_stage(spec, config, workdir) -> list[str]:
    """The command of the stage that starts from this one (CrossFuse, DMFuse), if any."""
    return [f"  next stage   python -m jaxfuse.train --config configs/{spec.name}.py --config.stage={s.name} "
            f"--config.init_from={Path(workdir).absolute()} --workdir NEW_WORKDIR"
            for s in spec.stages.values() if s.starts_from == config.stage]


def _already_complete(workdir, num_steps) -> bool:
    """True (and says so) when the workdir's latest checkpoint is the final step."""
    try:
        _, step = checkpoint.resolve(Path(workdir) / "checkpoints")
    except checkpoint.CheckpointError:
        return False
    if step < num_steps:
        return False
    _say(f"already complete: step {step} of {num_steps} is in {Path(workdir).absolute()}/checkpoints; "
         "nothing to do (raise train.num_steps or train.epochs to train on)", *_next_steps(workdir, step))
    return True


def _seconds(s: float) -> str:
    return f"{s:.0f} s" if s < 100 else f"{s / 60:.1f} min" if s < 6000 else f"{s / 3600:.1f} h"


class _Console:
    """Progress lines with a real ETA: the rate is measured from the first finished step on,
    so the first step's compilation does not count, then extrapolated to the remaining steps."""

    def __init__(self, first_step, num_steps, bar):
        self.first_step, self.num_steps, self.bar = first_step, num_steps, bar
        self.start, self.t1, self.compile_s = time.perf_counter(), None, None
        self.setup_s = self.start - (_setup_started or self.start)
        self.last = None

    def say(self, *lines, sep="\n"):
        if self.bar is not None:  # above the progress bar, not through it
            for line in sep.join(lines).split("\n"):
                self.bar.write(line)
        else:
            _say(*lines, sep=sep)

    def step_done(self, step):
        if self.t1 is None:  # the first step: compiled and run
            self.t1 = time.perf_counter()
            self.compile_s = self.t1 - self.start
            self.say(f"step {step} done in {self.compile_s:.1f} s (compiling included)")

    def rate(self, step) -> float | None:
        done = step - self.first_step - 1
        return done / (time.perf_counter() - self.t1) if done > 0 else None

    def log(self, step, means, window):
        terms = "  ".join(f"{k.removeprefix('loss_')} {v:.4g}" for k, v in sorted(means.items())
                          if k.startswith("loss_"))
        rate = self.rate(step)
        speed = (f"{rate:.2f} steps/s, ETA {_seconds((self.num_steps - step) / rate)}" if rate
                 else "ETA after the next step")
        width = len(str(self.num_steps))
        self.say(f"step {step:>{width}}/{self.num_steps}  loss {means['loss']:.4f}  ({terms})  "
                 f"grad norm {means['grad_norm']:.3g}  lr {means['learning_rate']:.3g}  | {speed}")
        self.last = (step, window, means["loss"])

    def summary(self, workdir, checkpoint_step):
        wall = time.perf_counter() - self.start + self.setup_s
        if self.last is None or checkpoint_step is None:
            return
        step, window, loss = self.last
        ran = step - self.first_step
        rate = self.rate(step)
        self.say(f"done: {ran} steps in {_seconds(wall)} (set-up {self.setup_s:.0f} s, first step "
                 f"{self.compile_s:.0f} s with compiling{f', then {rate:.2f} steps/s' if rate else ''}); "
                 f"final loss {loss:.4f} (mean of the last {window} steps)", *_next_steps(workdir, checkpoint_step))


# ----------------------------------------------------------------------------------------------
# Command line: config checks, library logs, one-line errors.
# ----------------------------------------------------------------------------------------------
LOG_FILE = "train.log"
_log_path = None  # WORKDIR/train.log once main() sends library logs there


def check_config(config) -> None:
    """Rejects unknown choices before anything is loaded or compiled, listing the valid ones."""
    spec = models.REGISTRY.get(config.model_name)
    choices = [("model_name", config.model_name, sorted(models.REGISTRY)),
               ("stage", config.stage, sorted(spec.stages) if spec else [config.stage]),
               ("dtype", config.dtype, ["float32", "bfloat16"]),
               ("distributed", config.distributed, ["auto", "on", "off"]),
               ("data.source", config.data.source.partition(":")[0], list(sources.KINDS))]
    for field, value, valid in choices:
        if value not in valid:
            raise configs.ConfigError(
                f"--config.{field}={value!r} is not one of {', '.join(valid)}"
                + (" (as synthetic, folder:PATH, folder:IR,VI, images:PATH or tfds:NAME)" if field == "data.source" else "")
                + configs.did_you_mean(value, valid))
    if config.data.source.startswith("tfds:"):
        from jaxfuse.data.datasets import get_builder  # noqa: PLC0415 (imports TFDS)

        try:
            get_builder(config.data.source.partition(":")[2])
        except KeyError as e:
            raise configs.ConfigError(f"--config.data.source={config.data.source}: {e.args[0]}") from None
    if config.train.batch_size < 1:
        raise configs.ConfigError(f"--config.train.batch_size={config.train.batch_size} must be at least 1")


def _library_logs_to_file(workdir) -> None:
    """Library INFO logs (Orbax, absl, CLU, JAX) go to WORKDIR/train.log; stderr keeps warnings
    and errors (already so when main() checks the config, which creates nothing)."""
    Path(workdir).mkdir(parents=True, exist_ok=True)
    global _log_path
    _log_path = Path(workdir) / LOG_FILE
    handler = std_logging.FileHandler(_log_path)
    handler.setFormatter(logging.PythonFormatter())
    std_logging.getLogger().addHandler(handler)


@contextlib.contextmanager
def _native_stderr_to_log():
    """TensorFlow's C++ start-up lines (oneDNN) ignore TF_CPP_MIN_LOG_LEVEL (absl C++ logs
    everything before InitializeLog): with library logs in the log file, file descriptor 2
    points there while TensorFlow loads."""
    if _log_path is None:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with open(_log_path, "ab") as log:
        os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def _parse_flags(argv):
    try:
        if spec := configs.config_arg(argv):  # ml_collections reports a missing file only later
            configs.find(spec.partition(":")[0], fallback=False)
        return flags.FLAGS(argv)
    except Exception as e:  # noqa: BLE001 -- absl/ml_collections errors as one line
        configs.exit_with(e, argv)


def main(argv):
    del argv
    if _WORKDIR.value is None or _CONFIG.value is None:
        configs.exit_with(configs.ConfigError(
            "--config and --workdir are required, e.g. python -m jaxfuse.train "
            "--config configs/siba.py:smoke --workdir /tmp/jaxfuse-smoke"))
    quiet = not flags.FLAGS["verbosity"].present
    if quiet:
        logging.get_absl_handler().setLevel(std_logging.WARNING)
    sharding.skip_tpu_probe_on_cpu_only_machines()
    try:
        check_config(_CONFIG.value)
        if quiet:
            _library_logs_to_file(_WORKDIR.value)
        train(_CONFIG.value, _WORKDIR.value)
    except (configs.ConfigError, images.ImageError, checkpoint.CheckpointError, sources.SourceError,
            FileNotFoundError) as e:
        configs.exit_with(e)
    except NonFiniteLossError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    app.run(main, flags_parser=_parse_flags)
