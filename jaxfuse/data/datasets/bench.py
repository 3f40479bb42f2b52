"""Grain throughput: a prepared array_record dataset vs. the same pairs read from image files.

    python -m jaxfuse.data.datasets.bench [--sets msrs_test,roadscene221,llvip] [--workers 0,2]

Each set (``../shared/data/<set>/{ir,vi}``) is prepared once with the generic ``ir/`` + ``vi/``
builder (``tno``) into a temporary data_dir; both sources then go through the training
pipeline (:func:`jaxfuse.data.pipeline.train_dataset`: shuffle, repeat, random 128x128 crop,
Y channel, batch 8). Pairs/s is timed over ``--batches`` batches after ``--warmup`` batches.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from absl import app, flags

_SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data"
_SETS = flags.DEFINE_list("sets", ["msrs_test", "roadscene221", "llvip"], "folders of ../shared/data")
_ROOT = flags.DEFINE_string("root", str(_SHARED), "folder holding the sets")
_WORKERS = flags.DEFINE_list("workers", ["0", "2"], "Grain worker processes to try")
_BATCHES = flags.DEFINE_integer("batches", 60, "timed batches")
_WARMUP = flags.DEFINE_integer("warmup", 5, "untimed batches (worker start-up, first reads)")


def throughput(source, *, workers: int, batches: int, warmup: int, batch_size: int = 8,
               patch: int = 128) -> float:
    """Pairs per second through the training pipeline, after ``warmup`` batches."""
    from jaxfuse.data.pipeline import train_dataset

    it = iter(train_dataset(source, batch_size=batch_size, patch=patch, num_workers=workers))
    for _ in range(warmup):
        next(it)
    t = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * batch_size / (time.perf_counter() - t)


def main(argv):
    del argv
    from jaxfuse.data.datasets import tfds_source
    from jaxfuse.data.prepare import prepare
    from jaxfuse.data.sources import FolderPairSource

    root = Path(_ROOT.value)
    valid = sorted(d.name for d in root.glob("*") if (d / "ir").is_dir() and (d / "vi").is_dir())
    unknown = [name for name in _SETS.value if name not in valid]
    if unknown:
        print(f"error: --sets: no {', '.join(unknown)} (with ir/ and vi/) in {root}; "
              f"valid: {', '.join(valid) or 'none'}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'set':14s} {'pairs':>5s} {'workers':>7s} {'folder pairs/s':>15s} {'tfds pairs/s':>13s}")
        for name in _SETS.value:
            root = Path(_ROOT.value) / name
            data_dir = Path(tmp) / name
            t = time.perf_counter()
            prepare("tno", str(root), str(data_dir), progress=False)
            built = time.perf_counter() - t
            folder, tfds_src = FolderPairSource(root / "ir", root / "vi"), tfds_source("tno", "test", data_dir)
            mib = sum(f.stat().st_size for f in data_dir.rglob("*array_record*")) / 2**20
            raw = sum(f.stat().st_size for f in (root / "ir").iterdir()) + sum(
                f.stat().st_size for f in (root / "vi").iterdir())
            for w in map(int, _WORKERS.value):
                kw = dict(workers=w, batches=_BATCHES.value, warmup=_WARMUP.value)
                f, d = throughput(folder, **kw), throughput(tfds_src, **kw)
                print(f"{name:14s} {len(folder):5d} {w:7d} {f:15.1f} {d:13.1f}", flush=True)
            print(f"{'':14s} built in {built:.1f} s; array_record {mib:.1f} MiB vs files {raw / 2**20:.1f} MiB")


if __name__ == "__main__":
    app.run(main)
