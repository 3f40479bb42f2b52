"""python -m jaxfuse.fuse --checkpoint CKPT --ir PATH --vi PATH --out PATH

Fuses one pair (files) or two folders (pairs matched by file name). The network fuses the
visible image's Y channel with the infrared image; for a colour visible image the visible
Cb/Cr are put back and RGB is written. Each model's own ``predict`` does its padding or tiling
(and, for CrossFuse, its in-network min-max stretch) and its ``quantize`` the official test
script's rounding (SIBA and CrossFuse: clamp to [0, 1], truncation); nothing is stretched
afterwards. Any size in (down to the model's minimum), the same size out. Same-size images are
batched (the last batch padded), so there is one compile per image size. Every output is
written to a temporary file and renamed.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxfuse import checkpoint, models
from jaxfuse.data import color, images
from jaxfuse.data.sources import FolderPairSource

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


class Fuser:
    """A model and its variables, with a jitted uint8-in, uint8-out fusion function."""

    def __init__(self, model_name: str, model_config: dict, variables, dtype: str = "float32", seed: int = 0,
                 source: str = "checkpoint"):
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
        self.dtype = dtype
        self.spec = spec = models.get(model_name)
        module = spec.build(dict(model_config), dtype=dtype)
        spec.check_complete(module, variables, source)
        self.variables = jax.device_put(jax.tree.map(jnp.asarray, dict(variables)))
        self.rng = jax.random.key(seed)

        def fuse_batch(variables, rng, ir_u8, vi_u8):
            ir = ir_u8.astype(jnp.float32) / 255.0
            vi = vi_u8.astype(jnp.float32) / 255.0
            if vi.shape[-1] == 3:
                y, cb, cr = color.rgb_to_ycbcr(vi, xp=jnp)
            else:
                y = vi
            fused_y = jnp.clip(spec.predict(module, variables, ir, y, rng), 0.0, 1.0)
            out = color.ycbcr_to_rgb(fused_y, cb, cr, xp=jnp) if vi.shape[-1] == 3 else fused_y
            return spec.quantize(out)

        self._fuse = jax.jit(fuse_batch)

    @classmethod
    def from_checkpoint(cls, path, dtype: str = "float32", seed: int = 0) -> "Fuser":
        variables, config = checkpoint.load_variables(path)
        return cls(config["model_name"], config["model"], variables, dtype, seed, source=str(path))

    def __call__(self, ir_u8: np.ndarray, vi_u8: np.ndarray) -> np.ndarray:
        """(B, H, W, 1) uint8 ir and (B, H, W, 1|3) uint8 vi -> (B, H, W, 1|3) uint8 fused."""
        self.spec.check_size(*ir_u8.shape[1:3])
        precision = "highest" if self.dtype == "float32" else "default"
        with jax.default_matmul_precision(precision):
            return np.asarray(self._fuse(self.variables, self.rng, ir_u8, vi_u8))


def fuse_folders(checkpoint_path, ir_dir, vi_dir, out_dir, dtype: str = "float32",
                 batch_size: int = 4, fuser: Fuser | None = None, progress: bool = False) -> list[Path]:
    """Fuses every pair of two folders into ``out_dir`` (same file names); returns the paths.

    All pairs are checked (names pair up, readable images, equal sizes) before anything is
    written, so a bad input fails early with every offending file named.
    """
    source = FolderPairSource(ir_dir, vi_dir)
    fuser = fuser or Fuser.from_checkpoint(checkpoint_path, dtype)
    groups = defaultdict(list)  # (H, W, vi channels) -> pair indices; one compile per group
    too_small = []
    for i, shape in enumerate(source.shapes):
        groups[shape].append(i)
        try:
            fuser.spec.check_size(shape[0], shape[1], f"pair {source.pairs[i][0]} ({source.pairs[i][1]})")
        except ValueError as e:
            too_small.append(str(e))
    if too_small:
        raise images.ImageError(f"{len(too_small)} pair(s) too small:\n  " + "\n  ".join(too_small))
    written = []
    bar = _progress(len(source)) if progress else None
    for indices in groups.values():
        for start in range(0, len(indices), batch_size):
            chunk = [source[i] for i in indices[start:start + batch_size]]
            padded = chunk + [chunk[-1]] * (min(batch_size, len(indices)) - len(chunk))
            fused = fuser(np.stack([p["ir"] for p in padded]), np.stack([p["vi"] for p in padded]))
            for pair, img in zip(chunk, fused):
                written.append(Path(out_dir) / pair["name"])
                images.write_image(written[-1], img)
                if bar is not None:
                    bar.update(1)
    if bar is not None:
        bar.close()
    return written


def fuse_files(fuser: Fuser, ir_path, vi_path, out_path) -> Path:
    """Fuses one pair of files into ``out_path``."""
    ir, vi = images.read_gray(ir_path), images.read_image(vi_path)
    images.check_same_size(Path(ir_path).name, ir, vi, ir_path, vi_path)
    try:
        fuser.spec.check_size(*ir.shape[:2], str(ir_path))
    except ValueError as e:
        raise images.ImageError(str(e)) from None
    images.write_image(out_path, fuser(ir[None], vi[None])[0])
    return Path(out_path)


def _progress(total):
    from tqdm import tqdm  # noqa: PLC0415

    return tqdm(total=total, unit="pair", disable=not sys.stderr.isatty())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxfuse.fuse", description=__doc__.split("\n\n")[1])
    parser.add_argument("--checkpoint", required=True, help="training workdir, checkpoints/ dir or one step dir")
    parser.add_argument("--ir", required=True, help="infrared image or folder")
    parser.add_argument("--vi", required=True, help="visible image or folder (colour is kept)")
    parser.add_argument("--out", required=True, help="output image (pair) or folder (folders)")
    parser.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    parser.add_argument("--batch_size", type=int, default=4, help="same-size images fused together")
    parser.add_argument("--seed", type=int, default=0, help="rng seed of stochastic models (same seed, same output)")
    args = parser.parse_args(argv)
    try:
        fuser = Fuser.from_checkpoint(args.checkpoint, args.dtype, args.seed)
        if Path(args.ir).is_dir() or Path(args.vi).is_dir():
            written = fuse_folders(None, args.ir, args.vi, args.out, batch_size=args.batch_size,
                                   fuser=fuser, progress=True)
            print(f"fused {len(written)} pairs into {args.out}")
        else:
            print(f"fused {fuse_files(fuser, args.ir, args.vi, args.out)}")
    except (images.ImageError, checkpoint.CheckpointError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
