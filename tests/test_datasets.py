"""TFDS builders: each built once on real ../shared/data pairs arranged in its official layout.

Checks counts, shapes, dtypes, names, labels and splits, and that a round trip through Grain
gives the pixels read from the files. Bad-input tests use tiny synthetic images. One test
builds and reads in a subprocess where TensorFlow cannot be imported.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import grain
import numpy as np
import pytest
from PIL import Image

from conftest import REPO, require_shared
from jaxfuse.data import images
from jaxfuse.data.datasets import BUILDERS, DatasetNotPreparedError, base, get_builder, tfds_source
from jaxfuse.data.prepare import prepare

# Makes `import tensorflow` fail as if it were not installed (TFDS checks find_spec too).
BLOCK_TF = textwrap.dedent("""\
    import importlib.machinery, sys
    class _NoTF:
        def __init__(self, inner): self.inner = inner
        def find_spec(self, name, path=None, target=None):
            if name == "tensorflow" or name.startswith("tensorflow."):
                return None
            return self.inner.find_spec(name, path, target)
        def __getattr__(self, a): return getattr(self.inner, a)
    sys.meta_path[:] = [_NoTF(f) if f is importlib.machinery.PathFinder else f for f in sys.meta_path]
    """)


def _link(src: Path, dst: Path, names=None) -> None:
    """Symlinks ``src/NAME`` (all files, or ``names``) into folder ``dst``."""
    dst.mkdir(parents=True, exist_ok=True)
    for n in names if names is not None else sorted(os.listdir(src)):
        (dst / n).symlink_to(src / n)


def _voc(path: Path, w: int, h: int, objects) -> None:
    objs = "".join(f"<object><name>{c}</name><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin>"
                   f"<xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
                   for c, (x0, y0, x1, y1) in objects)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<annotation><size><width>{w}</width><height>{h}</height><depth>3</depth>"
                    f"</size>{objs}</annotation>")


def _items(src) -> dict[str, dict]:
    """All items of a source, through a Grain MapDataset, keyed by name."""
    ds = grain.MapDataset.source(src)
    out = {ds[i]["name"]: ds[i] for i in range(len(ds))}
    assert len(out) == len(src)
    return out


def _check_pair(item, ir_path, vi_path):
    ir, vi = item["ir"], item["vi"]
    assert ir.dtype == np.uint8 and ir.ndim == 3 and ir.shape[-1] == 1
    assert vi.dtype == np.uint8 and vi.ndim == 3 and vi.shape[-1] in (1, 3)
    np.testing.assert_array_equal(ir, images.read_gray(ir_path))
    want = images.read_image(vi_path)
    np.testing.assert_array_equal(np.broadcast_to(vi, want.shape), want)
    if vi.shape[-1] == 1:  # stored once only when the file really is gray
        assert want.shape[-1] == 1 or (want == want[..., :1]).all()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("tfds")


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    return tmp_path_factory.mktemp("raw")


def _build(name, manual, data_dir):
    return prepare(name, str(manual), str(data_dir), progress=False)


def test_registry_names():
    assert sorted(BUILDERS) == sorted(["msrs", "tno", "roadscene", "m3fd", "llvip", "kaist",
                                       "harvard", "natural_images"])
    for cls in BUILDERS.values():
        assert "manual_dir" in cls.MANUAL_DOWNLOAD_INSTRUCTIONS


def test_msrs(raw, data_dir):
    shared = require_shared("data")
    root = raw / "MSRS"
    masks = {}
    for split in ("train", "test"):
        for m in ("ir", "vi"):
            _link(shared / f"msrs_{split}" / m, root / split / m)
    # The official Segmentation_labels are not in ../shared: write stand-in class-index masks
    # for the train split only, so the test split exercises the "release lacks labels" path.
    for p in sorted((shared / "msrs_train" / "ir").iterdir()):
        mask = (images.read_gray(p)[..., 0] // 29).astype(np.uint8)  # values 0..8
        (root / "train" / "Segmentation_labels").mkdir(parents=True, exist_ok=True)
        Image.fromarray(mask, "L").save(root / "train" / "Segmentation_labels" / p.name)
        masks[p.name] = mask
    report = _build("msrs", root, data_dir)
    assert report["counts"] == {"train": 4, "test": 22}
    assert report["labelled"] == {"train": 4, "test": 0}
    assert report["skipped"] == []
    assert any("test/Segmentation_labels" in n for n in report["notes"])

    train, test = _items(tfds_source("msrs", "train", data_dir)), _items(tfds_source("msrs", "test", data_dir))
    assert sorted(train) == sorted(masks)
    assert sorted(test) == sorted(os.listdir(shared / "msrs_test" / "ir"))
    for name, item in train.items():
        _check_pair(item, root / "train/ir" / name, root / "train/vi" / name)
        assert item["vi"].shape == (480, 640, 3)
        np.testing.assert_array_equal(item["label"], masks[name])
    for name, item in test.items():
        _check_pair(item, root / "test/ir" / name, root / "test/vi" / name)
        assert "label" not in item  # the split has no labels at all
    assert len(tfds_source("msrs", "test[:5]", data_dir)) == 5


def test_tno_gray_visible_stored_once(raw, data_dir):
    shared = require_shared("data", "tno")
    names = ["05.png", "08.png", "11.png", "12.png", "37.png"]
    for m in ("ir", "vi"):
        _link(shared / m, raw / "TNO" / m, names)
    assert _build("tno", raw / "TNO", data_dir)["counts"] == {"test": 5}
    items = _items(tfds_source("tno", "test", data_dir))
    assert sorted(items) == names
    for name, item in items.items():
        _check_pair(item, shared / "ir" / name, shared / "vi" / name)
        assert item["vi"].shape[-1] == 1  # TNO visible files are gray-replicated RGB


def test_roadscene(raw, data_dir):
    shared = require_shared("data", "roadscene221")
    names = sorted(os.listdir(shared / "ir"))[:8]
    _link(shared / "ir", raw / "RoadScene" / "cropinfrared", names)
    _link(shared / "vi", raw / "RoadScene" / "crop_LR_visible", names)
    report = _build("roadscene", raw / "RoadScene", data_dir)
    assert report["counts"] == {"train": 8}
    assert any("221" in n for n in report["notes"])  # partial copy is reported
    items = _items(tfds_source("roadscene", "train", data_dir))
    assert sorted(items) == names
    for name, item in items.items():
        _check_pair(item, shared / "ir" / name, shared / "vi" / name)
        assert item["vi"].shape[-1] == 3


def test_m3fd_with_boxes(raw, data_dir):
    shared = require_shared("data", "m3fd")
    root = raw / "M3FD_Fusion"
    _link(shared / "ir", root / "Ir")
    _link(shared / "vi", root / "Vis")
    # Stand-in VOC annotation (the real M3FD_Detection XML is not in ../shared).
    _voc(root / "Annotation" / "M3FD_00471.xml", 1024, 768,
         [("People", (100, 200, 150, 380)), ("Car", (0, 384, 512, 768))])
    assert _build("m3fd", root, data_dir)["counts"] == {"test": 1}
    (item,) = _items(tfds_source("m3fd", "test", data_dir)).values()
    assert item["name"] == "M3FD_00471.png"
    _check_pair(item, shared / "ir" / item["name"], shared / "vi" / item["name"])
    np.testing.assert_allclose(item["boxes"], [[200 / 768, 100 / 1024, 380 / 768, 150 / 1024],
                                               [0.5, 0.0, 1.0, 0.5]], rtol=1e-6)
    np.testing.assert_array_equal(item["classes"], [0, 1])
    assert item["boxes"].dtype == np.float32 and item["classes"].dtype == np.int64


def test_llvip_splits_and_annotations(raw, data_dir):
    shared = require_shared("data", "llvip")
    root = raw / "LLVIP"
    split_names = {"train": ["010001.jpg", "010002.jpg"], "test": ["190001.jpg"]}
    for split, names in split_names.items():
        _link(shared / "ir", root / "infrared" / split, names)
        _link(shared / "vi", root / "visible" / split, names)
    _voc(root / "Annotations" / "010001.xml", 1280, 1024, [("person", (640, 512, 1280, 1024))])
    report = _build("llvip", root, data_dir)
    assert report["counts"] == {"train": 2, "test": 1}
    assert report["labelled"] == {"train": 1, "test": 0}
    assert any("no annotation" in n for n in report["notes"])
    train = _items(tfds_source("llvip", "train", data_dir))
    assert sorted(train) == split_names["train"]
    for name, item in train.items():
        _check_pair(item, shared / "ir" / name, shared / "vi" / name)
    np.testing.assert_allclose(train["010001.jpg"]["boxes"], [[0.5, 0.5, 1.0, 1.0]])
    assert train["010002.jpg"]["boxes"].shape == (0, 4)
    test = _items(tfds_source("llvip", "test", data_dir))
    assert list(test) == ["190001.jpg"] and "boxes" not in test["190001.jpg"]


def test_kaist_layout(raw, data_dir):
    # No KAIST frames are in ../shared: real MSRS pairs stand in, arranged as setXX/VYYY.
    shared = require_shared("data", "msrs_test")
    src = sorted(os.listdir(shared / "ir"))[:3]
    root = raw / "KAIST"
    for (s, v, f), n in zip([("set00", "V000", "I00000.png"), ("set00", "V001", "I00000.png"),
                             ("set06", "V000", "I00001.png")], src):
        for m, sub in (("ir", "lwir"), ("vi", "visible")):
            (root / s / v / sub).mkdir(parents=True, exist_ok=True)
            (root / s / v / sub / f).symlink_to(shared / m / n)
    assert _build("kaist", root, data_dir)["counts"] == {"train": 2, "test": 1}
    train = _items(tfds_source("kaist", "train", data_dir))
    assert sorted(train) == ["set00_V000_I00000.png", "set00_V001_I00000.png"]
    _check_pair(train["set00_V001_I00000.png"], shared / "ir" / src[1], shared / "vi" / src[1])
    assert list(_items(tfds_source("kaist", "test", data_dir))) == ["set06_V000_I00001.png"]


def test_harvard_configs(raw, data_dir):
    shared = require_shared("data", "harvard")
    names = ["11.png", "12.png", "21.png"]
    for func in ("CT", "PET", "SPECT"):
        sub = shared / f"mri_{func.lower()}"
        _link(sub / "mri", raw / "harvard" / f"MRI_{func}" / "MRI", names)
        _link(sub / func.lower(), raw / "harvard" / f"MRI_{func}" / func, names)
        assert _build(f"harvard/mri_{func.lower()}", raw / "harvard", data_dir)["counts"] == {"test": 3}
        items = _items(tfds_source(f"harvard/mri_{func.lower()}", "test", data_dir))
        assert sorted(items) == names
        for name, item in items.items():
            _check_pair(item, sub / "mri" / name, sub / func.lower() / name)  # MRI -> ir
            assert item["ir"].shape == (256, 256, 1)
            assert item["vi"].shape == ((256, 256, 1) if func == "CT" else (256, 256, 3))


def test_natural_images(raw, data_dir):
    shared = require_shared("data")
    root = raw / "coco"
    _link(shared / "vifb" / "vi", root / "a", ["carLight.jpg", "fight.jpg"])
    _link(shared / "tno" / "vi", root / "b", ["05.png"])
    (root / "b" / "broken.jpg").write_bytes(b"not a jpeg")
    report = _build("natural_images/original", root, data_dir)
    assert report["counts"] == {"train": 3}
    assert len(report["skipped"]) == 1 and "broken.jpg" in report["skipped"][0]
    items = _items(tfds_source("natural_images/original", "train", data_dir))
    assert sorted(items) == ["a/carLight.jpg", "a/fight.jpg", "b/05.png"]
    for name, item in items.items():
        want = images.read_image(root / name)
        np.testing.assert_array_equal(np.broadcast_to(item["image"], want.shape), want)
    _build("natural_images", root, data_dir)  # default config: shorter side 256
    for name, item in _items(tfds_source("natural_images", "train", data_dir)).items():
        h, w = images.read_image(root / name).shape[:2]
        assert min(item["image"].shape[:2]) == min(256, h, w)


# ---- bad input -------------------------------------------------------------------------------

def _png(path: Path, h=8, w=8, c=1, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (h, w, c) if c > 1 else (h, w), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path)


def test_bad_pairs_are_reported_and_skipped(tmp_path):
    root = tmp_path / "MSRS" / "train"
    for n in ("a", "b", "c", "d", "e"):
        _png(root / "ir" / f"{n}.png")
    for n in ("a", "c", "d", "f"):
        _png(root / "vi" / f"{n}.png", c=3)
    _png(root / "vi" / "b.png", h=9, c=3)                     # size mismatch
    (root / "vi" / "c.png").write_bytes(b"\x89PNG broken")      # corrupt
    _png(root / "Segmentation_labels" / "a.png")
    _png(root / "Segmentation_labels" / "d.png", h=4)           # wrong-size mask
    report = _build("msrs", tmp_path / "MSRS", tmp_path / "out")
    assert report["counts"] == {"train": 1}
    skipped = "\n".join(report["skipped"])
    assert len(report["skipped"]) == 5, skipped
    for frag in ("b.png: pair b.png", "vi/c.png: not an image file", "d.png: label mask is 8x4",
                 "ir/e.png: no counterpart", "vi/f.png: no counterpart"):
        assert frag in skipped, (frag, skipped)
    assert any("no test/ folder" in n for n in report["notes"])
    assert list(_items(tfds_source("msrs", "train", tmp_path / "out"))) == ["a.png"]
    with pytest.raises(KeyError, match="no split 'test'"):
        tfds_source("msrs", "test", tmp_path / "out")


def test_nothing_left_is_a_clear_error(tmp_path):
    _png(tmp_path / "T" / "ir" / "a.png")
    _png(tmp_path / "T" / "vi" / "a.png", h=9, c=3)
    with pytest.raises(images.ImageError, match="every pair of split 'test' was skipped"):
        _build("tno", tmp_path / "T", tmp_path / "out")
    assert not get_builder("tno", tmp_path / "out").is_prepared()


def test_ambiguous_stems_reported(tmp_path):
    _png(tmp_path / "T" / "ir" / "x.png")
    _png(tmp_path / "T" / "ir" / "x.bmp")
    _png(tmp_path / "T" / "vi" / "x.jpg", c=3)
    _png(tmp_path / "T" / "ir" / "y.png")
    _png(tmp_path / "T" / "vi" / "y.jpg", c=3)
    report = _build("tno", tmp_path / "T", tmp_path / "out")
    assert report["counts"] == {"test": 1}
    assert sum("ambiguous: 2 files named x.*" in s for s in report["skipped"]) == 2
    assert sum("x.jpg: several files named x.*" in s for s in report["skipped"]) == 1


def test_wrong_layout_is_a_clear_error(tmp_path):
    _png(tmp_path / "RS" / "cropinfrared" / "a.png")
    with pytest.raises(images.ImageError, match="crop_LR_visible.*not found"):
        _build("roadscene", tmp_path / "RS", tmp_path / "out")
    with pytest.raises(images.ImageError, match="does not exist"):
        _build("tno", tmp_path / "nowhere", tmp_path / "out")
    assert not get_builder("roadscene", tmp_path / "out").is_prepared()


def test_duplicate_names_are_an_error():
    pairs = [base.Pair("a.png", Path("x/a.png"), Path("y/a.png"))] * 2
    with pytest.raises(images.ImageError, match="duplicate pair names"):
        base._check_unique("train", pairs)


def test_failed_build_leaves_nothing_complete(tmp_path, monkeypatch):
    for n in "abc":
        _png(tmp_path / "T" / "ir" / f"{n}.png")
        _png(tmp_path / "T" / "vi" / f"{n}.png", c=3)
    real, calls = images.read_image, []

    def flaky(path):
        calls.append(path)
        if len(calls) == 2:
            raise RuntimeError("disk died")
        return real(path)

    monkeypatch.setattr(images, "read_image", flaky)
    with pytest.raises(RuntimeError, match="disk died"):
        _build("tno", tmp_path / "T", tmp_path / "out")
    assert not get_builder("tno", tmp_path / "out").is_prepared()
    assert not list((tmp_path / "out").rglob("dataset_info.json"))
    with pytest.raises(DatasetNotPreparedError):
        tfds_source("tno", "test", tmp_path / "out")
    monkeypatch.setattr(images, "read_image", real)
    assert _build("tno", tmp_path / "T", tmp_path / "out")["counts"] == {"test": 3}


def test_not_prepared_error_names_dir_and_command(tmp_path):
    with pytest.raises(DatasetNotPreparedError) as e:
        tfds_source("harvard/mri_pet", "test", tmp_path)
    msg = str(e.value)
    assert str(tmp_path) in msg
    assert f"python -m jaxfuse.data.prepare --dataset harvard/mri_pet --manual_dir DIR --data_dir {tmp_path}" in msg
    with pytest.raises(KeyError, match="unknown dataset"):
        tfds_source("mnist", "train", tmp_path)
    with pytest.raises(KeyError, match="no config"):
        tfds_source("harvard/mri_xray", "test", tmp_path)


def test_prepare_and_read_without_tensorflow(tmp_path):
    """The prepare CLI and tfds_source in a process where `import tensorflow` fails."""
    shared = require_shared("data", "harvard", "mri_spect")
    for m in ("MRI", "SPECT"):
        _link(shared / m.lower(), tmp_path / "h" / "MRI_SPECT" / m, ["11.png", "12.png"])
    code = BLOCK_TF + textwrap.dedent(f"""
        import runpy, sys
        sys.argv = ["prepare", "--dataset", "harvard/mri_spect", "--manual_dir", {str(tmp_path / "h")!r},
                    "--data_dir", {str(tmp_path / "out")!r}]
        try:
            runpy.run_module("jaxfuse.data.prepare", run_name="__main__")
        except SystemExit as e:
            assert e.code in (0, None), e.code
        from jaxfuse.data.datasets import tfds_source
        src = tfds_source("harvard/mri_spect", "test", {str(tmp_path / "out")!r})
        item = src[0]
        assert len(src) == 2 and item["vi"].shape == (256, 256, 3), (len(src), item["vi"].shape)
        assert "tensorflow" not in sys.modules
        try:
            import tensorflow
        except ImportError:
            print("NO-TF-OK")
        """)
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                       timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 0 and "NO-TF-OK" in r.stdout, r.stdout + r.stderr
    assert "test: 2 items" in r.stdout and "skipped: 0" in r.stdout, r.stdout
