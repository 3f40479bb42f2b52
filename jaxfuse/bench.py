"""python -m jaxfuse.bench --model siba [--dtype bfloat16] [--repeats 5] [--batch 1] [--count]
[--against-official PATH]

Prints one JSON line per case: training steps/s (the full optimiser step of ``jaxfuse.train``
in the config's default stage, at the size and batch of ``config.bench.train``) and inference
images/s (batch 1, as the official test scripts run, at each ``config.bench.infer`` size).
Compile time is reported separately; steady-state times are the median of ``repeats`` timed
runs after ``block_until_ready``.

``--count`` prints instead, per size of ``config.bench.count_sizes`` (batch 1): the parameter
count, thop-style conv MACs (sum over convolutions of output pixels x output channels x input
channels / groups x k^2; attention matmuls are not convolutions and not counted) and XLA's
cost-analysis flops (every op, kept separate); then a per-module MAC table and, where the
config gives them in ``config.bench.paper``, the paper's figures.

``--against-official PATH`` times the official PyTorch code too, from a local clone of its
repository (``jaxfuse/official/<model>.py`` says what is run): after each case's jaxfuse line,
the official figure at the same inputs and thread count (torch eager on the CPU) and a line
with the speed-up. Only this flag needs torch.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import statistics
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

import jaxfuse.official
from jaxfuse import configs, models, train


def _time(fn, repeats: int) -> tuple[float, float, list[float]]:
    """(compile-and-first-run seconds, median seconds, all timed runs)."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - t0
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        runs.append(time.perf_counter() - t0)
    return first, statistics.median(runs), runs


def _record(case, first, median, runs, per_run, unit, dtype):
    record = {"case": case, "impl": "jaxfuse", unit: round(per_run / median, 3), "median_s": round(median, 4),
              "min_s": round(min(runs), 4), "max_s": round(max(runs), 4), "first_call_s": round(first, 2),
              "runs": len(runs), "dtype": dtype, "backend": jax.default_backend(),
              "device": jax.devices()[0].device_kind, "jax": jax.__version__, "host": platform.node()}
    stats = jax.devices()[0].memory_stats()  # None on the CPU backend
    if stats and "peak_bytes_in_use" in stats:
        record["peak_gib"] = round(stats["peak_bytes_in_use"] / 2**30, 3)
    return record


def _variables(spec, module, rng, x):
    return jax.jit(lambda r: spec.init(module, r, x, x))(rng)


