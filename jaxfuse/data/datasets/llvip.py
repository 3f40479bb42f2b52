"""LLVIP (Jia et al., ICCVW 2021): low-light visible-infrared paired pedestrian dataset."""

from __future__ import annotations

from pathlib import Path

from jaxfuse.data.datasets import base
from jaxfuse.data.datasets.m3fd import attach_voc


class Llvip(base.PairBuilder):
    """LLVIP: 12025 train / 3463 test aligned 1280x1024 night pairs with pedestrian boxes."""

    HOMEPAGE = "https://github.com/bupt-ai-cz/LLVIP"
    CITATION = ("X. Jia, C. Zhu, M. Li, W. Tang, W. Zhou. LLVIP: A visible-infrared paired "
                "dataset for low-light vision. ICCV Workshops 2021.")
    EXPECTED_SPLITS = {"train": 12025, "test": 3463}
    CLASSES = ("person",)
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Request/download LLVIP.zip from https://github.com/bupt-ai-cz/LLVIP (non-commercial licence),
unzip, and pass the LLVIP folder as --manual_dir:
  <manual_dir>/infrared/train/010001.jpg ...   <manual_dir>/visible/train/010001.jpg ...
  <manual_dir>/infrared/test/190001.jpg ...    <manual_dir>/visible/test/190001.jpg ...
  <manual_dir>/Annotations/010001.xml ...      (Pascal-VOC 'person' boxes; optional)"""

    def _extra_features(self):
        return base.box_features()

    def _find_pairs(self, root: Path):
        ir_root, vi_root = base.find_dir(root, "infrared"), base.find_dir(root, "visible")
        ann = base.find_dir(root, "Annotations", required=False)
        if ann is None:
            self.note(f"no {root}/Annotations folder: 'boxes'/'classes' are empty")
        splits = {}
        for split in ("train", "test"):
            ir_dir = base.find_dir(ir_root, split, required=False)
            vi_dir = base.find_dir(vi_root, split, required=False)
            if ir_dir is None or vi_dir is None:
                self.note(f"no infrared/{split} or visible/{split} folder: split {split!r} not built")
                continue
            pairs = self.match(split, ir_dir, vi_dir)
            splits[split] = attach_voc(self, split, pairs, ann) if ann else pairs
        return splits

    def _read_extras(self, pair, ir, vi):
        path = pair.extras.get("ann")
        if path is None:
            return base.empty_boxes()
        return {**base.read_voc(path, ir.shape[:2], self.CLASSES), "_labelled": True}
