"""Small shared test utilities: writing image folders, tiny configs, umask and file modes."""

import contextlib
import os
import stat
from pathlib import Path

import numpy as np
from PIL import Image

from jaxfuse import configs


def write_pair_folder(root: Path, sizes, rgb_vi: bool = True, seed: int = 0) -> Path:
    """Writes ``root/ir/NN.png`` (grey) and ``root/vi/NN.png`` (RGB or grey) for each (H, W)."""
    rng = np.random.default_rng(seed)
    for sub in ("ir", "vi"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i, (h, w) in enumerate(sizes):
        Image.fromarray(rng.integers(0, 256, (h, w), np.uint8)).save(root / "ir" / f"{i:02d}.png")
        vi = rng.integers(0, 256, (h, w, 3) if rgb_vi else (h, w), np.uint8)
        Image.fromarray(vi).save(root / "vi" / f"{i:02d}.png")
    return root


def tiny_config(**train):
    """SIBA at 16 channels / 2 heads on 32x32 synthetic patches, 4 pairs per batch."""
    c = configs.load("siba:smoke,tiny")
    c.data.patch_size, c.data.synthetic_size, c.data.synthetic_pairs = 32, 48, 16
    c.train.update(dict(batch_size=4, log_every=1, checkpoint_every=2, image_every=1000), **train)
    return c


@contextlib.contextmanager
def umask(mask: int):
    """Runs the block under ``os.umask(mask)``, then restores the previous umask."""
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path) -> int:
    """Permission bits of ``path``, e.g. 0o644."""
    return stat.S_IMODE(os.stat(path).st_mode)
