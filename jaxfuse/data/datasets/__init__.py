"""TFDS builders for the IVF/MIF benchmarks, read by Grain without TensorFlow.

    python -m jaxfuse.data.prepare --dataset msrs --manual_dir ~/data/MSRS
    src = tfds_source("msrs", "train")      # random access: len(src), src[i] -> dict

Names: msrs, tno, roadscene, m3fd (= m3fd/fusion), m3fd/detection, llvip, kaist,
harvard/mri_ct, harvard/mri_pet, harvard/mri_spect, natural_images (= natural_images/short256),
natural_images/original. Items are dicts of NumPy arrays, see :mod:`.base` for the contract.
"""

from __future__ import annotations

import os
from pathlib import Path

from jaxfuse.data.datasets.base import PairBuilder
from jaxfuse.data.datasets.harvard import Harvard
from jaxfuse.data.datasets.kaist import Kaist
from jaxfuse.data.datasets.llvip import Llvip
from jaxfuse.data.datasets.m3fd import M3fd
from jaxfuse.data.datasets.msrs import Msrs
from jaxfuse.data.datasets.natural_images import NaturalImages
from jaxfuse.data.datasets.roadscene import Roadscene
from jaxfuse.data.datasets.tno import Tno

BUILDERS: dict[str, type[PairBuilder]] = {
    b.name: b for b in (Msrs, Tno, Roadscene, M3fd, Llvip, Kaist, Harvard, NaturalImages)}
# Label features dropped from items when a split has no labels at all.
_LABEL_KEYS = ("label", "boxes", "classes")


class DatasetNotPreparedError(FileNotFoundError):
    """The dataset has not been built in data_dir; the message gives the prepare command."""


def default_data_dir() -> str:
    """$TFDS_DATA_DIR, else ~/tensorflow_datasets (TFDS's own default)."""
    return os.environ.get("TFDS_DATA_DIR", os.path.expanduser("~/tensorflow_datasets"))


def get_builder(name: str, data_dir: str | os.PathLike | None = None) -> PairBuilder:
    """Builder for ``name`` or ``name/config`` (e.g. ``harvard/mri_pet``) in ``data_dir``."""
    base, _, config = name.partition("/")
    if base not in BUILDERS:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(sorted(BUILDERS))}")
    cls = BUILDERS[base]
    configs = [c.name for c in (cls.BUILDER_CONFIGS or [])]
    if config and config not in configs:
        raise KeyError(f"dataset {base!r} has no config {config!r}; configs: {configs or 'none'}")
    kwargs = {"config": config} if config else {}
    root = os.path.abspath(os.path.expanduser(str(data_dir or default_data_dir())))
    return cls(data_dir=root, file_format="array_record", **kwargs)


class TfdsSource:
    """Random-access view of one prepared split: ``len``, ``[i]`` -> dict of NumPy arrays.

    Wraps TFDS's array_record data source (no TensorFlow): names come back as ``str``, and label
    features a split has none of are left out of its items. Picklable, so Grain workers can use it.
    """

    def __init__(self, name: str, split: str, data_dir: str | os.PathLike | None = None):
        self.name, self.split = name, split
        builder = get_builder(name, data_dir)
        if not builder.is_prepared():
            root = Path(os.path.abspath(os.path.expanduser(str(data_dir or default_data_dir()))))
            raise DatasetNotPreparedError(
                f"dataset {name!r} is not prepared in {root} (expected {builder.data_dir}/"
                f"dataset_info.json). Build it with:\n  python -m jaxfuse.data.prepare --dataset "
                f"{name} --manual_dir DIR --data_dir {root}\nwhere DIR is laid out as:\n"
                f"{builder.MANUAL_DOWNLOAD_INSTRUCTIONS}")
        split_name = split.split("[")[0]
        if split_name not in builder.info.splits:
            raise KeyError(f"dataset {name!r} in {builder.data_dir} has no split {split_name!r}; "
                           f"it has {sorted(builder.info.splits)}")
        labelled = builder.info.metadata.get("labelled", {}).get(split_name)
        self.drop = tuple(k for k in _LABEL_KEYS if k in builder.info.features and labelled == 0)
        self.source = builder.as_data_source(split)
        self.data_dir = builder.data_dir
        self.yields = "images" if "image" in builder.info.features else "pairs"

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> dict:
        item = dict(self.source[index])
        item["name"] = item["name"].decode() if isinstance(item["name"], bytes) else str(item["name"])
        for k in self.drop:
            item.pop(k, None)
        return item

    def __repr__(self) -> str:
        return f"TfdsSource({self.name!r}, {self.split!r}, {len(self)} items, {self.data_dir})"


def tfds_source(name: str, split: str, data_dir: str | os.PathLike | None = None) -> TfdsSource:
    """The prepared split ``split`` of dataset ``name`` as a Grain-ready random-access source.

    Raises DatasetNotPreparedError (naming data_dir and the prepare command) if not built.
    """
    return TfdsSource(name, split, data_dir)


__all__ = ["BUILDERS", "DatasetNotPreparedError", "TfdsSource", "default_data_dir",
           "get_builder", "tfds_source"]
