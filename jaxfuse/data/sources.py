"""Random-access pair sources for the Grain pipeline, selected by a string spec.

Pair sources yield dicts ``{"ir": uint8 (H, W, 1), "vi": uint8 (H, W, 1 or 3), "name": str}``
(TFDS sources may add labels); image sources (for stages that train on single images, e.g.
DMFuse's DDPM stage) yield ``{"image": uint8 (H, W, 1 or 3), "name": str}``. Each source says
which in its ``yields``. Specs: ``synthetic``, ``folder:PATH`` (PATH holds ``ir/`` and ``vi/``;
or ``folder:IR_DIR,VI_DIR``), ``images:PATH`` (every image below PATH), ``tfds:NAME`` (a
prepared TFDS dataset, see ``python -m jaxfuse.data.prepare``).
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from absl import logging

from jaxfuse.data import images
from jaxfuse.data.synthetic import SyntheticPairs

KINDS = ("synthetic", "folder", "images", "tfds")  # the spec's part before ":"


class SourceError(ValueError):
    """A data-source spec that names nothing usable for the stage (one line for the user)."""


class FolderPairSource:
    """Pairs ``ir_dir/NAME`` with ``vi_dir/NAME``; checks every pair up front.

    Checked from the file headers at construction (fast, no decoding): names pair up, each
    file is an image, both images of a pair have the same size, and (if ``min_size`` is
    given) both sides are at least that large. All offending files are named at once.
    ``shapes[i]`` is (H, W, channels of the decoded visible image) of pair ``i``. With
    ``pad_small`` a pair below ``min_size`` is not an error but logged (the pipeline pads it).
    """

    yields = "pairs"

    def __init__(self, ir_dir, vi_dir, min_size: int = 0, pad_small: bool = False):
        self.pairs = images.pair_folders(ir_dir, vi_dir)
        self.shapes, problems = [], []
        for name, ir_path, vi_path in self.pairs:
            try:
                (ir_size, _), (vi_size, vi_mode) = _header(ir_path), _header(vi_path)
            except images.ImageError as e:
                problems.append(str(e))
                continue
            self.shapes.append((vi_size[1], vi_size[0], 1 if vi_mode in images.GRAY_MODES else 3))
            if ir_size != vi_size:
                problems.append(f"pair {name}: ir {ir_path} is {ir_size[0]}x{ir_size[1]} but vi "
                                f"{vi_path} is {vi_size[0]}x{vi_size[1]} (W x H)")
            elif min(ir_size) < min_size:
                small = f"pair {name}: {ir_path} is {ir_size[0]}x{ir_size[1]}, smaller than the {min_size}x{min_size}"
                if pad_small:
                    logging.warning("%s training patch: reflect-padded to it", small)
                else:
                    problems.append(f"{small} needed (patch size + crop margins)")
        if problems:
            raise images.ImageError(f"{len(problems)} bad pair(s) in {ir_dir} / {vi_dir}:\n  "
                                    + "\n  ".join(problems))

    def __len__(self) -> int:
        return len(self.pairs)

    def __repr__(self) -> str:
        return f"FolderPairSource({len(self)} pairs)"

    def __getitem__(self, index: int) -> dict:
        name, ir_path, vi_path = self.pairs[index]
        ir, vi = images.read_gray(ir_path), images.read_image(vi_path)
        images.check_same_size(name, ir, vi, ir_path, vi_path)
        return {"ir": ir, "vi": vi, "name": name}


def _header(path: Path) -> tuple[tuple[int, int], str]:
    """(W, H) and PIL mode from the file header, without decoding the pixels."""
    try:
        with Image.open(path) as img:
            return img.size, img.mode
    except Exception:
        raise images.ImageError(f"{path}: not an image file (or a format Pillow cannot read)") from None


class ImageFolderSource:
    """Every image below ``root`` (recursively, sorted), as ``{"image", "name"}`` items."""

    yields = "images"

    def __init__(self, root):
        root = Path(root)
        if not root.is_dir():
            raise images.ImageError(f"{root}: no such directory")
        self.root = root
        self.files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in images.IMAGE_SUFFIXES)
        if not self.files:
            raise images.ImageError(f"{root}: no images ({', '.join(images.IMAGE_SUFFIXES)}) below this folder")

    def __len__(self) -> int:
        return len(self.files)

    def __repr__(self) -> str:
        return f"ImageFolderSource({self.root}, {len(self)} images)"

    def __getitem__(self, index: int) -> dict:
        path = self.files[index]
        return {"image": images.read_image(path), "name": path.relative_to(self.root).as_posix()}


class SyntheticImages:
    """The visible images of :class:`SyntheticPairs`, as single images (smoke runs of image stages)."""

    yields = "images"

    def __init__(self, num: int, size: int, seed: int = 0):
        self.pairs = SyntheticPairs(num, size, size, seed=seed)

    def __len__(self) -> int:
        return len(self.pairs)

    def __repr__(self) -> str:
        return f"SyntheticImages({self.pairs!r})"

    def __getitem__(self, index: int) -> dict:
        item = self.pairs[index]
        return {"image": item["vi"], "name": item["name"]}


class FirstN:
    """The first ``n`` items of a source (CrossFuse's recipes use the first N files of a sorted folder)."""

    def __init__(self, source, n: int):
        self.source, self.n = source, min(n, len(source))
        self.yields = source.yields

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        return f"{self.source!r}[:{self.n}]"

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.n:
            raise IndexError(index)
        return self.source[index]


def make_source(spec: str, *, data: str = "pairs", split: str = "train", min_size: int = 0,
                data_dir: str | None = None, synthetic_pairs: int = 64, synthetic_size: int = 160, seed: int = 0,
                limit: int = 0, pad_small: bool = False):
    """Builds the source named by ``spec`` (see module docstring) for a stage that trains on
    ``data`` ("pairs" or "images"); ``limit`` > 0 keeps its first items."""
    source = _make_source(spec, data=data, split=split, min_size=min_size, data_dir=data_dir,
                          synthetic_pairs=synthetic_pairs, synthetic_size=synthetic_size, seed=seed,
                          pad_small=pad_small)
    if source.yields != data:
        hint = "images:PATH or tfds:natural_images" if data == "images" else "folder:PATH or a pair TFDS dataset"
        raise SourceError(f"data source {spec!r} yields {source.yields}, but this stage trains on {data}: use {hint}")
    return FirstN(source, limit) if limit > 0 else source


def _make_source(spec, *, data, split, min_size, data_dir, synthetic_pairs, synthetic_size, seed, pad_small):
    kind, _, arg = spec.partition(":")
    if kind == "synthetic":
        if data == "images":
            return SyntheticImages(synthetic_pairs, synthetic_size, seed=seed)
        return SyntheticPairs(synthetic_pairs, synthetic_size, synthetic_size, seed=seed)
    if kind == "folder":
        if not arg:
            raise SourceError("folder source needs a path: folder:PATH (with ir/ and vi/) or folder:IR,VI")
        ir_dir, vi_dir = arg.split(",", 1) if "," in arg else (Path(arg) / "ir", Path(arg) / "vi")
        return FolderPairSource(ir_dir, vi_dir, min_size=min_size, pad_small=pad_small)
    if kind == "images":
        if not arg:
            raise SourceError("images source needs a path: images:PATH")
        return ImageFolderSource(arg)
    if kind == "tfds":
        from jaxfuse.data.datasets import tfds_source  # noqa: PLC0415 - optional heavy import
        return tfds_source(arg, split, data_dir)
    raise SourceError(f"unknown data source {spec!r}: use synthetic, folder:PATH, images:PATH or tfds:NAME")
