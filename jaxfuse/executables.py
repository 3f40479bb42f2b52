"""Compiled XLA executables, kept in memory and (optionally) on disk, one per program and shape.

JAX's persistent compilation cache skips XLA compilation in a new process but still traces and
lowers every program to compute its key: for the 12 CDDFuse metrics on two canvas shapes that
was ~1 s of a 5 s evaluate run. :func:`compiled` keys an executable by the program's name, its
argument shapes and dtypes, and a fingerprint of everything that can change the code (jax and
jaxlib versions, backend and device kind, XLA flags, x64 mode, the host CPU's instruction set,
and a ``source`` token from the caller, e.g. a hash of the program's source files); a hit is a
deserialised executable, loaded in milliseconds with no tracing. A file that cannot be loaded
(truncated, another build) is compiled again and replaced, and saving an executable removes
those of other fingerprints for the same program and shape. Files are written to a temporary
name and renamed. Nothing is saved while JAX's persistent cache is on (see
``_jax_cache_configured``); files are still loaded then. Loading unpickles the file: point the
cache only at a directory you own.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import threading
import warnings
from pathlib import Path

import jax
import jaxlib
from jax.experimental import serialize_executable

from jaxfuse.data.images import atomic_write

_DIR: Path | None = None
_MEMORY: dict = {}
_LOCKS: dict = {}
_LOCK = threading.Lock()


def set_cache_dir(path: str | os.PathLike | None) -> None:
    """Directory for serialised executables (None or '': memory only)."""
    global _DIR
    _DIR = Path(path).expanduser() if path else None


def source_hash(*files: str | os.PathLike) -> str:
    """A short hash of the contents of ``files`` (for ``compiled``'s ``source``)."""
    h = hashlib.sha256()
    for f in sorted(map(str, files)):
        h.update(Path(f).read_bytes())
    return h.hexdigest()[:16]


def _cpu_flags() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""
    return next((ln for ln in text.splitlines() if ln.startswith("flags")), "")


@functools.cache
def _fingerprint(source: str, x64: bool) -> str:
    device = jax.devices()[0]
    parts = [jax.__version__, jaxlib.__version__, device.platform, device.client.platform_version,
             device.device_kind, os.environ.get("XLA_FLAGS", ""), str(x64), _cpu_flags(), source]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def _signature(args) -> str:
    return "_".join(f"{a.dtype}{'x'.join(map(str, a.shape))}" for a in args)


def compiled(name: str, jitted, args, source: str = "", options: dict | None = None):
    """The compiled ``jitted`` (a ``jax.jit`` function of positional arrays) for ``args``'
    shapes and dtypes, compiled (with XLA ``options``) at most once per process (thread-safe:
    other keys compile concurrently) and loaded from the cache directory when it has it."""
    options = dict(sorted((options or {}).items()))
    token = f"{source}{options}" if options else source
    key = (name, _signature(args), _fingerprint(token, bool(jax.config.jax_enable_x64)))
    with _LOCK:
        if key in _MEMORY:
            return _MEMORY[key]
        lock = _LOCKS.setdefault(key, threading.Lock())
    with lock:
        if key not in _MEMORY:
            _MEMORY[key] = _load_or_compile(key, jitted, args, options)
    return _MEMORY[key]


def _load_or_compile(key, jitted, args, options):
    path = _DIR / f"{key[0]}-{key[1]}-{key[2]}.xla" if _DIR is not None else None
    in_tree = jax.tree_util.tree_structure((tuple(args), {}))
    if path is not None and path.is_file():
        try:
            blob, out_tree = pickle.loads(path.read_bytes())
            return serialize_executable.deserialize_and_load(
                blob, in_tree, out_tree, execution_devices=jax.devices()[:1])
        except Exception:  # noqa: BLE001 -- unreadable or stale: compile it again below
            pass
    exe = jitted.lower(*args).compile(compiler_options=options or None)
    if path is not None and not _jax_cache_configured():
        try:
            _save(path, exe, key)
        except OSError as e:  # a read-only or full disk costs the next run a compile, no more
            warnings.warn(f"{path}: cannot keep the compiled program ({e}); continuing without",
                          stacklevel=3)
    return exe


def _jax_cache_configured() -> bool:
    """Whether JAX's persistent compilation cache is on in this process. Executables are then
    not saved: in jaxlib 0.10.2, once that cache has loaded a program with a kernel of the same
    name (``wrapped_multiply``, ...), an executable compiled here serialises without that
    kernel, and a later process fails to run it ("Function ... not found")."""
    return bool(jax.config.jax_enable_compilation_cache and jax.config.jax_compilation_cache_dir)


def _save(path: Path, exe, key) -> None:
    blob, _, out_tree = serialize_executable.serialize(exe)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(pickle.dumps((blob, out_tree))))
    for stale in path.parent.glob(f"{key[0]}-{key[1]}-*.xla"):  # other builds / sources
        if stale != path:
            stale.unlink(missing_ok=True)
