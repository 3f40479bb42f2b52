"""Random-access pair sources for the Grain pipeline, selected by a string spec.

Pair sources yield dicts ``{"ir": uint8 (H, W, 1), "vi": uint8 (H, W, 1 or 3), "name": str}``
(TFDS sources may add labels); image sources (for stages that train on single images, e.g.
DMFuse's DDPM stage) yield ``{"image": uint8 (H, W, 1 or 3), "name": str}``. Each source says
which in its ``yields``. Specs: ``synthetic``, ``folder:PATH`` (PATH holds ``ir/`` and ``vi/``;
or ``folder:IR_DIR,VI_DIR``), ``images:PATH`` (every image below PATH), ``tfds:NAME`` (a
prepared TFDS dataset, see ``python -m jaxfuse.data.prepare``).

``salient`` adds a salient-object plane to every pair (RefineFuse's Eq. 6), from the TFDS
``label`` feature or a ``labels/`` folder of class-index PNGs (``labels``: item key ``label``),
a ``masks/`` (or PSFusion's ``mask/``) folder of binary PNGs (``masks``: key ``salient``), or
YOLO boxes ``det_labels/ir/NAME.txt`` filled as rectangles in MSRS class ids (``boxes``: key
``label``; an approximation of the segmentation labels).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
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
        self.root = Path(ir_dir).parent  # where labels/, masks/ or det_labels/ sit beside ir/ and vi/
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
        self.yields, self.planes = source.yields, getattr(source, "planes", ())

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        return f"{self.source!r}[:{self.n}]"

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.n:
            raise IndexError(index)
        return self.source[index]


SALIENT_SOURCES = ("labels", "masks", "boxes", "none")
NUM_CLASSES = 9  # MSRS: 0 unlabelled, 1 car, 2 person, 3 bike, 4 curve, 5 car_stop, 6 guardrail, 7 color_cone, 8 bump
YOLO_TO_MSRS = {0: 2, 1: 3, 2: 1}  # det_labels/classes.txt: 0 person, 1 bicycle, 2 car


class SalientPlanes:
    """A pair source whose items also carry a salient plane: ``label`` (H, W, 1) class ids
    (``labels``, ``boxes``) or ``salient`` (H, W, 1) 0/1 (``masks``).

    ``root`` is the folder holding ``ir/`` and ``vi/`` (None for TFDS sources, whose items bring
    ``label``). Every pair's file is looked up, and its header size checked, at construction;
    class ids are checked as each label is read. Errors name the files.
    """

    yields = "pairs"

    def __init__(self, source, kind: str, root: Path | None):
        if kind not in SALIENT_SOURCES[:3]:
            raise ValueError(f"data.salient_source must be one of {SALIENT_SOURCES}, got {kind!r}")
        self.source, self.kind, self.files = source, kind, {}
        self.planes = ("salient",) if kind == "masks" else ("label",)  # what the pipeline crops with the pair
        if root is None:
            if kind != "labels":
                raise ValueError(f"data.salient_source={kind!r} needs a folder source (folder:PATH); "
                                 f"{source!r} can only give its 'label' feature (salient_source=labels)")
            if "label" in getattr(source, "drop", ("label",)):
                raise images.ImageError(f"data.salient_source='labels': {source!r} has no segmentation labels "
                                        "(rebuild it with them, or use salient_source=none)")
            return
        folder = {"labels": ("labels",), "masks": ("masks", "mask"), "boxes": ("det_labels/ir",)}[kind]
        found = next((root / f for f in folder if (root / f).is_dir()), None)
        if found is None:
            raise images.ImageError(f"data.salient_source={kind!r}: no {' or '.join(folder)} folder in {root}")
        missing, problems = [], []
        for i, (name, _, _) in enumerate(source.pairs):
            path = found / (Path(name).stem + ".txt") if kind == "boxes" else found / name
            if not path.is_file():
                missing.append(name)
                continue
            self.files[i] = path
            if kind != "boxes":
                (w, h), _ = _header(path)
                if (h, w) != source.shapes[i][:2]:
                    problems.append(f"{path}: {w}x{h} but the pair {name} is "
                                    f"{source.shapes[i][1]}x{source.shapes[i][0]} (W x H)")
        if missing:
            problems.insert(0, f"{len(missing)} pair(s) have no file in {found}: {', '.join(missing[:10])}"
                               + (" ..." if len(missing) > 10 else ""))
        if problems:
            raise images.ImageError(f"data.salient_source={kind!r}:\n  " + "\n  ".join(problems))
        if kind == "boxes":
            logging.warning("salient masks from YOLO boxes in %s: filled rectangles approximate the "
                            "segmentation labels the paper uses", found)

    def __len__(self) -> int:
        return len(self.source)

    def __repr__(self) -> str:
        return f"SalientPlanes({self.source!r}, {self.kind})"

    def __getitem__(self, index: int) -> dict:
        item = self.source[index]
        shape = item["ir"].shape[:2]
        if self.kind == "labels" and index not in self.files:  # a TFDS item's own label
            label = np.asarray(item.get("label", np.zeros((0, 0), np.uint8)))
            if label.shape[:2] != shape:
                size = f"{label.shape[1]}x{label.shape[0]}" if label.size else "missing"
                raise images.ImageError(f"pair {item['name']}: its label is {size}, the images are "
                                        f"{shape[1]}x{shape[0]} (W x H) ({self.source!r})")
            item["label"] = _checked_classes(label.reshape(shape + (1,)), f"pair {item['name']}")
        elif self.kind == "labels":
            from jaxfuse.data.datasets.base import read_mask  # noqa: PLC0415 - imports TFDS

            item["label"] = _checked_classes(read_mask(self.files[index], shape)[..., None], self.files[index])
        elif self.kind == "masks":
            item["salient"] = (images.read_gray(self.files[index]) > 0).astype(np.uint8)
        else:
            item["label"] = _yolo_label_plane(self.files[index], shape)
        return item


def _checked_classes(label: np.ndarray, what) -> np.ndarray:
    if label.size and label.max() >= NUM_CLASSES:
        raise images.ImageError(f"{what}: class id {int(label.max())} outside 0-{NUM_CLASSES - 1} (MSRS classes)")
    return label.astype(np.uint8)


def _yolo_label_plane(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """YOLO ``class cx cy w h`` (normalised) boxes filled in MSRS class ids, (H, W, 1) uint8."""
    h, w = shape
    plane = np.zeros((h, w, 1), np.uint8)
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            cls, cx, cy, bw, bh = line.split()
            cls, cx, cy, bw, bh = int(cls), float(cx), float(cy), float(bw), float(bh)
        except ValueError:
            raise images.ImageError(f"{path}:{n}: expected 'class cx cy w h', got {line!r}") from None
        if cls not in YOLO_TO_MSRS:
            raise images.ImageError(f"{path}:{n}: class id {cls} outside 0-2 (person, bicycle, car)")
        x0, x1 = int(round((cx - bw / 2) * w)), int(round((cx + bw / 2) * w))
        y0, y1 = int(round((cy - bh / 2) * h)), int(round((cy + bh / 2) * h))
        plane[max(0, y0):max(0, y1), max(0, x0):max(0, x1)] = YOLO_TO_MSRS[cls]
    return plane


def make_source(spec: str, *, data: str = "pairs", split: str = "train", min_size: int = 0,
                data_dir: str | None = None, synthetic_pairs: int = 64, synthetic_size: int = 160, seed: int = 0,
                limit: int = 0, pad_small: bool = False, salient: str = "none"):
    """Builds the source named by ``spec`` (see module docstring) for a stage that trains on
    ``data`` ("pairs" or "images"); ``limit`` > 0 keeps its first items; ``salient`` (one of
    ``SALIENT_SOURCES``) adds a salient plane to every pair."""
    source = _make_source(spec, data=data, split=split, min_size=min_size, data_dir=data_dir,
                          synthetic_pairs=synthetic_pairs, synthetic_size=synthetic_size, seed=seed,
                          pad_small=pad_small)
    if source.yields != data:
        hint = "images:PATH or tfds:natural_images" if data == "images" else "folder:PATH or a pair TFDS dataset"
        raise SourceError(f"data source {spec!r} yields {source.yields}, but this stage trains on {data}: use {hint}")
    if salient != "none":
        if not isinstance(source, FolderPairSource) and not spec.startswith("tfds:"):
            raise SourceError(f"data.salient_source={salient!r}: data source {spec!r} has no labels, masks or "
                              "boxes (use folder:PATH or tfds:NAME, or salient_source=none)")
        source = SalientPlanes(source, salient, source.root if isinstance(source, FolderPairSource) else None)
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
