"""Sources, the Grain pipeline and bad inputs."""

import numpy as np
import pytest
from PIL import Image

from helpers import mode, umask, write_pair_folder
from jaxfuse.data import color, images, pipeline, sources
from jaxfuse.data.synthetic import SyntheticPairs


def _batches(ds, n):
    it = iter(ds)
    return [next(it) for _ in range(n)]


def test_synthetic_pairs_are_deterministic_and_plausible():
    a, b = SyntheticPairs(4, 40, 50, seed=3), SyntheticPairs(4, 40, 50, seed=3)
    x, y = a[2], b[2]
    np.testing.assert_array_equal(x["ir"], y["ir"])
    assert x["ir"].shape == (40, 50, 1) and x["vi"].shape == (40, 50, 3) and x["vi"].dtype == np.uint8
    assert not np.array_equal(a[1]["vi"], a[2]["vi"])
    assert not np.array_equal(SyntheticPairs(4, 40, 50, seed=4)[2]["ir"], x["ir"])


def test_pipeline_is_deterministic_and_shaped():
    src = SyntheticPairs(8, 48, 48)
    kw = dict(batch_size=4, patch=32, flips=True, rot90=True, seed=1)
    first, second = _batches(pipeline.train_dataset(src, **kw), 5), _batches(pipeline.train_dataset(src, **kw), 5)
    for p, q in zip(first, second):
        np.testing.assert_array_equal(p["ir"], q["ir"])
        np.testing.assert_array_equal(p["vi"], q["vi"])
    assert first[0]["ir"].shape == (4, 32, 32, 1) and first[0]["vi"].dtype == np.float32
    other = _batches(pipeline.train_dataset(src, **{**kw, "seed": 2}), 1)[0]
    assert not np.array_equal(other["ir"], first[0]["ir"])
    # Epoch 2 (batches 2-3) is reshuffled, not a copy of epoch 1.
    assert not np.array_equal(first[2]["ir"], first[0]["ir"])


def test_pipeline_state_resumes_exactly():
    src = SyntheticPairs(8, 48, 48)
    it = iter(pipeline.train_dataset(src, batch_size=2, patch=32, seed=0))
    next(it), next(it)
    state = it.get_state()
    expected = [next(it)["ir"] for _ in range(3)]
    it2 = iter(pipeline.train_dataset(src, batch_size=2, patch=32, seed=0))
    it2.set_state(state)
    for e in expected:
        np.testing.assert_array_equal(next(it2)["ir"], e)


def test_process_slices_are_disjoint_and_cover_the_epoch():
    src = SyntheticPairs(8, 40, 40)
    seen = []
    for pi in range(2):
        ds = pipeline.train_dataset(src, batch_size=4, patch=40, margin=0, seed=0, process_index=pi, process_count=2)
        seen += [b["ir"][i].tobytes() for b in _batches(ds, 2) for i in range(2)]
    assert len(set(seen)) == 8


def test_folder_source_reads_y_channel_and_grey(tmp_path):
    root = write_pair_folder(tmp_path, [(40, 50), (40, 50)])
    src = sources.make_source(f"folder:{root}")
    item = src[0]
    assert item["ir"].shape == (40, 50, 1) and item["vi"].shape == (40, 50, 3)
    vi = np.asarray(Image.open(root / "vi" / "00.png"), np.float32) / 255
    np.testing.assert_allclose(color.luma(item["vi"]), color.rgb_to_ycbcr(vi)[0])


@pytest.mark.parametrize("spec_suffix", ["", ",x"])
def test_bad_source_specs(tmp_path, spec_suffix):
    with pytest.raises((images.ImageError, ValueError)):
        sources.make_source(f"folder:{tmp_path / 'missing'}{spec_suffix}")
    with pytest.raises(ValueError, match="unknown data source"):
        sources.make_source("nope:x")


def test_missing_and_empty_directories(tmp_path):
    with pytest.raises(images.ImageError, match="no such directory"):
        sources.FolderPairSource(tmp_path / "ir", tmp_path / "vi")
    (tmp_path / "ir").mkdir(), (tmp_path / "vi").mkdir()
    with pytest.raises(images.ImageError, match="no images"):
        sources.FolderPairSource(tmp_path / "ir", tmp_path / "vi")


