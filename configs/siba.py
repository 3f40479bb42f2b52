"""SIBA training config (ICCV 2025 official recipe by default).

    python -m jaxfuse.train --config configs/siba.py --workdir runs/siba \
        --config.data.source=folder:/data/MSRS/train          # official recipe on your data
    python -m jaxfuse.train --config configs/siba.py:smoke --workdir /tmp/jaxfuse-smoke
    python -m jaxfuse.train --config configs/siba.py:tiny --workdir /tmp/t   # unit-test size

Presets (``:a,b`` combines them): ``smoke`` trains a 16-channel SIBA for 30 steps on 48x48
synthetic patches (lr 1e-3, clip 1.0, so the loss visibly drops) in under a minute on a CPU;
``tiny`` only shrinks the network (16 channels, 2 heads); ``synthetic`` only switches the data
source. Any field can be overridden: ``--config.train.batch_size=8``.
"""

import ml_collections

from jaxfuse import configs


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.model_name = "siba"
    c.stage = "fusion"
    c.init_from = ""  # checkpoint (workdir, checkpoints dir or step dir) to start from
    c.freeze = ()  # extra frozen-parameter regexes on top of the stage's own
    c.dtype = "float32"  # compute dtype (params stay float32): float32 | bfloat16
    c.seed = 0
    c.distributed = "auto"  # jax.distributed.initialize(): auto | on | off

    c.model = ml_collections.ConfigDict(dict(
        features=48, heads=8, sa_depth=1, ca_depth=1, ffn_expansion=1.0,
        self_attention="mdta", cross_attention="source"))
    c.loss = ml_collections.ConfigDict(dict(weights=(10.0, 0.1, 1.0)))  # Laplacian, intensity, Sobel

    c.data = ml_collections.ConfigDict(dict(
        source="tfds:msrs",  # synthetic | folder:PATH (with ir/ vi/) | folder:IR,VI | tfds:NAME
        split="train", data_dir="",  # TFDS only
        patch_size=128, crop_margin=10, flips=False, rot90=False,
        num_workers=2, synthetic_pairs=64, synthetic_size=160))

    c.train = ml_collections.ConfigDict(dict(
        batch_size=4, epochs=60, num_steps=0,  # num_steps > 0 overrides epochs
        learning_rate=1e-4, lr_decay_every_epochs=25, lr_decay=0.5, min_learning_rate=1e-6,
        weight_decay=0.0, clip_grad_norm=0.01,
        log_every=50, checkpoint_every=1000, keep_checkpoints=3, image_every=1000))

    # python -m jaxfuse.bench: the official training crop and batch, and the test-script sizes.
    c.bench = ml_collections.ConfigDict(dict(train_size=128, train_batch=4, infer_sizes=((128, 128), (480, 640))))
    return configs.apply_presets(c, arg, _PRESETS, "configs/siba.py")


def _synthetic(c):
    c.data.source = "synthetic"


def _smoke(c):
    _synthetic(c)
    _tiny(c)
    c.data.patch_size, c.data.synthetic_size, c.data.num_workers = 48, 64, 0
    c.train.num_steps, c.train.log_every, c.train.checkpoint_every, c.train.image_every = 30, 10, 15, 15
    c.train.learning_rate, c.train.clip_grad_norm = 1e-3, 1.0


def _tiny(c):
    c.model.features, c.model.heads = 16, 2


_PRESETS = {"smoke": _smoke, "tiny": _tiny, "synthetic": _synthetic}
