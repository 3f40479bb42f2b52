"""TNO Image Fusion Dataset (Toet, 2014/2017), the classic evaluation-only IVF set."""

from __future__ import annotations

from pathlib import Path

from jaxfuse.data.datasets import base


class Tno(base.PairBuilder):
    """TNO: military/surveillance scenes, gray visible and LWIR images; an evaluation set (split 'test')."""

    HOMEPAGE = "https://figshare.com/articles/dataset/TNO_Image_Fusion_Dataset/1008029"
    CITATION = "A. Toet. The TNO multiband image data collection. Data in Brief 15 (2017) 249-251."
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
TNO as the fusion repositories distribute it (e.g. the 42 pairs of
github.com/Linfeng-Tang/Evaluation-for-Image-Fusion Image/Source-Image/TNO, the 21 of
CrossFuse or the 25 of MMIF-CDDFuse test_img/TNO): one folder with
  <manual_dir>/ir/01.png ...
  <manual_dir>/vi/01.png ...
pairs matched by file name (or by stem, 01.png with 01.bmp). The figshare original is a tree
of scene folders with differently named files; arrange it into ir/ + vi/ first."""

    def _find_pairs(self, root: Path):
        return {"test": self.match("test", base.find_dir(root, "ir"), base.find_dir(root, "vi"))}
