"""Harvard Whole Brain Atlas medical pairs (MRI with CT, PET or SPECT), as fusion papers use them.

Slot mapping: MRI -> ``ir`` (gray, (H, W, 1)); CT/PET/SPECT -> ``vi``. PET and SPECT are RGB
pseudo-colour, so they take the colour slot: the pipeline fuses their Y channel with the MRI
and puts their Cb/Cr back, the convention of the fusion repositories (CDDFuse, EMMA). CT is
gray (stored (H, W, 1)).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import tensorflow_datasets as tfds

from jaxfuse.data.datasets import base


@dataclasses.dataclass
class HarvardConfig(tfds.core.BuilderConfig):
    folder: str = ""      # MRI_CT
    functional: str = ""  # CT


def _config(func: str, n: int) -> HarvardConfig:
    return HarvardConfig(name=f"mri_{func.lower()}", folder=f"MRI_{func}", functional=func,
                         description=f"MRI (as 'ir') with {func} (as 'vi'); {n} test pairs in MMIF-CDDFuse")


class Harvard(base.PairBuilder):
    """Harvard MIF: 256x256 MRI/CT, MRI/PET and MRI/SPECT slices; evaluation set (split 'test')."""

    HOMEPAGE = "https://www.med.harvard.edu/AANLIB/home.html"
    CITATION = "K. A. Johnson, J. A. Becker. The Whole Brain Atlas. Harvard Medical School."
    IR_DOC = "MRI slice, (H, W, 1)"
    VI_DOC = "CT (H, W, 1), or PET/SPECT pseudo-colour (H, W, 3)"
    BUILDER_CONFIGS = [_config("CT", 21), _config("PET", 42), _config("SPECT", 73)]
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
The Harvard pairs as the fusion repositories distribute them (e.g. MMIF-CDDFuse test_img/):
  <manual_dir>/MRI_CT/MRI/11.png     <manual_dir>/MRI_CT/CT/11.png
  <manual_dir>/MRI_PET/MRI/11.png    <manual_dir>/MRI_PET/PET/11.png
  <manual_dir>/MRI_SPECT/MRI/11.png  <manual_dir>/MRI_SPECT/SPECT/11.png
Each config (harvard/mri_ct, harvard/mri_pet, harvard/mri_spect) reads its own folder; a
missing one is an error for that config only."""

    def _find_pairs(self, root: Path):
        cfg = self.builder_config
        d = base.find_dir(root, cfg.folder)
        return {"test": self.match("test", base.find_dir(d, "MRI"), base.find_dir(d, cfg.functional))}
