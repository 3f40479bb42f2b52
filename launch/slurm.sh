#!/usr/bin/env bash
# Multi-host GPU training under SLURM: one process per node, all its GPUs.
# jax.distributed.initialize() auto-detects SLURM (config.distributed=auto).
#   sbatch --nodes=2 --gpus-per-node=8 launch/slurm.sh configs/siba.py /shared/runs/siba
#SBATCH --job-name=jaxfuse
#SBATCH --ntasks-per-node=1
#SBATCH --time=24:00:00
set -euo pipefail
config=${1:?config}; workdir=${2:?workdir (on a filesystem every node sees)}; shift 2
srun python -m jaxfuse.train --config "$config" --workdir "$workdir" --config.distributed=on "$@"
