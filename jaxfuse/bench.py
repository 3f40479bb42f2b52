"""python -m jaxfuse.bench --model siba [--dtype bfloat16] [--repeats 5]

Prints one JSON line per case: training steps/s (the full optimiser step of ``jaxfuse.train``
in the config's default stage, at the size and batch of ``config.bench.train``) and inference
images/s (batch 1, as the official test scripts run, at each ``config.bench.infer`` size).
Compile time is reported separately; steady-state times are the median of ``repeats`` timed
runs after ``block_until_ready``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import jax
import jax.numpy as jnp

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
    return {"case": case, unit: round(per_run / median, 3), "median_s": round(median, 4),
            "min_s": round(min(runs), 4), "max_s": round(max(runs), 4), "first_call_s": round(first, 2),
            "runs": len(runs), "dtype": dtype, "backend": jax.default_backend(),
            "device": jax.devices()[0].device_kind, "jax": jax.__version__, "host": platform.node()}


def _variables(spec, module, rng, x):
    return jax.jit(lambda r: spec.init(module, r, x, x))(rng)


def bench_train(model_name: str, config, dtype: str, repeats: int, size=128, batch=4) -> dict:
    spec = models.get(model_name)
    module = spec.build(config.model.to_dict(), dtype=dtype)
    x = jax.random.uniform(jax.random.key(1), (batch, size, size, 1))
    variables = _variables(spec, module, jax.random.key(0), x[:1])
    freeze = spec.stage(config.stage).freeze
    schedule = train.make_schedule(config.train, 100)
    tx = train.make_optimizer(config.train, schedule, variables["params"], freeze)
    state = {"step": jnp.zeros((), jnp.int32), **variables, "opt_state": tx.init(variables["params"])}
    step = jax.jit(train.make_train_step(spec.loss_fn(module, config), tx, schedule, 0, freeze), donate_argnums=0)
    batch_ = {"ir": x, "vi": x[:, ::-1]}
    holder = [state]

    def run():
        holder[0], metrics = step(holder[0], batch_)
        return metrics["loss"]

    return _record(f"train_{size}x{size}_b{batch}", *_time(run, repeats), 1, "steps_per_s", dtype)


def bench_inference(model_name: str, config, dtype: str, repeats: int, h: int, w: int, batch=1) -> dict:
    spec = models.get(model_name)
    module = spec.build(config.model.to_dict(), dtype=dtype)
    x = jax.random.uniform(jax.random.key(1), (batch, h, w, 1))
    small = x[:, :spec.min_size, :spec.min_size]
    variables = _variables(spec, module, jax.random.key(0), small)
    fn = jax.jit(lambda v, a, b: spec.predict(module, v, a, b, jax.random.key(0)))
    precision = "highest" if dtype == "float32" else "default"
    with jax.default_matmul_precision(precision):
        result = _time(lambda: fn(variables, x, x[:, ::-1]), repeats)
    return _record(f"infer_{h}x{w}_b{batch}", *result, batch, "images_per_s", dtype)


def cases_of(config) -> dict:
    """{case name: (kind, sizes...)} from ``config.bench`` (train size/batch, inference sizes)."""
    b = config.bench
    cases = {"train": ("train", b.train_size, b.train_batch)}
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
    args = parser.parse_args(argv)
    try:
        config = configs.load(args.model)
    except configs.ConfigError as e:
        configs.exit_with(e)
    cases = cases_of(config)
    wanted = list(cases) if args.cases == "all" else [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in wanted if c not in cases]
    if unknown or not wanted:
        parser.error(f"unknown case(s) {', '.join(unknown) or repr(args.cases)} for {args.model}; "
                     f"valid: {', '.join(cases)}, all")
    for name in wanted:
        kind, *shape = cases[name]
        bench = bench_train if kind == "train" else bench_inference
        print(json.dumps(bench(args.model, config, args.dtype, args.repeats, *shape)), flush=True)


if __name__ == "__main__":
    main()