def _inputs(batch: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random (ir, vi) in [0, 1], NHWC, shared by jaxfuse and the official code."""
    x = np.random.default_rng(1).random((batch, h, w, 1), dtype=np.float32)
    return x, np.ascontiguousarray(x[:, ::-1])


def bench_train(model_name: str, config, dtype: str, repeats: int, size=128, batch=4, stage=None,
                official=None) -> list[dict]:
    """The full optimiser step of ``stage`` (default: the config's), random inputs."""
    spec = models.get(model_name)
    config = config.copy_and_resolve_references()
    config.stage = stage or config.stage
    module = spec.build(config.model.to_dict(), dtype=dtype)
    ir, vi = _inputs(batch, size, size)
    x = jnp.asarray(ir)
    variables = _variables(spec, module, jax.random.key(0), x[:1])
    freeze = spec.stage(config.stage).freeze
    schedule = train.make_schedule(config.train, 100)
    tx = train.make_optimizer(config.train, schedule, variables["params"], freeze)
    state = {"step": jnp.zeros((), jnp.int32), **variables, "opt_state": tx.init(variables["params"])}
    step = jax.jit(train.make_train_step(spec.loss_fn(module, config), tx, schedule, 0, freeze), donate_argnums=0)
    images = spec.stage(config.stage).data == "images"
    batch_ = ({"image": jnp.concatenate([x, x[:, ::-1], x[:, :, ::-1]], -1)} if images
              else {"ir": x, "vi": jnp.asarray(vi)})
    holder = [state]

    def run():
        holder[0], metrics = step(holder[0], batch_)
        return metrics["loss"]

    name = f"train_{size}x{size}_b{batch}" + ("" if stage is None else f"_{stage}")
    record = _record(name, *_time(run, repeats), 1, "steps_per_s", dtype)
    return [record, *_against(official, lambda o: o.train(ir, vi, stage), record, repeats, 1, "steps_per_s")]


def bench_inference(model_name: str, config, dtype: str, repeats: int, h: int, w: int, batch=1,
                    official=None) -> list[dict]:
    spec = models.get(model_name)
    module = spec.build(config.model.to_dict(), dtype=dtype)
    ir, vi = _inputs(batch, h, w)
    a, b = jnp.asarray(ir), jnp.asarray(vi)
    small = a[:, :spec.min_size, :spec.min_size]
    variables = _variables(spec, module, jax.random.key(0), small)
    fn = jax.jit(lambda v, a, b: spec.predict(module, v, a, b, jax.random.key(0)))
    precision = "highest" if dtype == "float32" else "default"
    with jax.default_matmul_precision(precision):
        result = _time(lambda: fn(variables, a, b), repeats)
    record = _record(f"infer_{h}x{w}_b{batch}", *result, batch, "images_per_s", dtype)
    return [record, *_against(official, lambda o: o.infer(ir, vi), record, repeats, batch, "images_per_s")]


def _against(official, make_run, record: dict, repeats: int, per_run: int, unit: str) -> list[dict]:
    """The official code's figures for ``record``'s case (same inputs, same threads) and the ratio."""
    if official is None:
        return []
    case = {"case": record["case"], "impl": "official-torch", "threads": jaxfuse.official.threads()}
    try:
        run = make_run(official)
    except jaxfuse.official.OfficialError as e:
        return [{**case, "skipped": str(e)}]
    first, median, runs = _time(run, repeats)
    return [{**case, unit: round(per_run / median, 3), "median_s": round(median, 4), "min_s": round(min(runs), 4),
             "max_s": round(max(runs), 4), "first_call_s": round(first, 2), "runs": len(runs),
             "torch": official.torch.__version__},
            {"case": record["case"], "speedup": round(median / record["median_s"], 2),
             "meaning": "official median seconds / jaxfuse median seconds, same inputs, same machine, one process"}]


def _conv_macs(module, out) -> int:
    """thop's count of one call of a module owning an HWIO ``kernel`` (a convolution, grouped or
    not): out pixels x out channels x (in channels / groups) x k^2 = out.size x kh x kw x I; else 0."""
    kernel = module.variables.get("params", {}).get("kernel")
    if kernel is None or kernel.ndim != 4 or not hasattr(out, "size"):
        return 0
    return out.size * kernel.shape[0] * kernel.shape[1] * kernel.shape[2]


def count(model_name: str, config, h: int, w: int) -> tuple[dict, dict[str, int]]:
    """({case, height, width, params, conv_macs, xla_flops}, {top-level module: conv MACs}) at batch 1."""
    spec = models.get(model_name)
    module = spec.build(config.model.to_dict())
    x = jax.ShapeDtypeStruct((1, h, w, 1), jnp.float32)
    variables = jax.eval_shape(lambda a: spec.init(module, jax.random.key(0), a, a), x)
    per_module: dict[str, int] = {}

    def interceptor(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        macs = _conv_macs(context.module, out) if context.method_name == "__call__" else 0
        if macs:
            top = context.module.scope.path[0] if context.module.scope.path else "(root)"
            per_module[top] = per_module.get(top, 0) + macs
        return out

    def predict(v, a, b):
        return spec.predict(module, v, a, b, jax.random.key(0))

    with nn.intercept_methods(interceptor):
        jax.eval_shape(predict, variables, x, x)
    cost = jax.jit(predict).lower(variables, x, x).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    record = {"case": f"count_{h}x{w}", "height": h, "width": w,
              "params": sum(a.size for a in jax.tree.leaves(variables.get("params", {}))),
              "conv_macs": sum(per_module.values()), "xla_flops": int(cost.get("flops", 0))}
    return record, per_module


def count_report(model_name: str, config) -> list[dict]:
    """The ``--count`` lines: one per size, the per-module table, the paper's figures if configured."""
    sizes = config.bench.get("count_sizes", ((256, 256), (512, 512), (480, 640), (768, 1024)))
    records, table = [], {}
    for h, w in sizes:
        record, per_module = count(model_name, config, h, w)
        records.append(record)
        table[f"{h}x{w}"] = per_module
    modules = sorted({m for t in table.values() for m in t})
    records += [{"case": "conv_macs_per_module", "module": m, **{k: t.get(m, 0) for k, t in table.items()}}
                for m in modules]
    if "paper" in config.bench:
        records.append({"case": "paper", **config.bench.paper.to_dict()})
    return records


def cases_of(config) -> dict:
    """{case name: (kind, args...)} from ``config.bench``: the default stage's train step, the
    train steps of ``train_stages`` (e.g. DMFuse's ddpm), inference sizes."""
    b = config.bench
    cases = {"train": ("train", b.train_size, b.train_batch)}
    cases |= {f"train_{s}": ("train", b.train_size, b.get("stage_batch", b.train_batch), s)
              for s in b.get("train_stages", ())}
    cases |= {f"infer{h}x{w}": ("infer", h, w) for h, w in b.infer_sizes}
    return cases


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m jaxfuse.bench", description=__doc__.split("\n\n")[1],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model", default="siba", choices=sorted(models.REGISTRY), help="model (its configs/<model>.py)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"],
                        help="compute dtype (parameters stay float32)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per case (after the first, compiling one)")
    parser.add_argument("--cases", default="all",
                        help="comma-separated cases of the model's config.bench (train, infer<H>x<W>), or all")
    parser.add_argument("--batch", type=int, default=1, help="images per inference call")
    parser.add_argument("--count", action="store_true", help="parameters, conv MACs and XLA flops instead of timings")
    parser.add_argument("--against-official", metavar="PATH", default=None,
                        help="also time the official PyTorch code from a local clone of its repository at PATH "
                             "(same inputs and threads, torch eager on the CPU) and print the speed-up")
    args = parser.parse_args(argv)
    if args.batch < 1:
        parser.error(f"--batch must be at least 1, got {args.batch}")
    try:
        config = configs.load(args.model)
    except configs.ConfigError as e:
        configs.exit_with(e)
    if args.count:
        for record in count_report(args.model, config):
            print(json.dumps(record), flush=True)
        return
    cases = cases_of(config)
    wanted = list(cases) if args.cases == "all" else [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in wanted if c not in cases]
    if unknown or not wanted:
        parser.error(f"unknown case(s) {', '.join(unknown) or repr(args.cases)} for {args.model}; "
                     f"valid: {', '.join(cases)}, all")
    official = None
    if args.against_official:
        spec = models.get(args.model)
        if spec.official is None:
            parser.error(f"{args.model} has no official implementation to time")
        try:
            official = importlib.import_module(spec.official).load(args.against_official)
        except jaxfuse.official.OfficialError as e:
            raise SystemExit(f"error: {e}") from None
    for name in wanted:
        kind, *shape = cases[name]
        if kind == "train":
            records = bench_train(args.model, config, args.dtype, args.repeats, *shape, official=official)
        else:
            records = bench_inference(args.model, config, args.dtype, args.repeats, *shape, batch=args.batch,
                                      official=official)
        for record in records:
            print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
