"""``compute_metrics``: jitted programs compute a chosen set of metrics on a batch of images.

Inputs are gray arrays in 0..255 (after the convention's gray conversion, see
:func:`jaxfuse.metrics.conventions.to_gray`), shaped (B, H, W), uint8 or float64. They are
zero-padded to a bucket shape (:mod:`jaxfuse.metrics.buckets`, :mod:`jaxfuse.metrics.canvas`)
with their true sizes passed as data, so one compilation serves every image size of a bucket
(per batch size, metric, convention). Only whole-image transforms compile per image size: PC
(``EXACT_SHAPE``) entirely, FMI_dct and FMI_w (``TRANSFORMED``) their DCT / DWT features, which
are then scored on bucket canvases.

Each metric is its own program: only the requested metrics are compiled. (Measured on TNO's 42
pairs: the 9 cheapest metrics as one program saved 0.25 s of compilation and cost 0.2 s of
scoring; all 12 CDDFuse metrics as one program ran 2x slower.) Intermediates a metric reuses
(histograms, entropies, Sobel responses, feature maps) are computed once per trace through
:class:`Context`.

Precision: the metrics run in float64 inside ``jax.enable_x64`` (local to this call; the rest
of jaxfuse is untouched). The reference code tests intermediate values for exact zero or
equality (Qabf/Nabf gradients, FMI window statistics, MEF-SSIM's flat windows, CC of constant
images), so parity needs float64 and, in places, the reference's order of summation. Float32
throughout was measured against float64 on 7 datasets: VIF drifted by up to 2e-4 relative (its
local variances cancel), SSIM by 1e-2, FMI by 1e-1, so only VIF's logarithms, applied to
float64 statistics, run in float32 (1.2e-9 relative on the reference crops).
"""

from __future__ import annotations

import ctypes
import functools
import sys
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxfuse import executables
from jaxfuse.metrics import (buckets, canvas, conventions, fmi, gradient, information, phase,
                             statistics, structural)

# Name -> function(ctx) -> (B,). Order is the column order of reports.
METRICS = {
    "EN": information.EN, "SD": statistics.SD, "SF": gradient.SF, "AG": gradient.AG,
    "MI": information.MI, "CC": statistics.CC, "SCD": statistics.SCD, "PSNR": statistics.PSNR,
    "MSE": statistics.MSE, "VIF": structural.VIF, "Qabf": gradient.Qabf, "Nabf": gradient.Nabf,
    "SSIM": structural.SSIM, "MS_SSIM": structural.MS_SSIM, "FMI_pixel": fmi.FMI_pixel,
    "FMI_dct": fmi.FMI_features, "FMI_w": fmi.FMI_features, "Qe": structural.Qe, "PC": phase.PC,
}
# Metrics the CDDFuse evaluator also computes (the benchmark compares these).
CDDFUSE_METRICS = ("EN", "SD", "SF", "AG", "MI", "CC", "SCD", "PSNR", "MSE", "VIF", "Qabf", "SSIM")
# Metrics of whole-image transforms (FFT): computed on canvases of the exact image shape. A metric
# that reads its whole input array rather than ``ctx.size``'s valid region belongs here.
EXACT_SHAPE = ("PC",)
# Metrics computed on feature maps (fmi.TRANSFORMS) that a first program computes at the exact
# image shape; the metric itself then runs on bucket canvases of the feature maps.
TRANSFORMED = tuple(fmi.TRANSFORMS)
PER_SIZE = EXACT_SHAPE + TRANSFORMED  # metrics that compile something per image size
# Lower is better for these; higher is better for the rest.
LOWER_IS_BETTER = ("MSE", "Nabf")


class Context:
    """The batch being scored plus a memo of shared intermediates (valid within one trace).

    ``f``, ``a``, ``b`` are canvases (B, H, W); ``size`` = (h, w), each (B,) int, is the valid
    top-left block of each image (see :mod:`jaxfuse.metrics.canvas`).
    """

    def __init__(self, f, a, b, size, conv: conventions.Convention):
        self.f, self.a, self.b, self.size, self.conv = f, a, b, size, conv
        self._memo = {}

    def memo(self, key, compute):
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]


def parse_names(names: str | Sequence[str] | None) -> tuple[str, ...]:
    """'EN,SD' / ['EN', 'SD'] / None (all) -> validated tuple in canonical order."""
    if names is None:
        return tuple(METRICS)
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRICS)}")
    return tuple(n for n in METRICS if n in set(names))


@functools.cache
def keep_freed_memory(pad: int = 256 << 20) -> None:
    """Makes glibc's malloc keep freed memory for reuse instead of returning it to the OS.

    Every metric program allocates and frees tens of MB of temporaries per call; handed back
    to the OS (glibc mmaps large blocks and trims the heap), they are page-faulted in again on
    every call: VIF ran 3x slower on a 2-core VM. This serves all allocations from the heap
    (M_MMAP_MAX = 0) and keeps ``pad`` bytes of it when trimming (M_TOP_PAD). It is
    process-wide: :func:`jaxfuse.evaluate.evaluate_folder` calls it; a no-op off glibc.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-4, 0)  # M_MMAP_MAX
        libc.mallopt(-2, pad)  # M_TOP_PAD
    except (OSError, AttributeError):
        pass


@functools.cache
def _source() -> str:
    """Hash of the metric code: part of every cached executable's key."""
    return executables.source_hash(*Path(__file__).parent.glob("*.py"))


