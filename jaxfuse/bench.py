"""python -m jaxfuse.bench --model siba [--dtype bfloat16] [--repeats 5]

Prints one JSON line per case: training steps/s (128x128, batch 4, the full optimiser step of
``jaxfuse.train``) and inference images/s (128x128 and 640x480, batch 1, as the official test
script runs). Compile time is reported separately; steady-state times are the median of
``repeats`` timed runs after ``block_until_ready``.
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


def bench_train(model_name: str, config, dtype: str, repeats: int, size=128, batch=4) -> dict:
    spec = models.get(model_name)
    module = spec.build(config.model.to_dict(), dtype=dtype)
    x = jax.random.uniform(jax.random.key(1), (batch, size, size, 1))
    params = module.init(jax.random.key(0), x, x)["params"]
    schedule = train.make_schedule(config.train, 100)
    tx = train.make_optimizer(config.train, schedule, params, ())
    state = {"step": jnp.zeros((), jnp.int32), "params": params, "opt_state": tx.init(params)}
    step = jax.jit(train.make_train_step(spec.loss_fn(module, config), tx, schedule, 0), donate_argnums=0)
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
    params = module.init(jax.random.key(0), x[:, :16, :16], x[:, :16, :16])["params"]
    fn = jax.jit(lambda p, a, b: spec.predict(module, p, a, b))
    precision = "highest" if dtype == "float32" else "default"
    with jax.default_matmul_precision(precision):
        result = _time(lambda: fn(params, x, x[:, ::-1]), repeats)
    return _record(f"infer_{h}x{w}_b{batch}", *result, batch, "images_per_s", dtype)


CASES = {  # name -> (model name, config, dtype, repeats) -> record
    "train": bench_train,
    "infer128": lambda *a: bench_inference(*a, 128, 128),
    "infer640x480": lambda *a: bench_inference(*a, 480, 640),
}


def _cases(text: str) -> list[str]:
    """argparse type for --cases: a comma-separated subset of CASES."""
    cases = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown or not cases:
        raise argparse.ArgumentTypeError(f"unknown case(s) {', '.join(unknown) or repr(text)}; "
                                         f"valid: {', '.join(CASES)}")
    return cases


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m jaxfuse.bench", description=__doc__.split("\n\n")[1],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model", default="siba", choices=sorted(models.REGISTRY), help="model (its configs/<model>.py)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"],
                        help="compute dtype (parameters stay float32)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per case (after the first, compiling one)")
    parser.add_argument("--cases", type=_cases, default=",".join(CASES),
                        help=f"comma-separated subset of: {', '.join(CASES)}")
    args = parser.parse_args(argv)
    try:
        config = configs.load(args.model)
    except configs.ConfigError as e:
        configs.exit_with(e)
    for case in args.cases:
        print(json.dumps(CASES[case](args.model, config, args.dtype, args.repeats)), flush=True)


if __name__ == "__main__":
    main()
