"""Config mistakes as one line (field, preset, file, value), and unknown bench cases."""

import sys

import pytest
from absl import flags
from ml_collections import config_flags

from conftest import REPO
from jaxfuse import bench, configs


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
