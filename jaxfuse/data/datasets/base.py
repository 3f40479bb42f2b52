"""Shared machinery of the IVF/MIF TFDS builders: layout checks, pairing, skip reports.

Every builder reads a manually downloaded release (``manual_dir``, no network) and writes
array_record shards whose images are uint8 ``tfds.features.Tensor`` features with zlib
encoding, so building and reading need no TensorFlow.

Item contract (what :func:`jaxfuse.data.datasets.tfds_source` returns):

* ``ir``: uint8 (H, W, 1). Colour (gray-replicated) infrared files are reduced like PIL
  ``convert('L')`` (:func:`jaxfuse.data.images.read_gray`).
* ``vi``: uint8 (H, W, 3) for true colour, (H, W, 1) when the file is gray or a 3-channel file
  whose channels are identical (stored once; ``np.repeat(vi, 3, -1)`` gives the file back).
* ``name``: the pair name (file name, or a path-like name where folders disambiguate).

Bad input never vanishes silently: unpaired files, pairs whose sizes disagree, undecodable
images and bad labels are skipped, logged, counted and written to the dataset's
``metadata.json`` (``builder.info.metadata["skipped"]``). A wrong layout is an error that
names the folder it expected. TFDS writes into ``<name>/incomplete.*`` and renames it to
``<name>/<version>`` only after every split is written, so a failed build leaves nothing a
later run takes as complete.
"""

from __future__ import annotations

import collections
import dataclasses
import inspect
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds
from absl import logging
from etils import epath
from PIL import Image
from tensorflow_datasets.core import utils as tfds_utils

from jaxfuse.data import images

ZLIB = tfds.features.Encoding.ZLIB


def image_feature(channels: int | None, doc: str) -> tfds.features.Tensor:
    """A uint8 (H, W, channels) image stored raw with zlib; ``channels=None`` allows 1 or 3."""
    return tfds.features.Tensor(shape=(None, None, channels), dtype=np.uint8, encoding=ZLIB,
                                doc=doc)


def box_features() -> dict:
    """Detection boxes, TFDS convention: float32 (N, 4) [ymin, xmin, ymax, xmax] in [0, 1]."""
    return {
        "boxes": tfds.features.Tensor(shape=(None, 4), dtype=np.float32,
                                      doc="[ymin, xmin, ymax, xmax], normalised to [0, 1]"),
        "classes": tfds.features.Tensor(shape=(None,), dtype=np.int64,
                                        doc="index into the builder's CLASSES"),
    }


def squeeze_gray(img: np.ndarray) -> np.ndarray:
    """(H, W, 3) with identical channels -> (H, W, 1); anything else unchanged."""
    if img.shape[-1] == 3 and (img[..., 0] == img[..., 1]).all() and (img[..., 1] == img[..., 2]).all():
        return img[..., :1]
    return img


def find_dir(parent: Path, name: str, *, required: bool = True) -> Path | None:
    """``parent/name``, matched case-insensitively (``IR`` for ``ir``); None if absent and optional."""
    exact = parent / name
    if exact.is_dir():
        return exact
    found = [p for p in parent.iterdir() if p.is_dir() and p.name.lower() == name.lower()] \
        if parent.is_dir() else []
    if len(found) > 1:
        raise images.ImageError(f"{parent}: several folders match {name!r}: {sorted(p.name for p in found)}")
    if found:
        return found[0]
    if required:
        raise images.ImageError(f"{parent}: expected a folder {name!r} (the official layout), not found")
    return None


@dataclasses.dataclass(frozen=True)
class Pair:
    """One infrared/visible pair to read; ``extras`` holds label/annotation paths."""
    name: str
    ir: Path
    vi: Path
    extras: dict = dataclasses.field(default_factory=dict)


class SkipPair(Exception):
    """Raised by ``_read_extras`` to skip one pair with a reason (logged and counted)."""


class PairBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Base of the pair builders; a subclass lists pairs per split in ``_find_pairs``."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release: uint8 zlib tensors in array_record."}
    HOMEPAGE = ""
    CITATION = ""
    EXPECTED_SPLITS: dict[str, int] = {}  # the official release's pair counts
    VI_DOC = "visible image, (H, W, 3) or (H, W, 1) if gray"
    IR_DOC = "infrared image, (H, W, 1)"
    show_progress = False  # prepare.py turns on a tqdm bar with the pair count

    @tfds_utils.classproperty
    @classmethod
    def code_path(cls) -> epath.Path:
        # TFDS's version lazily imports `importlib_resources` (not installed with etils 1.15)
        # for builders that live in a package; the plain file path is all it needs.
        return epath.Path(inspect.getfile(cls))

    # ---- what subclasses provide ------------------------------------------------------------
    def _find_pairs(self, root: Path) -> dict[str, list[Pair]]:
        raise NotImplementedError

    def _extra_features(self) -> dict:
        return {}

    def _read_extras(self, pair: Pair, ir: np.ndarray, vi: np.ndarray) -> dict:
        return {}

    # ---- TFDS hooks -------------------------------------------------------------------------
    def _info(self) -> tfds.core.DatasetInfo:
        features = {"ir": image_feature(1, self.IR_DOC), "vi": image_feature(None, self.VI_DOC),
                    "name": tfds.features.Text(doc="pair name")}
        features.update(self._extra_features())
        return tfds.core.DatasetInfo(
            builder=self, description=(self.__doc__ or "").strip(),
            features=tfds.features.FeaturesDict(features), homepage=self.HOMEPAGE,
            citation=self.CITATION, metadata=tfds.core.MetadataDict())

    def _split_generators(self, dl_manager):
        root = Path(dl_manager.manual_dir)
        if not root.is_dir():
            raise images.ImageError(f"manual_dir {root} does not exist.\n{self.MANUAL_DOWNLOAD_INSTRUCTIONS}")
        self._report = {"skipped": [], "notes": [], "counts": {}, "labelled": {}}
        try:
            splits = self._find_pairs(root)
        except images.ImageError as e:
            raise images.ImageError(
                f"{self.name}: {e}\nExpected layout:\n{self.MANUAL_DOWNLOAD_INSTRUCTIONS}") from None
        if not any(splits.values()):
            raise images.ImageError(f"{self.name}: no pairs found under {root}.\n"
                                    f"{self.MANUAL_DOWNLOAD_INSTRUCTIONS}")
        for split, pairs in splits.items():
            _check_unique(split, pairs)
        self._flush()
        return {split: self._generate_examples(split, pairs) for split, pairs in splits.items()}

    def _generate_examples(self, split: str, pairs: list[Pair]):
        n = n_labelled = 0
        bar = progress(pairs, f"{self.name} {split}", self.show_progress)
        for pair in bar:
            try:
                ir = images.read_gray(pair.ir)
                vi = squeeze_gray(images.read_image(pair.vi))
                images.check_same_size(pair.name, ir, vi, pair.ir, pair.vi)
                extras = self._read_extras(pair, ir, vi)
            except (images.ImageError, SkipPair) as e:
                self.skip(split, pair.name, str(e))
                continue
            n += 1
            n_labelled += bool(extras.pop("_labelled", False))
            yield pair.name, {"ir": ir, "vi": vi, "name": pair.name, **extras}
        if n == 0:
            skipped = [m for m in self._report["skipped"] if m.startswith(f"[{split}]")]
            raise images.ImageError(f"{self.name}: every pair of split {split!r} was skipped, nothing "
                                    "to build:\n  " + "\n  ".join(skipped[:10]))
        self._report["counts"][split] = n
        self._report["labelled"][split] = n_labelled
        expected = self.EXPECTED_SPLITS.get(split)
        if expected is not None and n != expected:
            self.note(f"split {split!r}: {n} pairs written; the official release has {expected} "
                      "(a partial copy, or skipped pairs)")
        self._flush()

    # ---- reporting ----------------------------------------------------------------------------
    def skip(self, split: str, name: str, reason: str) -> None:
        """Records a skipped pair (or file) with its reason; never silent."""
        msg = f"[{split}] skipped {name}: {reason}"
        logging.warning("%s: %s", self.name, msg)
        self._report["skipped"].append(msg)
        self._flush()

    def note(self, msg: str) -> None:
        """Records something missing that does not stop the build (e.g. absent labels)."""
        logging.warning("%s: %s", self.name, msg)
        self._report["notes"].append(msg)
        self._flush()

    def _flush(self) -> None:
        self.info.metadata.update(self._report)

    # ---- helpers for subclasses ---------------------------------------------------------------
    def match(self, split: str, ir_dir: Path, vi_dir: Path, prefix: str = "") -> list[Pair]:
        """Pairs files by name (then by stem, ``01.png`` with ``01.jpg``); reports the unpaired."""
        ir, vi = images.list_images(ir_dir), images.list_images(vi_dir)
        pairs = {n: (ir[n], vi[n]) for n in sorted(set(ir) & set(vi))}
        left_ir = _by_stem(p for n, p in ir.items() if n not in pairs)
        left_vi = _by_stem(p for n, p in vi.items() if n not in pairs)
        for stem in sorted(set(left_ir) & set(left_vi)):
            a, b = left_ir[stem], left_vi[stem]
            if len(a) == 1 and len(b) == 1:
                pairs[a[0].name] = (a[0], b[0])
                del left_ir[stem], left_vi[stem]
        for side, other, left, left_other in ((ir_dir, vi_dir, left_ir, left_vi),
                                              (vi_dir, ir_dir, left_vi, left_ir)):
            for stem, files in sorted(left.items()):
                for p in files:
                    if len(files) > 1:
                        why = f"ambiguous: {len(files)} files named {stem}.* in {side}"
                    elif stem in left_other:
                        why = f"several files named {stem}.* in {other} could be its counterpart"
                    else:
                        why = f"no counterpart in {other}"
                    self.skip(split, str(p), why)
        return [Pair(prefix + n, a, b) for n, (a, b) in sorted(pairs.items())]


