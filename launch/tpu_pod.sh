#!/usr/bin/env bash
# Train on a Cloud TPU pod slice: the same command on every worker; JAX finds the pod itself.
#   launch/tpu_pod.sh my-tpu us-central2-b configs/siba.py gs://bucket/runs/siba
set -euo pipefail
tpu=${1:?TPU name}; zone=${2:?zone}; config=${3:?config}; workdir=${4:?workdir (gs:// or shared)}; shift 4
gcloud compute tpus tpu-vm ssh "$tpu" --zone "$zone" --worker=all --command \
  "cd jaxfuse && python -m jaxfuse.train --config $config --workdir $workdir --config.distributed=on $*"
