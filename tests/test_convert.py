"""The converter's strictness and the ``python -m jaxfuse.convert`` CLI (bad inputs leave nothing)."""

import numpy as np
import pytest

from conftest import require_shared
from jaxfuse import checkpoint, convert
from jaxfuse.convert import core
from jaxfuse.convert import __main__ as convert_cli


@pytest.fixture(scope="module")
def state():
    with np.load(require_shared("reference", "siba") / "weights.npz") as z:
        return {k: z[k] for k in z.files}


def test_mapping_consumes_every_key_and_fills_every_param(state):
    variables, cfg = convert.to_flax("siba", state)
    params = variables["params"]
    assert cfg == {"features": 48, "heads": 8, "sa_depth": 1, "ca_depth": 1}
    n = sum(np.size(v) for v in state.values())
    assert n == 565_941 and sum(np.size(x) for x in __import__("jax").tree.leaves(params)) == n


def test_missing_and_extra_keys_are_listed(state):
    broken = {k: v for k, v in state.items() if k != "vi_sa.0.attn.scale"}
    broken["ir_conv.extra.weight"] = np.zeros(3, np.float32)
    with pytest.raises(core.ConversionError) as e:
        convert.to_flax("siba", broken)
    assert "vi_sa.0.attn.scale" in str(e.value) and "ir_conv.extra.weight" in str(e.value)


def test_shape_mismatch_is_named(state):
    broken = dict(state, **{"out_conv.conv2.weight": np.zeros((1, 47, 3, 3), np.float32)})
    with pytest.raises(core.ConversionError, match=r"out_conv.conv2.weight \(1, 47, 3, 3\)"):
        convert.to_flax("siba", broken)


def test_a_checkpoint_of_another_model_is_refused():
    with pytest.raises(core.ConversionError, match="does not look like a siba state dict"):
        convert.to_flax("siba", {"encoder.conv1.weight": np.zeros((16, 1, 3, 3), np.float32)})
    with pytest.raises(core.ConversionError, match="no converter for model"):
        convert.to_flax("nope", {})


def test_cli_writes_a_loadable_checkpoint_and_refuses_bad_files(tmp_path, state, capsys):
    src = require_shared("reference", "siba") / "weights.npz"
    assert convert_cli.main(["--model", "siba", "--torch", str(src), "--out", str(tmp_path / "ok")]) == 0
    variables, config = checkpoint.load_variables(tmp_path / "ok")
    params = variables["params"]
    assert config["model_name"] == "siba" and config["model"]["heads"] == 8
    np.testing.assert_array_equal(params["ir_conv"]["act"]["slope"], state["ir_conv.act.weight"][0])

    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(src.read_bytes()[:5000])
    assert convert_cli.main(["--model", "siba", "--torch", str(truncated), "--out", str(tmp_path / "bad")]) == 2
    assert "cannot read state dict" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp dirs left
    assert convert_cli.main(["--model", "siba", "--torch", str(src), "--out", str(tmp_path / "ok")]) == 2
