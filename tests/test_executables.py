"""jaxfuse.executables: compiled once per program and shape, reloaded from disk without tracing."""

import os
import stat

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxfuse import executables


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setattr(executables, "_MEMORY", {})
    executables.set_cache_dir(tmp_path)
    yield tmp_path
    executables.set_cache_dir(None)


def _program():
    return jax.jit(lambda x, y: [x * y, jnp.sum(x)])


def test_a_new_process_loads_the_executable_without_tracing(cache, monkeypatch):
    args = [jnp.arange(6.0).reshape(2, 3), jnp.full((2, 3), 2.0)]
    first = executables.compiled("prog", _program(), args, "v1")
    assert executables.compiled("prog", _program(), args, "v1") is first  # in memory
    (path,) = cache.iterdir()
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~_umask()

    monkeypatch.setattr(executables, "_MEMORY", {})  # as a new process sees it
    untraceable = _program()
    monkeypatch.setattr(untraceable, "lower", lambda *a: pytest.fail("traced again"), raising=False)
    loaded = executables.compiled("prog", untraceable, args, "v1")
    for got, want in zip(loaded(*args), first(*args)):
        np.testing.assert_array_equal(got, want)

    executables.compiled("prog", _program(), [a[:1] for a in args], "v1")  # another shape
    executables.compiled("prog", _program(), args, "v2")  # changed source: replaces v1's file
    assert len(list(cache.iterdir())) == 2 and path not in list(cache.iterdir())


def test_an_unreadable_file_is_compiled_again_and_replaced(cache, monkeypatch):
    args = [jnp.ones((2, 2)), jnp.ones((2, 2))]
    executables.compiled("prog", _program(), args, "")
    (path,) = cache.iterdir()
    path.write_bytes(b"truncated")
    monkeypatch.setattr(executables, "_MEMORY", {})
    got = executables.compiled("prog", _program(), args, "")
    np.testing.assert_array_equal(got(*args)[0], np.ones((2, 2)))
    assert path.stat().st_size > 1000 and not [p for p in cache.iterdir() if p != path]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
