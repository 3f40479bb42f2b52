"""``python -m jaxfuse.fuse``: any size, colour kept, batching without recompiles, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from helpers import mode, umask, write_pair_folder
from jaxfuse import fuse, models
from jaxfuse.convert.__main__ import write_checkpoint
from jaxfuse.data import color

TINY = {"features": 16, "heads": 2, "sa_depth": 1, "ca_depth": 1}


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    module = models.get("siba").build(TINY)
    x = jnp.zeros((1, 8, 8, 1))
    params = jax.device_get(module.init(jax.random.key(0), x, x)["params"])
    with umask(0o022):
        return write_checkpoint("siba", {"params": params}, TINY, tmp_path_factory.mktemp("ckpt") / "tiny")


def test_folders_any_size_colour_kept_one_compile_per_size(tmp_path, ckpt):
    root = write_pair_folder(tmp_path / "in", [(33, 47), (33, 47), (33, 47), (20, 25)])
    fuser = fuse.Fuser.from_checkpoint(ckpt)
    with umask(0o022):
        written = fuse.fuse_folders(None, root / "ir", root / "vi", tmp_path / "out", batch_size=2, fuser=fuser)
    assert [p.name for p in written] == ["00.png", "01.png", "02.png", "03.png"]
    assert {mode(p) for p in written} == {0o644} and mode(ckpt) == 0o755  # readable by others
    assert fuser._fuse._cache_size() == 2  # (33, 47) in two batches of 2 (padded), (20, 25) once
    out = np.asarray(Image.open(tmp_path / "out" / "03.png"))
    assert out.shape == (20, 25, 3)
    # Chroma comes from the visible image: Cb/Cr of the output match the input's (up to rounding).
    vi = np.asarray(Image.open(root / "vi" / "03.png"), np.float32) / 255
    _, cb_in, cr_in = color.rgb_to_ycbcr(vi)
    _, cb_out, cr_out = color.rgb_to_ycbcr(out.astype(np.float32) / 255)
    inside = (out > 3).all(-1) & (out < 252).all(-1)  # away from RGB clipping
    assert np.abs(cb_out - cb_in)[inside].mean() < 0.01 and np.abs(cr_out - cr_in)[inside].mean() < 0.01


def test_single_pair_grey_visible_and_bf16(tmp_path, ckpt):
    root = write_pair_folder(tmp_path / "in", [(17, 31)], rgb_vi=False)
    f32 = fuse.Fuser.from_checkpoint(ckpt)
    fuse.fuse_files(f32, root / "ir" / "00.png", root / "vi" / "00.png", tmp_path / "a.png")
    out = np.asarray(Image.open(tmp_path / "a.png"))
    assert out.shape == (17, 31) and out.dtype == np.uint8
    bf16 = fuse.Fuser.from_checkpoint(ckpt, dtype="bfloat16")
    fuse.fuse_files(bf16, root / "ir" / "00.png", root / "vi" / "00.png", tmp_path / "b.png")
    diff = np.abs(np.asarray(Image.open(tmp_path / "b.png")).astype(int) - out)
    assert diff.mean() < 3


def test_cli_bad_input_writes_nothing(tmp_path, ckpt, capsys):
    root = write_pair_folder(tmp_path / "in", [(20, 20), (20, 20)])
    Image.fromarray(np.zeros((20, 21), np.uint8)).save(root / "vi" / "01.png")
    args = ["--checkpoint", str(ckpt), "--ir", str(root / "ir"), "--vi", str(root / "vi"), "--out", str(tmp_path / "out")]
    assert fuse.main(args) == 2
    assert "01.png is 20x20 but vi" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert fuse.main(args[:1] + [str(tmp_path / "nope")] + args[2:]) == 2
    assert "no such checkpoint" in capsys.readouterr().err
    (root / "vi" / "01.png").unlink()
    assert fuse.main(args) == 2
    assert "do not pair" in capsys.readouterr().err
