"""python -m jaxfuse.metrics.bench: jaxfuse metrics vs the CDDFuse Python evaluator, end to end.

    python -m jaxfuse.metrics.bench --fused FUSED_DIR --ir tno/ir --vi tno/vi \
        --cddfuse-python /path/to/venv/bin/python --cddfuse-evaluator /path/to/utils/Evaluator.py

Times, on the same images and the metrics both have (``CDDFUSE_METRICS``), image decoding
included: (1) jaxfuse cold (compilation of every canvas shape included), (2) jaxfuse warm (same
process, compiled), (3) the CDDFuse evaluator run in its own interpreter (it needs OpenCV,
scikit-learn, scikit-image, SciPy, which jaxfuse does not), and (4) jaxfuse with all metrics,
warm. It also prints the largest per-image relative difference between jaxfuse's ``cddfuse``
convention and the evaluator. The evaluator's ``ssim`` gets ``data_range=2`` (its scikit-image
0.19 default for floats; current scikit-image raises without it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from jaxfuse.evaluate import enable_compilation_cache, evaluate_folder
from jaxfuse.metrics import CDDFUSE_METRICS

# Our driver for the evaluator (run by --cddfuse-python); calls its public methods only.
_DRIVER = r'''
import functools, json, os, sys, time
sys.path.insert(0, os.path.dirname(sys.argv[1]))
import Evaluator as E
from skimage.metrics import structural_similarity
E.ssim = functools.partial(structural_similarity, data_range=2.0)
ev, (fused, ir_dir, vi_dir) = E.Evaluator, sys.argv[2:5]
t0 = time.perf_counter()
out = {}
for name in sorted(os.listdir(ir_dir)):
    r = lambda d: E.image_read_cv2(os.path.join(d, name), "GRAY")
    ir, vi, fi = r(ir_dir), r(vi_dir), r(fused)
    out[name] = [float(v) for v in (
        ev.EN(fi), ev.SD(fi), ev.SF(fi), ev.AG(fi), ev.MI(fi, ir, vi), ev.CC(fi, ir, vi),
        ev.SCD(fi, ir, vi), ev.PSNR(fi, ir, vi), ev.MSE(fi, ir, vi), ev.VIFF(fi, ir, vi),
        ev.Qabf(fi, ir, vi), ev.SSIM(fi, ir, vi))]
print(json.dumps({"seconds": time.perf_counter() - t0, "values": out}))
'''
_DRIVER_ORDER = ("EN", "SD", "SF", "AG", "MI", "CC", "SCD", "PSNR", "MSE", "VIF", "Qabf", "SSIM")


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--fused", required=True)
    p.add_argument("--ir", required=True)
    p.add_argument("--vi", required=True)
    p.add_argument("--cddfuse-python", help="interpreter with cv2, sklearn, skimage, scipy")
    p.add_argument("--cddfuse-evaluator", help="path to MMIF-CDDFuse utils/Evaluator.py")
    p.add_argument("--skip-all-metrics", action="store_true")
    p.add_argument("--xla-cache", default="", help="persistent compilation cache dir (default: off)")
    args = p.parse_args(argv)
    enable_compilation_cache(args.xla_cache)
    run = lambda names: evaluate_folder(args.fused, args.ir, args.vi, names, "cddfuse", False)  # noqa: E731
    cold, (images, ours) = _timed(lambda: run(CDDFUSE_METRICS))
    warm, _ = _timed(lambda: run(CDDFUSE_METRICS))
    report = {"images": len(images), "jaxfuse_cold_s": cold, "jaxfuse_warm_s": warm}
    if args.cddfuse_python and args.cddfuse_evaluator:
        with tempfile.TemporaryDirectory() as tmp:  # private dir: nothing there can shadow cv2
            driver = Path(tmp) / "cddfuse_driver.py"
            driver.write_text(_DRIVER)
            t0 = time.perf_counter()
            res = subprocess.run([args.cddfuse_python, str(driver), args.cddfuse_evaluator,
                                  args.fused, args.ir, args.vi], capture_output=True, text=True)
            report["cddfuse_process_s"] = time.perf_counter() - t0
        if res.returncode:
            raise SystemExit(f"the CDDFuse evaluator failed:\n{res.stderr[-2000:]}")
        ref = json.loads(res.stdout.strip().splitlines()[-1])
        report["cddfuse_s"] = ref["seconds"]
        report["speedup_warm"] = ref["seconds"] / warm
        report["speedup_cold"] = ref["seconds"] / cold
        worst = {}
        for k, m in enumerate(_DRIVER_ORDER):
            want = np.array([ref["values"][n][k] for n in images])
            have = ours[m]
            rel = np.abs(have - want) / np.maximum(np.abs(want), 1e-12)
            worst[m] = float(np.max(np.where(np.abs(have - want) <= 1e-4, 0.0, rel)))
        report["max_rel_diff_vs_cddfuse"] = worst
    if not args.skip_all_metrics:
        run(None)
        report["jaxfuse_all_metrics_warm_s"], _ = _timed(lambda: run(None))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
