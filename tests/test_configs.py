"""Config mistakes as one line (field, preset, file, value), unknown bench cases, bench --against-official."""

import sys
import time
import types

import numpy as np
import pytest
from absl import flags
from ml_collections import config_flags

from conftest import REPO
from jaxfuse import bench, configs, official


def _parse_error(spec, *overrides) -> str:
    """The one-line message for what parsing ``--config spec overrides`` raises."""
    values = flags.FlagValues()
    config_flags.DEFINE_config_file("config", None, "", flag_values=values, lock_config=True)
    argv = ["train", "--config", spec, *overrides]
    with pytest.MonkeyPatch.context() as m, pytest.raises(Exception) as e:
        m.setattr(sys, "argv", argv)  # ml_collections reads the overrides from sys.argv
        values(argv)
    return configs.error_message(e.value, argv)


SIBA = str(REPO / "configs" / "siba.py")


def test_a_mistyped_field_is_one_line_with_the_fix():
    msg = _parse_error(f"{SIBA}:smoke", "--config.train.batch_sizee=3")
    assert msg == "--config.train.batch_sizee=3: the config has no field train.batch_sizee; did you mean train.batch_size?"
    assert _parse_error(SIBA, "--config.trian.epochs=3").endswith("no field trian; did you mean train?")
    listed = _parse_error(SIBA, "--config.train.zzz=3")
    assert "no field train.zzz (fields of train: batch_size," in listed and "\n" not in listed


def test_unknown_presets_files_and_bad_values():
    assert _parse_error(f"{SIBA}:smok") == (f"--config {SIBA}:smok: unknown preset 'smok' for configs/siba.py; "
                                            'did you mean "smoke"? (presets: smoke, synthetic, tiny)')
    assert _parse_error(SIBA, "--config.train.batch_size=abc") == (
        "--config.train.batch_size=abc: invalid literal for int() with base 10: 'abc'")
    assert _parse_error(SIBA, "--config.data.flips=maybe").endswith("flips=maybe: Non-boolean argument to boolean flag: 'maybe'")
    with pytest.raises(configs.ConfigError, match=r"no config file 'configs/sib.py'; did you mean \"configs/siba.py\"\?"):
        configs.find("configs/sib.py")
    with pytest.raises(configs.ConfigError, match="unknown preset 'tiyn'"):
        configs.load("siba:smoke,tiyn")


def test_bench_rejects_unknown_cases_listing_the_valid_ones(capsys):
    with pytest.raises(SystemExit) as e:
        bench.main(["--cases", "train,foo"])
    assert e.value.code == 2
    assert "unknown case(s) foo for siba; valid: train, infer128x128, infer480x640, all" in capsys.readouterr().err


def test_bench_cases_come_from_each_models_config():
    assert list(bench.cases_of(configs.load("dmfuse"))) == ["train", "train_ddpm", "infer256x256", "infer576x768",
                                                             "infer480x640"]
    assert list(bench.cases_of(configs.load("crossfuse"))) == ["train", "infer256x256", "infer480x640",
                                                                "infer768x1024"]


def test_bench_against_official_checks_the_model_and_the_clone(capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        bench.main(["--model", "refinefuse", "--against-official", str(tmp_path)])
    assert e.value.code == 2 and "refinefuse has no official implementation to time" in capsys.readouterr().err
    with pytest.raises(official.OfficialError, match=r"not a clone of the official repository \(models/SIBA.py not found\)"):
        with official.official_imports(tmp_path, "models/SIBA.py"):
            pass


def test_bench_against_official_prints_both_figures_and_the_speedup():
    class Fake:
        torch = types.SimpleNamespace(__version__="fake")

        def infer(self, ir, vi):
            assert ir.shape == vi.shape == (2, 8, 8, 1) and ir.dtype == np.float32
            return lambda: time.sleep(0.01)

        def train(self, ir, vi, stage):
            raise official.OfficialError("no official training step")

    record = {"case": "infer_8x8_b2", "median_s": 0.005}
    ir, vi = bench._inputs(2, 8, 8)
    theirs, ratio = bench._against(Fake(), lambda o: o.infer(ir, vi), record, 2, 2, "images_per_s")
    assert theirs["impl"] == "official-torch" and theirs["runs"] == 2 and theirs["median_s"] >= 0.01
    assert ratio["case"] == "infer_8x8_b2" and ratio["speedup"] == pytest.approx(theirs["median_s"] / 0.005, rel=0.02)
    skipped, = bench._against(Fake(), lambda o: o.train(ir, vi, None), record, 2, 1, "steps_per_s")
    assert skipped["skipped"] == "no official training step"
    assert bench._against(None, None, record, 2, 1, "steps_per_s") == []
