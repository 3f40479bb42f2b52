"""Random-access pair sources for the Grain pipeline, selected by a string spec.

Every source yields dicts ``{"ir": uint8 (H, W, 1), "vi": uint8 (H, W, 1 or 3), "name": str}``
(TFDS sources may add labels). Specs: ``synthetic``, ``folder:PATH`` (PATH holds ``ir/`` and
``vi/``; or ``folder:IR_DIR,VI_DIR``), ``tfds:NAME`` (a prepared TFDS dataset, see
``python -m jaxfuse.data.prepare``).
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from jaxfuse.data import images
from jaxfuse.data.synthetic import SyntheticPairs

KINDS = ("synthetic", "folder", "tfds")  # the spec's part before ":"


class FolderPairSource:
    """Pairs ``ir_dir/NAME`` with ``vi_dir/NAME``; checks every pair up front.

    Checked from the file headers at construction (fast, no decoding): names pair up, each
    file is an image, both images of a pair have the same size, and (if ``min_size`` is
    given) both sides are at least that large. All offending files are named at once.
    ``shapes[i]`` is (H, W, channels of the decoded visible image) of pair ``i``.
    """

    def __init__(self, ir_dir, vi_dir, min_size: int = 0):
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
                problems.append(f"pair {name}: {ir_path} is {ir_size[0]}x{ir_size[1]}, smaller than "
                                f"the {min_size}x{min_size} needed (patch size + crop margins)")
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


def make_source(spec: str, *, split: str = "train", min_size: int = 0, data_dir: str | None = None,
                synthetic_pairs: int = 64, synthetic_size: int = 160, seed: int = 0):
    """Builds the source named by ``spec`` (see module docstring)."""
    kind, _, arg = spec.partition(":")
    if kind == "synthetic":
        return SyntheticPairs(synthetic_pairs, synthetic_size, synthetic_size, seed=seed)
    if kind == "folder":
        if not arg:
            raise ValueError("folder source needs a path: folder:PATH (with ir/ and vi/) or folder:IR,VI")
        ir_dir, vi_dir = arg.split(",", 1) if "," in arg else (Path(arg) / "ir", Path(arg) / "vi")
        return FolderPairSource(ir_dir, vi_dir, min_size=min_size)
    if kind == "tfds":
        from jaxfuse.data.datasets import tfds_source  # noqa: PLC0415 - optional heavy import
        return tfds_source(arg, split, data_dir)
    raise ValueError(f"unknown data source {spec!r}: use synthetic, folder:PATH or tfds:NAME")
