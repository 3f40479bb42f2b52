"""CrossFuse training config: the official code's recipe (hli1221/CrossFuse), stage 2 by default.

    # stage 1: both auto-encoders (KAIST lwir / visible frames resized to 256x256)
    python -m jaxfuse.train --config configs/crossfuse.py:autoencoder --workdir runs/cf_ae
    # stage 2: the cross-attention mechanism + decoder, auto-encoders frozen
    python -m jaxfuse.train --config configs/crossfuse.py --workdir runs/cf --config.init_from=runs/cf_ae
    # the same two stages on the embedded synthetic pairs, each well under a minute on a CPU
    python -m jaxfuse.train --config configs/crossfuse.py:autoencoder,smoke --workdir A
    python -m jaxfuse.train --config configs/crossfuse.py:smoke --workdir B --config.init_from=A

Presets (``:a,b`` combines them, applied in order): ``autoencoder`` is stage 1 (40,001 images,
batch 2, Adam 1e-4 with coupled weight decay 0.9, x0.1 once from epoch 3, 4 epochs); the
default is stage 2 (20,001 pairs, batch 8, Adam 1e-3, weight decay 0.9, x0.1 once from epoch 3,
32 epochs); ``paper`` is stage 2 with the paper's schedule (Sec. 4.1: 8 epochs, lr 1e-2, x0.1
every 2 epochs) where it differs from the code; ``tiny`` shrinks the network (4/8/16 channels,
2 heads, 4x4 tiles); ``synthetic`` switches to the embedded synthetic pairs; ``smoke`` is
``synthetic`` + ``tiny`` at 48x48 for 20 steps.
"""

import ml_collections

from jaxfuse import configs


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.model_name = "crossfuse"
    c.stage = "fusion"  # autoencoder | fusion
    c.init_from = ""  # the stage-1 checkpoint (workdir, checkpoints dir or step dir)
    c.freeze = ()
    c.dtype = "float32"
    c.seed = 0
    c.distributed = "auto"

    c.model = ml_collections.ConfigDict(dict(
        shallow=32, growth=64, deep=128, dense_layers=3, tile=32, patch=2, heads=16, mlp_ratio=4.0,
        self_depth=1, self_attention="mhsa", cross_attention="resoftmax"))
    # (MSE, 1 - MS-SSIM) for stage 1; (pixel, gradient) for stage 2; all on the 0-255 scale.
    c.loss = ml_collections.ConfigDict(dict(autoencoder=(1.0, 1e4), fusion=(1.0, 10.0)))

    c.data = ml_collections.ConfigDict(dict(
        source="tfds:kaist", split="train", data_dir="",
        resize=256,  # whole frames resized (OpenCV bilinear) to 256x256; 0: random patches instead
        num_pairs=20001,  # the first N pairs (the official lists keep the first train_num + 1 files)
        patch_size=256, crop_margin=0, flips=False, rot90=False,
        num_workers=2, synthetic_pairs=64, synthetic_size=160))

    c.train = ml_collections.ConfigDict(dict(
        batch_size=8, epochs=32, num_steps=0,
        learning_rate=1e-3, lr_decay_every_epochs=2, lr_decay=0.1, min_learning_rate=1e-4,
        weight_decay=0.9, clip_grad_norm=0.0,
        log_every=50, checkpoint_every=1000, keep_checkpoints=3, image_every=1000))

    c.bench = ml_collections.ConfigDict(dict(train_size=256, train_batch=8,
                                             infer_sizes=((256, 256), (480, 640), (768, 1024))))

    return configs.apply_presets(c, arg, _PRESETS, "configs/crossfuse.py")


def _autoencoder(c):
    c.stage = "autoencoder"
    c.data.num_pairs = 40001
    c.train.update(batch_size=2, epochs=4, learning_rate=1e-4, min_learning_rate=1e-5)


def _paper(c):
    c.train.update(epochs=8, learning_rate=1e-2, lr_decay_every_epochs=2, lr_decay=0.1, min_learning_rate=0.0)


def _synthetic(c):
    c.data.source = "synthetic"
    c.data.num_pairs = 0


def _tiny(c):
    c.model.update(shallow=4, growth=8, deep=16, tile=4, heads=2)


def _smoke(c):
    _synthetic(c)
    _tiny(c)
    c.data.update(resize=48, synthetic_size=48, synthetic_pairs=32, num_workers=0)
    c.train.update(batch_size=4, num_steps=20, log_every=5, checkpoint_every=10, image_every=10, learning_rate=1e-3)


_PRESETS = {"autoencoder": _autoencoder, "paper": _paper, "synthetic": _synthetic, "tiny": _tiny, "smoke": _smoke}
