"""KAIST Multispectral Pedestrian (Hwang et al., CVPR 2015): aligned LWIR/visible video frames."""

from __future__ import annotations

import re
from pathlib import Path

from jaxfuse.data.datasets import base

TRAIN_SETS = tuple(f"set{i:02d}" for i in range(0, 6))
TEST_SETS = tuple(f"set{i:02d}" for i in range(6, 12))


class Kaist(base.PairBuilder):
    """KAIST: 640x512 LWIR / colour visible frames; sets 00-05 are 'train', 06-11 'test'."""

    HOMEPAGE = "https://soonminhwang.github.io/rgbt-ped-detection/"
    CITATION = ("S. Hwang, J. Park, N. Kim, Y. Choi, I. S. Kweon. Multispectral pedestrian "
                "detection: benchmark dataset and baseline. CVPR 2015.")
    EXPECTED_SPLITS = {"train": 50172, "test": 45156}
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Download the KAIST Multispectral Pedestrian images (see
https://github.com/SoonminHwang/rgbt-ped-detection) and pass the folder holding set00 ... set11:
  <manual_dir>/set00/V000/lwir/I00000.jpg     <manual_dir>/set00/V000/visible/I00000.jpg
  ...
Sets 00-05 form split 'train' (50172 pairs), sets 06-11 split 'test' (45156 pairs); pair
names are 'set00_V000_I00000.jpg'. Boxes (annotations/) are not read yet. CrossFuse trains on a
random 40000/20000 pairs of KAIST: shuffle the 'train' split and take that many."""

    def _find_pairs(self, root: Path):
        sets = sorted(p for p in root.iterdir() if p.is_dir() and re.fullmatch(r"set\d\d", p.name))
        if not sets:
            raise base.images.ImageError(f"{root}: no setXX folders")
        splits = {"train": [], "test": []}
        for s in sets:
            split = "train" if s.name in TRAIN_SETS else "test" if s.name in TEST_SETS else None
            if split is None:
                self.note(f"{s}: not one of set00..set11, ignored")
                continue
            for v in sorted(p for p in s.iterdir() if p.is_dir()):
                splits[split] += self.match(split, base.find_dir(v, "lwir"), base.find_dir(v, "visible"),
                                            prefix=f"{s.name}_{v.name}_")
        for split, pairs in list(splits.items()):
            if not pairs:
                self.note(f"no sets of split {split!r} under {root}: split not built")
                del splits[split]
        return splits
