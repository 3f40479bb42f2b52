"""RoadScene (Xu et al., FusionDN, AAAI 2020 / U2Fusion, TPAMI 2020): 221 aligned FLIR road pairs."""

from __future__ import annotations

from pathlib import Path

from jaxfuse.data.datasets import base


class Roadscene(base.PairBuilder):
    """RoadScene: 221 aligned infrared / colour visible road-scene pairs (all in split 'train')."""

    HOMEPAGE = "https://github.com/hanna-xu/RoadScene"
    CITATION = ("H. Xu, J. Ma, Z. Le, J. Jiang, X. Guo. FusionDN: A unified densely connected "
                "network for image fusion. AAAI 2020.")
    EXPECTED_SPLITS = {"train": 221}
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Clone https://github.com/hanna-xu/RoadScene (mirrored as StaRainJ/road-scene-infrared-visible-images)
and pass its root as --manual_dir; the aligned pairs are
  <manual_dir>/cropinfrared/FLIR_00006.jpg ...
  <manual_dir>/crop_LR_visible/FLIR_00006.jpg ...
(infrared/ and crop_HR_visible/ are not aligned with each other and are ignored).
Papers sample from the 221 pairs (SIBA trains on 200 random ones, CDDFuse tests on 50):
select with split slicing, e.g. 'train[:200]'."""

    def _find_pairs(self, root: Path):
        return {"train": self.match("train", base.find_dir(root, "cropinfrared"),
                                    base.find_dir(root, "crop_LR_visible"))}
