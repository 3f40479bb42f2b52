"""python -m jaxfuse.evaluate on small synthetic folders (and a stub fuser for --checkpoint)."""

import csv
import json
import subprocess
import sys
import types

import numpy as np
import pytest
from PIL import Image

from helpers import mode, umask
from jaxfuse import evaluate

METRICS = "EN,SD,MI,CC"


def _write(folder, name, array):
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(folder / name)


@pytest.fixture()
def pairs(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(3):
        ir = rng.integers(0, 256, (24, 32), dtype=np.uint8)
        vi = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)  # RGB: reduced to gray
        _write(tmp_path / "ir", f"{i:02d}.png", ir)
        _write(tmp_path / "vi", f"{i:02d}.png", vi)
        _write(tmp_path / "a", f"{i:02d}.png", ir)
        _write(tmp_path / "b", f"{i:02d}.png", (ir // 2 + vi[..., 0] // 2).astype(np.uint8))
    _write(tmp_path / "ir", "03.png", np.full((20, 30), 7, np.uint8))  # another size, constant
    _write(tmp_path / "vi", "03.png", np.full((20, 30), 7, np.uint8))
    _write(tmp_path / "a", "03.png", np.full((20, 30), 7, np.uint8))
    _write(tmp_path / "b", "03.png", np.zeros((20, 30), np.uint8))
    return tmp_path


def _run(*args):
    return evaluate.main([*map(str, args), "--no-progress", "--xla-cache", ""])


def test_single_folder_report(pairs):
    out = pairs / "rep"
    with pytest.warns(UserWarning, match="CC is undefined .* 03.png"), umask(0o022):
        assert _run("--fused", pairs / "a", "--ir", pairs / "ir", "--vi", pairs / "vi",
                    "--out", out, "--metrics", METRICS) == 0
    assert {mode(p) for p in out.iterdir()} == {0o644}  # per_image.csv, summary.{json,md}
    rows = list(csv.reader(open(out / "per_image.csv")))
    assert rows[0] == ["image", "EN", "SD", "MI", "CC"]
    assert [r[0] for r in rows[1:]] == ["00.png", "01.png", "02.png", "03.png"]
    assert rows[4][4] == ""  # constant fused image: CC undefined, left empty
    summary = json.loads((out / "summary.json").read_text())
    assert summary["metrics"]["CC"]["undefined"] == 1 and summary["metrics"]["EN"]["n"] == 4
    assert summary["convention"] == "matlab"
    assert "| EN |" in (out / "summary.md").read_text()


def test_several_methods_comparison(pairs):
    out = pairs / "cmp"
    with pytest.warns(UserWarning):
        assert _run("--fused", f"ir_copy={pairs / 'a'}", f"mix={pairs / 'b'}", "--ir", pairs / "ir",
                    "--vi", pairs / "vi", "--out", out, "--metrics", METRICS,
                    "--convention", "cddfuse") == 0
    for m in ("ir_copy", "mix"):
        assert (out / m / "per_image.csv").exists() and (out / m / "summary.md").exists()
    assert (out / "comparison.png").stat().st_size > 1000
    table = (out / "comparison.md").read_text()
    assert "| ir_copy |" in table and "| mix |" in table and "**" in table


def test_bad_inputs_name_the_file(pairs, capsys):
    (pairs / "a" / "02.png").unlink()
    assert _run("--fused", pairs / "a", "--ir", pairs / "ir", "--vi", pairs / "vi",
                "--out", pairs / "r1", "--metrics", "EN") == 2
    assert "02.png" in capsys.readouterr().err
    _write(pairs / "a", "02.png", np.zeros((10, 10), np.uint8))
    assert _run("--fused", pairs / "a", "--ir", pairs / "ir", "--vi", pairs / "vi",
                "--out", pairs / "r2", "--metrics", "EN") == 2
    err = capsys.readouterr().err
    assert "sizes differ" in err and "02.png" in err
    assert _run("--fused", pairs / "b", "--ir", pairs / "ir", "--vi", pairs / "vi",
                "--out", pairs / "r3", "--metrics", "EN,XX") == 2
    assert "unknown metric" in capsys.readouterr().err
    for d in ("a", "ir", "vi"):
        _write(pairs / d, "02.png", np.zeros((2, 2), np.uint8))
    assert _run("--fused", pairs / "a", "--ir", pairs / "ir", "--vi", pairs / "vi",
                "--out", pairs / "r4", "--metrics", "EN") == 2
    err = capsys.readouterr().err
    assert "02.png" in err and "3x3" in err and not (pairs / "r4").exists()


def test_checkpoint_path_fuses_then_scores(pairs, monkeypatch):
    calls = []

    def fuse_folders(checkpoint, ir_dir, vi_dir, out_dir, dtype="float32"):
        calls.append((checkpoint, dtype))
        written = []
        for p in sorted((pairs / "a").iterdir()):
            _write(out_dir, p.name, np.asarray(Image.open(p)))
            written.append(out_dir / p.name)
        return written

    monkeypatch.setitem(sys.modules, "jaxfuse.fuse", types.SimpleNamespace(fuse_folders=fuse_folders))
    out = pairs / "ck"
    with pytest.warns(UserWarning):
        assert _run("--checkpoint", pairs / "ckpt_dir", "--ir", pairs / "ir", "--vi", pairs / "vi",
                    "--out", out, "--metrics", METRICS) == 0
    assert calls == [(str(pairs / "ckpt_dir"), "float32")]
    assert len(list(csv.reader(open(out / "per_image.csv")))) == 5


def test_cli_process_decodes_in_a_child_before_jax_loads(pairs, tmp_path):
    """As a fresh process the CLI decodes in a forked child (JAX not loaded yet): the same
    report as in-process (a decoding thread), and a broken file still ends in a one-line error."""
    folders = ["--ir", pairs / "ir", "--vi", pairs / "vi", "--metrics", METRICS, "--no-progress",
               "--xla-cache", ""]
    with pytest.warns(UserWarning):
        assert _run("--fused", pairs / "a", *folders[:6], "--out", tmp_path / "inproc") == 0
    cli = [sys.executable, "-m", "jaxfuse.evaluate"]
    run = subprocess.run([*cli, "--fused", pairs / "a", *folders, "--out", tmp_path / "child"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    report = (tmp_path / "child" / "per_image.csv").read_text()
    assert report == (tmp_path / "inproc" / "per_image.csv").read_text()
    (pairs / "a" / "01.png").write_bytes(b"not a png")
    run = subprocess.run([*cli, "--fused", pairs / "a", *folders, "--out", tmp_path / "bad"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and "01.png" in run.stderr and "Traceback" not in run.stderr, run.stderr
    assert not (tmp_path / "bad").exists()
