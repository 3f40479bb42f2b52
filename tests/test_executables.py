"""jaxfuse.executables: compiled once per program and shape, reloaded by a new process without
tracing. The test session runs with JAX's persistent cache on (conftest), under which nothing is
saved, so the save-and-reload path runs in fresh interpreters without it."""

import os
import stat
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxfuse import executables

_SCRIPT = r"""
import sys
import jax, jax.numpy as jnp
from jaxfuse import executables
executables.set_cache_dir(sys.argv[1])
program = jax.jit(lambda x, y: [x * y, jnp.sum(x)])
if sys.argv[2] == "load":
    program.lower = None  # tracing again would fail
args = [jnp.arange(6.0).reshape(2, 3), jnp.full((2, 3), 2.0)]
product, total = executables.compiled("prog", program, args, sys.argv[3])(*args)
print(float(product.sum()), float(total))
"""


def _run(cache, mode, source="v1"):
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    env["JAX_PLATFORMS"] = "cpu"
    out = subprocess.run([sys.executable, "-c", _SCRIPT, str(cache), mode, source], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.split()


def test_a_new_process_loads_the_executable_without_tracing(tmp_path):
    assert _run(tmp_path, "compile") == ["30.0", "15.0"]
    (path,) = tmp_path.iterdir()
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~_umask()
    assert _run(tmp_path, "load") == ["30.0", "15.0"]
    assert _run(tmp_path, "compile", "v2") == ["30.0", "15.0"]  # changed source replaces it
    assert len(list(tmp_path.iterdir())) == 1 and not path.exists()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setattr(executables, "_MEMORY", {})
    executables.set_cache_dir(tmp_path)
    yield tmp_path
    executables.set_cache_dir(None)


def _program():
    return jax.jit(lambda x, y: [x * y, jnp.sum(x)])


def test_nothing_is_saved_while_jax_persistent_cache_is_on(cache):
    assert executables._jax_cache_configured()  # conftest turns it on
    args = [jnp.ones((2, 2)), jnp.ones((2, 2))]
    exe = executables.compiled("prog", _program(), args, "")
    assert executables.compiled("prog", _program(), args, "") is exe  # in memory
    assert not list(cache.iterdir())
    wide = executables.compiled("prog", _program(), args, "", {"xla_cpu_prefer_vector_width": 512})
    assert wide is not exe  # XLA options are part of the key
    np.testing.assert_array_equal(wide(*args)[0], exe(*args)[0])


def test_an_unreadable_file_is_compiled_again(cache, monkeypatch):
    monkeypatch.setattr(executables, "_jax_cache_configured", lambda: False)
    path = cache / "x.xla"
    monkeypatch.setattr(executables, "_save", lambda p, exe, key: path.write_bytes(b"truncated"))
    args = [jnp.ones((2, 2)), jnp.ones((2, 2))]
    executables.compiled("prog", _program(), args, "")
    (written,) = cache.iterdir()
    written.rename(cache / f"prog-{executables._signature(args)}-"
                   f"{executables._fingerprint('', bool(jax.config.jax_enable_x64))}.xla")
    monkeypatch.setattr(executables, "_MEMORY", {})
    got = executables.compiled("prog", _program(), args, "")
    np.testing.assert_array_equal(got(*args)[0], np.ones((2, 2)))


def test_a_cache_that_cannot_be_written_warns_and_still_computes(tmp_path, monkeypatch):
    monkeypatch.setattr(executables, "_MEMORY", {})
    monkeypatch.setattr(executables, "_jax_cache_configured", lambda: False)
    blocker = tmp_path / "file"
    blocker.write_text("")
    executables.set_cache_dir(blocker / "metrics")  # a path below a file: mkdir fails
    try:
        with pytest.warns(UserWarning, match="cannot keep the compiled program"):
            exe = executables.compiled("prog", _program(), [jnp.ones(3), jnp.ones(3)], "")
    finally:
        executables.set_cache_dir(None)
    np.testing.assert_array_equal(exe(jnp.ones(3), jnp.ones(3))[0], np.ones(3))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
