"""Loads ``configs/<model>.py[:presets]`` outside absl flags (bench, tests, notebooks)."""

import importlib.util
from pathlib import Path

REPO_CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def load(spec: str):
    """``"configs/siba.py:smoke"`` or ``"siba:smoke"`` -> the ConfigDict of ``get_config("smoke")``."""
    path, _, arg = spec.partition(":")
    file = Path(path)
    if not file.is_file():
        file = REPO_CONFIGS / (Path(path).stem + ".py")
    if not file.is_file():
        raise FileNotFoundError(f"no config file {path!r} (looked in . and {REPO_CONFIGS})")
    module_spec = importlib.util.spec_from_file_location(f"jaxfuse_config_{file.stem}", file)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.get_config(arg or None)