# 512-bit vectors for the metrics' fused loops where the CPU has them: 69 -> 65 ms of CPU per
# 576x768 image for the 12 CDDFuse metrics, identical scores (the models keep XLA's default).
_XLA_OPTIONS = {"xla_cpu_prefer_vector_width": 512}


def _run(name: str, jitted, args):
    """Runs ``jitted`` on ``args`` through its compiled executable (:mod:`jaxfuse.executables`:
    a later process with the same cache directory loads it without tracing)."""
    return executables.compiled(name, jitted, args, _source(), _XLA_OPTIONS)(*args)


@functools.cache
def _program(name: str, convention: str):
    conv = conventions.get(convention)
    return jax.jit(lambda f, a, b, h, w: METRICS[name](Context(*_float64(f, a, b), (h, w), conv)))


def _float64(*xs):
    """The images as float64 (a no-op for float64; exact for uint8)."""
    return [x.astype(jnp.float64) for x in xs]


def compute_metrics(fused, ir, vi, names=None, convention: str = "matlab",
                    canvas_shape: tuple[int, int] | None = None) -> dict[str, np.ndarray]:
    """Scores a batch: ``fused``, ``ir``, ``vi`` are (B, H, W) or (H, W) gray arrays in 0..255.
    Three uint8 arrays reach the programs as uint8 (converted to float64 inside them, same
    values): an eighth of the memory traffic of float64 canvases; anything else is float64.

    ``canvas_shape`` (>= (H, W); default :func:`buckets.bucket_shape`) is the padded shape the
    program is compiled for: callers scoring many sizes pass a few shared shapes.

    Returns {metric name: float64 array of shape (B,)} (shape () for unbatched input). A metric
    that is undefined on an image (e.g. CC or SCD of a constant image, MS_SSIM below 44 pixels)
    is NaN there; :func:`undefined` lists those.
    """
    names = parse_names(names)
    conventions.get(convention)
    arrays = [np.asarray(x) for x in (fused, ir, vi)]
    if not all(x.dtype == np.uint8 for x in arrays):
        arrays = [x.astype(np.float64, copy=False) for x in arrays]
    squeeze = arrays[0].ndim == 2
    arrays = [x[None] if x.ndim == 2 else x for x in arrays]
    if not (arrays[0].shape == arrays[1].shape == arrays[2].shape) or arrays[0].ndim != 3:
        raise ValueError(f"fused/ir/vi must share one (B, H, W) shape, got "
                         f"{[x.shape for x in arrays]}")
    if min(arrays[0].shape[1:]) < 3:
        raise ValueError(f"images must be at least 3x3, got {arrays[0].shape[1:]}")
    bsz, h, w = arrays[0].shape
    if canvas_shape and (canvas_shape[0] < h or canvas_shape[1] < w):
        raise ValueError(f"canvas_shape {canvas_shape} is smaller than the images ({h}, {w})")
    out = {}
    bucketed = tuple(n for n in names if n not in PER_SIZE)
    exact = tuple(n for n in names if n in EXACT_SHAPE)
    with jax.enable_x64(True):
        _dispatch(out, bucketed, arrays, canvas_shape or buckets.bucket_shape(h, w), convention)
        _dispatch(out, exact, arrays, (h, w), convention)
        for n in names:
            if n in TRANSFORMED:
                feats = [np.asarray(x) for x in _run(f"transform-{n}", _transform(n),
                                                     jax.device_put(arrays))]
                fh, fw = feats[0].shape[1:]
                fits = canvas_shape and canvas_shape[0] >= fh and canvas_shape[1] >= fw
                _dispatch(out, (n,), feats, canvas_shape if fits else buckets.bucket_shape(fh, fw),
                          convention)
        out = {n: np.asarray(out[n], dtype=np.float64) for n in names}
    return {k: v[0] for k, v in out.items()} if squeeze else out


def _dispatch(out: dict, names, arrays, shape, convention: str) -> None:
    """Starts (asynchronously) the programs of ``names`` on ``arrays`` (B, h, w) zero-padded
    to canvases of ``shape``; their results land in ``out``."""
    if not names:
        return
    bsz, h, w = arrays[0].shape
    padded = [np.pad(x, ((0, 0), (0, shape[0] - h), (0, shape[1] - w))) for x in arrays]
    sizes = [np.full(bsz, v, dtype=np.int64) for v in (h, w)]
    args = jax.device_put(padded + sizes)  # a copy, not a program (jnp.asarray: one per shape)
    out.update((n, _run(f"{n}-{convention}", _program(n, convention), args)) for n in names)


@functools.cache
def _transform(name: str):
    """The jitted feature transform of a ``TRANSFORMED`` metric, applied to (fused, ir, vi)."""
    transform = fmi.TRANSFORMS[name]
    return jax.jit(lambda *xs: [transform(x) for x in _float64(*xs)])


def undefined(result: dict[str, np.ndarray]) -> list[str]:
    """Names of the metrics that came out NaN/inf (undefined) for any image of a result."""
    return [k for k, v in result.items() if not np.all(np.isfinite(v))]
