#!/usr/bin/env bash
# Train on this machine: all local devices (GPUs, or CPU cores as fake devices with N_CPU_DEVICES).
#   launch/local.sh configs/siba.py runs/siba --config.data.source=folder:/data/MSRS/train
set -euo pipefail
config=${1:?config, e.g. configs/siba.py}; workdir=${2:?workdir}; shift 2
if [ -n "${N_CPU_DEVICES:-}" ]; then
  export XLA_FLAGS="--xla_force_host_platform_device_count=${N_CPU_DEVICES} ${XLA_FLAGS:-}"
fi
exec python -m jaxfuse.train --config "$config" --workdir "$workdir" "$@"
