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


def crossfuse_rule_state_dicts(keys_txt: Path) -> dict[str, dict[str, np.ndarray]]:
    """The three rule-weight state dicts of ../shared/reference/crossfuse (its README, "Weights").

    Key i (0-based over all key lines of keys.txt) draws ``default_rng([2024, i]).standard_normal``
    in float64; the value is chosen by the README's cases, then rounded once to float32.
    """
    entries, section = [], None
    for line in Path(keys_txt).read_text().splitlines():
        if line.startswith("## "):
            section = line.split()[1]
        elif line and not line.startswith("#"):
            name, shape, _ = line.split("\t")
            entries.append((section, name, tuple(int(s) for s in shape.strip("()").split(",") if s.strip())))
    batch_norms = {(m, k.rsplit(".", 1)[0]) for m, k, _ in entries if k.endswith(".running_mean")}
    out: dict[str, dict[str, np.ndarray]] = {}
    for i, (section, name, shape) in enumerate(entries):
        n = np.random.default_rng([2024, i]).standard_normal(shape)
        prefix, leaf = name.rsplit(".", 1)
        if leaf == "num_batches_tracked":
            value = np.array(0, np.int64)
        elif prefix.endswith(("conv_sh", "conv_de")):
            value = np.full(shape, 1 / 9)
        elif name == "conv_gra.weight":
            value = np.tile([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], shape[:2] + (1, 1))
        elif leaf == "running_mean":
            value = 0.1 * n
        elif leaf == "running_var":
            value = 1.0 + 0.1 * np.abs(n)
        elif (section, prefix) in batch_norms or prefix.rsplit(".", 1)[-1].startswith("norm"):
            value = 1.0 + 0.1 * n if leaf == "weight" else 0.1 * n
        elif leaf == "weight":
            value = n / np.sqrt(np.prod(shape[1:]))
        else:
            value = 0.05 * n
        out.setdefault(section, {})[name] = value if value.dtype == np.int64 else value.astype(np.float32)
    return out