def _by_stem(paths) -> dict[str, list[Path]]:
    out = collections.defaultdict(list)
    for p in sorted(paths):
        out[p.stem].append(p)
    return dict(out)


def _check_unique(split: str, pairs: list[Pair]) -> None:
    dup = [n for n, c in collections.Counter(p.name for p in pairs).items() if c > 1]
    if dup:
        files = [str(p.ir) for p in pairs if p.name in dup]
        raise images.ImageError(f"[{split}] duplicate pair names {dup[:5]} (files {files[:6]}); "
                                "each pair name must be unique within a split")


def progress(items, desc: str, enabled: bool):
    if not enabled:
        return items
    from tqdm import tqdm
    return tqdm(items, desc=desc, unit="pair", total=len(items))


def read_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """Reads a class-index mask (PIL mode L or P) as uint8 (H, W); checks it matches ``shape``."""
    try:
        with Image.open(path) as m:
            if m.mode not in ("L", "P"):
                raise images.ImageError(f"{path}: label mask has mode {m.mode}; expected a "
                                        "single-channel class-index PNG (mode L or P)")
            mask = np.asarray(m, dtype=np.uint8)
    except (OSError, SyntaxError) as e:
        raise images.ImageError(f"{path}: cannot decode label mask ({e})") from None
    if mask.shape != tuple(shape):
        raise images.ImageError(f"{path}: label mask is {mask.shape[1]}x{mask.shape[0]} but the "
                                f"images are {shape[1]}x{shape[0]} (W x H)")
    return mask


def read_voc(path: Path, shape: tuple[int, int], classes: tuple[str, ...]) -> dict:
    """Reads a Pascal-VOC XML file into normalised boxes and class indices for an image of ``shape``."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as e:
        raise images.ImageError(f"{path}: cannot parse VOC annotation ({e})") from None
    h, w = shape
    size = root.find("size")
    if size is not None and size.findtext("width") and size.findtext("height"):
        sw, sh = int(float(size.findtext("width"))), int(float(size.findtext("height")))
        if (sw, sh) != (w, h) and (sw, sh) != (0, 0):
            raise images.ImageError(f"{path}: annotation is for a {sw}x{sh} image but the pair is {w}x{h}")
    lookup = {c.lower(): i for i, c in enumerate(classes)}
    boxes, labels = [], []
    for obj in root.iter("object"):
        cls = (obj.findtext("name") or "").strip()
        if cls.lower() not in lookup:
            raise images.ImageError(f"{path}: unknown class {cls!r} (known: {', '.join(classes)})")
        bb = obj.find("bndbox")
        try:
            x0, y0, x1, y1 = (float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
        except (AttributeError, TypeError, ValueError):
            raise images.ImageError(f"{path}: object {cls!r} has no valid bndbox") from None
        boxes.append([y0 / h, x0 / w, y1 / h, x1 / w])
        labels.append(lookup[cls.lower()])
    return {"boxes": np.clip(np.asarray(boxes, np.float32).reshape(-1, 4), 0.0, 1.0),
            "classes": np.asarray(labels, np.int64)}


def empty_boxes() -> dict:
    return {"boxes": np.zeros((0, 4), np.float32), "classes": np.zeros((0,), np.int64)}
