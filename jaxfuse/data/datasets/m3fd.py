"""M3FD (Liu et al., TarDAL, CVPR 2022): multi-scenario multi-modality fusion and detection set."""

from __future__ import annotations

from pathlib import Path

import tensorflow_datasets as tfds

from jaxfuse.data.datasets import base


class M3fd(base.PairBuilder):
    """M3FD: 1024x768 infrared / colour visible pairs with 6-class detection boxes."""

    HOMEPAGE = "https://github.com/JinyuanLiu-CV/TarDAL"
    CITATION = ("J. Liu, X. Fan, Z. Huang, G. Wu, R. Liu, W. Zhong, Z. Luo. Target-aware dual "
                "adversarial learning and a multi-scenario multi-modality benchmark to fuse "
                "infrared and visible for object detection. CVPR 2022.")
    CLASSES = ("People", "Car", "Bus", "Motorcycle", "Lamp", "Truck")
    BUILDER_CONFIGS = [
        tfds.core.BuilderConfig(name="fusion", description=(
            "M3FD_Fusion: the 300 pairs fusion papers test on (RefineFuse, TarDAL); split 'test'.")),
        tfds.core.BuilderConfig(name="detection", description=(
            "M3FD_Detection: the 4200 annotated pairs, all in split 'train' (papers split them "
            "8:1:1 themselves; slice e.g. 'train[:80%]')")),
    ]
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Download M3FD from the links in https://github.com/JinyuanLiu-CV/TarDAL (M3FD_Fusion.zip,
M3FD_Detection.zip), unzip, and pass the unzipped folder as --manual_dir:
  m3fd/fusion:    <manual_dir>/Ir/00000.png ... and <manual_dir>/Vis/00000.png ... (300 pairs)
  m3fd/detection: <manual_dir>/Ir/, <manual_dir>/Vis/ and <manual_dir>/Annotation/00000.xml
                  (Pascal-VOC boxes; 4200 pairs)
An Annotation/ (or Annotations/) folder is optional for the fusion config; pairs without an
annotation file get empty boxes and are counted in the report."""

    @property
    def EXPECTED_SPLITS(self):  # noqa: N802 - TFDS-style constant, per config
        return {"test": 300} if self.builder_config.name == "fusion" else {"train": 4200}

    def _extra_features(self):
        return base.box_features()

    def _find_pairs(self, root: Path):
        split = "test" if self.builder_config.name == "fusion" else "train"
        pairs = self.match(split, base.find_dir(root, "Ir"), base.find_dir(root, "Vis"))
        ann = (base.find_dir(root, "Annotation", required=False)
               or base.find_dir(root, "Annotations", required=False))
        if ann is None:
            if self.builder_config.name == "detection":
                raise base.images.ImageError(f"{root}: expected an Annotation/ folder of VOC XML files")
            self.note(f"no {root}/Annotation folder: 'boxes'/'classes' are empty")
            return {split: pairs}
        return {split: attach_voc(self, split, pairs, ann)}

    def _read_extras(self, pair, ir, vi):
        path = pair.extras.get("ann")
        if path is None:
            return base.empty_boxes()
        return {**base.read_voc(path, ir.shape[:2], self.CLASSES), "_labelled": True}


def attach_voc(builder: base.PairBuilder, split: str, pairs, ann_dir: Path):
    """Adds ``ann_dir/<stem>.xml`` to each pair; notes pairs that have none."""
    found = {p.stem: p for p in ann_dir.glob("*.xml")}
    out = [base.Pair(p.name, p.ir, p.vi, {"ann": found.get(Path(p.name).stem)}) for p in pairs]
    missing = [p.name for p in out if p.extras["ann"] is None]
    if missing:
        builder.note(f"[{split}] {len(missing)} pairs have no annotation in {ann_dir} "
                     f"(e.g. {missing[:3]}): their boxes are empty")
    return out
