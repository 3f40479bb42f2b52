"""MSRS (Multi-Spectral Road Scenarios; Tang et al., PIAFusion, Information Fusion 2022).

640x480 road scenes by day and night derived from MFNet, with semantic segmentation labels
(9 classes, class-index PNGs) that RefineFuse's salient-object mask uses.
"""

from __future__ import annotations

from pathlib import Path

import tensorflow_datasets as tfds
import numpy as np

from jaxfuse.data.datasets import base


class Msrs(base.PairBuilder):
    """MSRS: 1083 train / 361 test aligned 640x480 infrared-visible road-scene pairs with segmentation labels."""

    HOMEPAGE = "https://github.com/Linfeng-Tang/MSRS"
    CITATION = ("Tang, Yuan, Zhang, Jiang, Ma. PIAFusion: A progressive infrared and visible image "
                "fusion network based on illumination aware. Information Fusion 83-84 (2022).")
    EXPECTED_SPLITS = {"train": 1083, "test": 361}
    CLASSES = ("unlabelled", "car", "person", "bike", "curve", "car_stop", "guardrail",
               "color_cone", "bump")
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Clone or download https://github.com/Linfeng-Tang/MSRS and pass its root as --manual_dir:
  <manual_dir>/train/ir/00001D.png ...                (1083 pairs)
  <manual_dir>/train/vi/00001D.png ...
  <manual_dir>/train/Segmentation_labels/00001D.png   (class-index PNGs, optional)
  <manual_dir>/test/{ir,vi,Segmentation_labels}/...   (361 pairs)
Other folders of the release (Segmentation_visualize, ...) are ignored. A split folder or the
Segmentation_labels folder that is missing is reported; items of a split without labels
have no 'label'; pairs without a mask in a labelled split get an empty (0, 0) one."""

    def _extra_features(self):
        return {"label": tfds.features.Tensor(
            shape=(None, None), dtype=np.uint8, encoding=base.ZLIB,
            doc="segmentation class indices (H, W), see CLASSES; (0, 0) where the release has none")}

    def _find_pairs(self, root: Path):
        splits = {}
        for split in ("train", "test"):
            d = base.find_dir(root, split, required=False)
            if d is None:
                self.note(f"no {split}/ folder under {root}: split {split!r} not built")
                continue
            pairs = self.match(split, base.find_dir(d, "ir"), base.find_dir(d, "vi"))
            labels = base.find_dir(d, "Segmentation_labels", required=False)
            if labels is None:
                self.note(f"no {d}/Segmentation_labels folder: split {split!r} has no 'label'")
            else:
                found = {p.name: p for p in labels.iterdir() if p.is_file()}
                missing = [p.name for p in pairs if p.name not in found]
                if missing:
                    self.note(f"{len(missing)} {split} pairs have no label in {labels} "
                              f"(e.g. {missing[:3]}): their 'label' is empty")
                pairs = [base.Pair(p.name, p.ir, p.vi, {"label": found.get(p.name)}) for p in pairs]
            splits[split] = pairs
        return splits

    def _read_extras(self, pair, ir, vi):
        path = pair.extras.get("label")
        if path is None:
            return {"label": np.zeros((0, 0), np.uint8)}
        return {"label": base.read_mask(path, ir.shape[:2]), "_labelled": True}
