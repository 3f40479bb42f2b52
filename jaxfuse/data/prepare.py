"""Builds one benchmark dataset from its manual download into array_record shards.

    python -m jaxfuse.data.prepare --dataset msrs --manual_dir ~/data/MSRS [--data_dir DIR]
    python -m jaxfuse.data.prepare --dataset harvard/mri_pet --manual_dir ~/data/MMIF-CDDFuse/test_img

Shows a progress bar per split, then a report: pairs written per split, and every skipped pair
(unpaired file, size mismatch, undecodable image, bad label) with its reason. Exit status 1 on
a failed build, which leaves no dataset behind (TFDS builds in an ``incomplete.*`` folder).
"""

from __future__ import annotations

import sys
from pathlib import Path

from absl import app, flags

from jaxfuse.data import images

_DATASET = flags.DEFINE_string("dataset", None, "name[/config], e.g. msrs, harvard/mri_pet", required=True)
_MANUAL_DIR = flags.DEFINE_string("manual_dir", None, "the unpacked official release", required=True)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "where to write (default $TFDS_DATA_DIR or "
                                "~/tensorflow_datasets)")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "rebuild even if already prepared (deletes the "
                                "existing build first)")


def prepare(name: str, manual_dir: str, data_dir: str | None = None, *, overwrite: bool = False,
            progress: bool = True) -> dict:
    """Builds ``name`` from ``manual_dir`` into ``data_dir``; returns the report (counts, skips)."""
    import tensorflow_datasets as tfds

    from jaxfuse.data.datasets import get_builder

    builder = get_builder(name, data_dir)
    manual = Path(manual_dir).expanduser()
    if not manual.is_dir() or not any(manual.iterdir()):
        raise images.ImageError(f"--manual_dir {manual} does not exist or is empty; for {name} it "
                                f"should hold:\n{builder.MANUAL_DOWNLOAD_INSTRUCTIONS}")
    if builder.is_prepared() and not overwrite:
        print(f"{name}: already prepared in {builder.data_dir} (pass --overwrite to rebuild)")
        return dict(builder.info.metadata)
    builder.show_progress = progress
    mode = (tfds.download.GenerateMode.FORCE_REDOWNLOAD if overwrite
            else tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS)
    tfds.disable_progress_bar()  # ours counts pairs against a known total
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir=str(manual), download_mode=mode, try_download_gcs=False))
    return dict(builder.info.metadata)


def format_report(name: str, report: dict, data_dir: str) -> str:
    lines = [f"{name}: prepared in {data_dir}"]
    for split, n in report.get("counts", {}).items():
        labelled = report.get("labelled", {}).get(split)
        lines.append(f"  {split}: {n} items" + (f" ({labelled} with labels)" if labelled is not None else ""))
    skipped = report.get("skipped", [])
    lines.append(f"  skipped: {len(skipped)}")
    lines += [f"    {s}" for s in skipped]
    lines += [f"  note: {n}" for n in report.get("notes", [])]
    return "\n".join(lines)


def main(argv):
    del argv
    from jaxfuse.data.datasets import get_builder

    try:
        report = prepare(_DATASET.value, _MANUAL_DIR.value, _DATA_DIR.value, overwrite=_OVERWRITE.value)
    except KeyError as e:  # an unknown dataset or config: the message lists the known ones
        print(f"error: --dataset {_DATASET.value}: {e.args[0]}", file=sys.stderr)
        return 2
    except images.ImageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(format_report(_DATASET.value, report, str(get_builder(_DATASET.value, _DATA_DIR.value).data_dir)))
    return 0


if __name__ == "__main__":
    app.run(lambda argv: sys.exit(main(argv)))