def test_unpaired_names_are_listed(tmp_path):
    root = write_pair_folder(tmp_path, [(20, 20), (20, 20)])
    (root / "vi" / "01.png").rename(root / "vi" / "07.png")
    with pytest.raises(images.ImageError, match=r"only in .*ir \[01.png\].*only in .*vi \[07.png\]"):
        sources.FolderPairSource(root / "ir", root / "vi")


def test_pairs_by_stem_across_formats(tmp_path):
    root = write_pair_folder(tmp_path, [(20, 20)])
    Image.open(root / "vi" / "00.png").save(root / "vi" / "00.jpg")
    (root / "vi" / "00.png").unlink()
    assert [p[0] for p in images.pair_folders(root / "ir", root / "vi")] == ["00.png"]


def test_size_mismatch_names_both_files(tmp_path):
    root = write_pair_folder(tmp_path, [(20, 20)])
    Image.fromarray(np.zeros((21, 20), np.uint8)).save(root / "vi" / "00.png")
    with pytest.raises(images.ImageError, match=r"ir .*00.png is 20x20 but vi .*00.png is 20x21"):
        sources.FolderPairSource(root / "ir", root / "vi")


def test_non_image_and_truncated_files(tmp_path):
    root = write_pair_folder(tmp_path, [(20, 20), (20, 20)])
    (root / "ir" / "00.png").write_text("not an image")
    with pytest.raises(images.ImageError, match=r"ir/00.png: not an image"):
        sources.FolderPairSource(root / "ir", root / "vi")
    data = (root / "vi" / "01.png").read_bytes()
    (root / "vi" / "01.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(images.ImageError, match=r"vi/01.png: cannot decode"):
        images.read_image(root / "vi" / "01.png")


def test_sixteen_bit_png_is_scaled_to_eight_bits(tmp_path):
    a = np.array([[0, 257, 65535, 32896]], np.uint16)
    Image.fromarray(a).save(tmp_path / "x.png")
    np.testing.assert_array_equal(images.read_image(tmp_path / "x.png")[..., 0], [[0, 1, 255, 128]])


def test_rgb_infrared_is_reduced_like_pil_L(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (9, 7, 3), np.uint8)
    Image.fromarray(rgb).save(tmp_path / "ir.png")
    expected = np.asarray(Image.fromarray(rgb).convert("L"))
    np.testing.assert_array_equal(images.read_gray(tmp_path / "ir.png")[..., 0], expected)


def test_image_smaller_than_patch_is_named(tmp_path):
    root = write_pair_folder(tmp_path, [(40, 40), (20, 30)])
    with pytest.raises(images.ImageError, match=r"01.png is 30x20, smaller than the 32x32"):
        sources.make_source(f"folder:{root}", min_size=32)


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    def boom(tmp):
        open(tmp, "w").write("partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        images.atomic_write(tmp_path / "out.png", boom)
    assert list(tmp_path.iterdir()) == []


def test_written_files_get_the_umasks_permissions(tmp_path):
    """Atomic writes (temp + rename) must not keep mkstemp's 0600 / mkdtemp's 0700."""
    with umask(0o022):
        images.write_image(tmp_path / "new" / "a.png", np.zeros((4, 5), np.uint8))
        images.atomic_write(tmp_path / "b.txt", lambda tmp: open(tmp, "w").write("x"))
        built = images.make_temp_dir(tmp_path, ".build.")
    with umask(0o077):
        images.atomic_write(tmp_path / "private.txt", lambda tmp: open(tmp, "w").write("x"))
    assert (mode(tmp_path / "new" / "a.png"), mode(tmp_path / "b.txt"), mode(built)) == (0o644, 0o644, 0o755)
    assert mode(tmp_path / "new") == 0o755 and mode(tmp_path / "private.txt") == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == [built.name, "b.txt", "new", "private.txt"]
