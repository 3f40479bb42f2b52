"""Any folder of natural images (COCO train2017 for DMFuse's DDPM stage) as one 'train' split."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from jaxfuse.data import images
from jaxfuse.data.datasets import base


@dataclasses.dataclass
class NaturalConfig(tfds.core.BuilderConfig):
    short_side: int | None = None  # resize so the shorter side is this (never upsampled)


class NaturalImages(base.PairBuilder):
    """Natural images (e.g. COCO train2017), items {'image', 'name'}; for DDPM pre-training."""

    HOMEPAGE = "https://cocodataset.org/"
    CITATION = "T.-Y. Lin et al. Microsoft COCO: Common objects in context. ECCV 2014."
    BUILDER_CONFIGS = [
        NaturalConfig(name="short256", short_side=256, description=(
            "shorter side resized to 256 (bicubic, antialiased; smaller images kept): COCO "
            "train2017 becomes ~118k images of ~256x341, ~29 GiB before zlib")),
        NaturalConfig(name="original", description="images as they are (COCO: ~100 GiB raw)"),
    ]
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Any folder of images, searched recursively (png, jpg, jpeg, bmp, tif); for DMFuse's DDPM
stage, COCO train2017 (http://images.cocodataset.org/zips/train2017.zip, unzipped):
  <manual_dir>/000000000009.jpg ...
Names are paths relative to manual_dir. Gray images stay (H, W, 1); colour ones are (H, W, 3)."""

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self, description=(self.__doc__ or "").strip(), homepage=self.HOMEPAGE,
            citation=self.CITATION, metadata=tfds.core.MetadataDict(),
            features=tfds.features.FeaturesDict({
                "image": base.image_feature(None, "uint8 (H, W, 3), or (H, W, 1) if gray"),
                "name": tfds.features.Text(doc="path relative to manual_dir")}))

    def _find_pairs(self, root: Path):
        files = sorted(p for p in root.rglob("*")
                       if p.is_file() and p.suffix.lower() in images.IMAGE_SUFFIXES)
        if not files:
            raise images.ImageError(f"{root}: no images ({', '.join(images.IMAGE_SUFFIXES)}) in this tree")
        return {"train": [base.Pair(p.relative_to(root).as_posix(), p, p) for p in files]}

    def _generate_examples(self, split, pairs):
        n = 0
        for pair in base.progress(pairs, f"{self.name} {split}", self.show_progress):
            try:
                img = base.squeeze_gray(images.read_image(pair.ir))
            except images.ImageError as e:
                self.skip(split, pair.name, str(e))
                continue
            n += 1
            yield pair.name, {"image": resize_short(img, self.builder_config.short_side), "name": pair.name}
        if n == 0:
            raise images.ImageError(f"{self.name}: no decodable image among {len(pairs)} files")
        self._report["counts"][split] = n
        self._flush()


def resize_short(img: np.ndarray, short: int | None) -> np.ndarray:
    """Bicubic-resizes (antialiased) so min(H, W) == short; images already smaller are kept."""
    h, w = img.shape[:2]
    if short is None or min(h, w) <= short:
        return img
    scale = short / min(h, w)
    size = (max(short, round(w * scale)), max(short, round(h * scale)))
    pil = Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img)
    out = np.asarray(pil.resize(size, Image.Resampling.BICUBIC, reducing_gap=None), dtype=np.uint8)
    return out[..., None] if out.ndim == 2 else out
