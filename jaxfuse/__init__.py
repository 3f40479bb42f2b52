"""jaxfuse: infrared-visible image fusion networks in JAX/Flax.

XLA:CPU defaults are set here, before JAX starts, in one place (figures and the levers that did
not help: docs/speed.md): no YNNPACK fusions (this jaxlib hands every convolution to YNNPACK by
default, which runs the 3x3 convolutions at 12-80 GMAC/s against 90-150 for XLA's own; CrossFuse
inference 256x256 0.54 -> 0.30 s, its train step 8.3 -> 4.6 s, DMFuse 256x256 4.7 -> 3.6 s on the
2-core CPU) and oneDNN custom calls for the matmuls. Every parity test passes with them.
``JAXFUSE_XLA_DEFAULTS=0`` leaves ``XLA_FLAGS`` as it is.
"""

import os

_CPU_FLAGS = ("--xla_cpu_experimental_ynn_fusion_type=", "--xla_cpu_experimental_onednn_custom_call=true")

if os.environ.get("JAXFUSE_XLA_DEFAULTS", "1") != "0":
    _flags = os.environ.get("XLA_FLAGS", "")
    _missing = [f for f in _CPU_FLAGS if f.split("=")[0] not in _flags]
    if _missing:
        os.environ["XLA_FLAGS"] = " ".join([_flags, *_missing]).strip()
