"""Config files: loading ``configs/<model>.py[:presets]`` outside absl flags (bench, tests,
notebooks), presets, and config mistakes as one line for the user.

Every CLI reports a mistyped field, an unknown preset or config file and a bad value the same
way: ``error: <what, naming the field or choice, and the suggestion>`` on stderr, exit code 2,
no traceback (:func:`exit_with`).
"""

from __future__ import annotations

import difflib
import importlib.util
import re
import sys
from pathlib import Path
from typing import NoReturn

REPO_CONFIGS = Path(__file__).resolve().parents[1] / "configs"


class ConfigError(ValueError):
    """A config mistake (file, preset, field, value); the message is one line naming it."""


def did_you_mean(word: str, choices) -> str:
    """'; did you mean "x"?' for the closest of ``choices``, or ''."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f'; did you mean "{close[0]}"?' if close else ""


def apply_presets(config, arg: str | None, presets: dict, where: str):
    """Applies the comma-separated presets of ``arg`` in order (``get_config`` of each file)."""
    for name in filter(None, (arg or "").split(",")):
        if name not in presets:
            raise ConfigError(f"unknown preset {name!r} for {where}{did_you_mean(name, presets)} "
                              f"(presets: {', '.join(sorted(presets))})")
        presets[name](config)
    return config


def find(path: str, fallback: bool = True) -> Path:
    """``configs/siba.py`` (or, with ``fallback``, ``siba``) -> the config file; a ConfigError
    lists the known ones."""
    file = Path(path)
    if not file.is_file() and fallback:
        file = REPO_CONFIGS / (Path(path).stem + ".py")
    if not file.is_file():
        known = sorted(f"configs/{p.name}" for p in REPO_CONFIGS.glob("*.py"))
        raise ConfigError(f"no config file {path!r}{did_you_mean(path, known)} (configs: {', '.join(known)})")
    return file


def load(spec: str):
    """``"configs/siba.py:smoke"`` or ``"siba:smoke"`` -> the ConfigDict of ``get_config("smoke")``."""
    path, _, arg = spec.partition(":")
    file = find(path)
    module_spec = importlib.util.spec_from_file_location(f"jaxfuse_config_{file.stem}", file)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.get_config(arg or None)


# ----------------------------------------------------------------------------------------------
# One line per mistake. absl + ml_collections report them as chained, repr-escaped tracebacks
# (a mistyped --config.train.batch_sizee=3 ends in 57 lines and an escaped AttributeError).
# ----------------------------------------------------------------------------------------------
def error_message(exc: BaseException, argv=()) -> str:
    """One line for a mistake met while loading or overriding a config from ``argv``."""
    if isinstance(exc, ConfigError):
        return str(exc)
    chain = _chain(exc)
    for e in chain:
        if isinstance(e, KeyError) and e.args:  # ml_collections: an unknown field
            return _unknown_field(str(e.args[0]), argv)
    text = str(exc)
    if "Error whilst parsing config file" in text:  # get_config raised: keep its last line
        last = [m.group(1) for m in re.finditer(r"^\s*[\w.]*(?:Error|Exception): (.*)$", text, re.M)]
        if last:
            return f"--config {config_arg(argv)}: {last[-1]}"
    text = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    text = re.sub(r"\('(.+?)', '(.*)'\)$", r"\1: '\2'", text)  # absl's tuple-repr messages
    return text[len("flag "):] if text.startswith("flag --") else text


def exit_with(exc: BaseException, argv=()) -> NoReturn:
    """Prints ``error: <one line>`` to stderr and exits with status 2."""
    print(f"error: {error_message(exc, argv)}", file=sys.stderr)
    sys.exit(2)


def _chain(exc):
    seen = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def config_arg(argv) -> str:
    """The value of --config in ``argv`` ('' if absent)."""
    for i, a in enumerate(argv):
        if a.startswith("--config="):
            return a.split("=", 1)[1]
        if a == "--config" and i + 1 < len(argv):
            return argv[i + 1]
    return ""


def _unknown_field(message: str, argv) -> str:
    """ml_collections' "'key'\nDid you mean ..." -> the override, the field and the fix."""
    key = message.split("\n")[0].strip("'\"")
    suggestion = re.search(r'Did you mean "(.+?)"', message)
    override = next((a for a in argv if a.startswith("--config.")
                     and key in a[len("--config."):].split("=")[0].split(".")), None)
    if override is None:
        return f"unknown config field {key!r}" + (f'; did you mean "{suggestion[1]}"?' if suggestion else "")
    path = override[len("--config."):].split("=")[0].split(".")
    parent = path[:path.index(key)]
    line = f"{override}: the config has no field {'.'.join(parent + [key])}"
    if suggestion:
        return f"{line}; did you mean {'.'.join(parent + [suggestion[1]])}?"
    try:  # no close match: list the fields that do exist there
        node = load(config_arg(argv))
        for part in parent:
            node = node[part]
        return f"{line} (fields{' of ' + '.'.join(parent) if parent else ''}: {', '.join(sorted(node.keys()))})"
    except Exception:  # noqa: BLE001 -- the line above is still right
        return line
