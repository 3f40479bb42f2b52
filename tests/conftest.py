"""Test set-up: 4 fake CPU devices (set before JAX starts) and the ../shared fixtures.

Tests that need ../shared (golden tensors, real images) take the ``shared`` fixture: they skip
with a reason on a machine without it, and fail under ``CI=true``, where it must be present.
"""

import os
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Compiled programs are shared between tests and pytest-xdist workers.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", "/tmp/jaxfuse-test-jax-cache")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("JAXFUSE_SHARED", REPO.parent / "shared"))


def require_shared(*parts: str) -> Path:
    """Returns SHARED/parts, skipping (or failing under CI=true) if it is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        msg = f"{path} is missing (../shared holds the real data and golden tensors)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {msg}")
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def shared() -> Path:
    return require_shared()
