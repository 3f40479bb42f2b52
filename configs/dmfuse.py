"""DMFuse training config: the official fusion stage by default, the DDPM stage as ``:ddpm``.

    # stage 1: the SR3 UNet as a denoiser on natural images (COCO; python -m jaxfuse.data.prepare
    # --dataset natural_images/original ...), random 256 crops + flips, batch 8, Adam 1e-5
    python -m jaxfuse.train --config configs/dmfuse.py:ddpm --workdir runs/dm_ddpm
    # stage 2: the fusion head on TNO 256 crops, the UNet frozen
    python -m jaxfuse.train --config configs/dmfuse.py --workdir runs/dm --config.init_from=runs/dm_ddpm
    # the same two stages on the embedded synthetic data (tiny UNet), each well under a minute
    python -m jaxfuse.train --config configs/dmfuse.py:ddpm,smoke --workdir A
    python -m jaxfuse.train --config configs/dmfuse.py:smoke --workdir B --config.init_from=A

Stage ``fusion`` (default): the official ``train.py`` recipe (Adam 1e-5, batch 4, 256 x 256,
loss 10 (1 - SSIM) + 16 texture + 14 intensity) on random 256 crops of the TNO pairs for
75,248 steps (= the paper's 16 epochs of 18,813 patches at batch 4; the official code cut fixed
patches with stride 12, and which TNO images it used is not stated). TNO pairs smaller than
256 (e.g. 359 x 247) are reflect-padded to the crop and logged. Stage ``ddpm`` (``:ddpm``): the
repository's DDPM objective (one t per batch, gamma per sample, MSE of the noise, dropout 0.2),
Adam 1e-5, 1e6 steps, checkpoint every 1e4, with ddpm-cd's batch 8 and random 256 crop + flip on
RGB images (the paper used MS-COCO, "more than 80000 images": train2014). ``:paper_loss`` uses
the paper's loss (1 (1 - SSIM) + 4 intensity + 20 gradient, SSIM weights 0.5/0.5, intensity
target the mean of the sources). ``:tiny`` shrinks the UNet (8 channels, 4 groups, one
ResnetBlock per level) and the head; ``:smoke`` = synthetic data + tiny at 32 x 32, 10 steps.
"""

import ml_collections

from jaxfuse import configs


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.model_name = "dmfuse"
    c.stage = "fusion"  # ddpm | fusion
    c.init_from = ""  # the ddpm-stage (or converted) checkpoint
    c.freeze = ()
    c.dtype = "float32"
    c.seed = 0
    c.distributed = "auto"

    c.model = ml_collections.ConfigDict(dict(
        inner_channel=32, channel_mults=(1, 2, 4, 8, 8), res_blocks=2, attn_res=(16,), image_size=256,
        norm_groups=32, dropout=0.2, timesteps=(5, 50, 100), num_timesteps=2000, cosine_s=8e-3,
        head_features=32, cross_attention="criss_cross", row_chunk=64, pad_multiple=32, pad_value=1.0))
    # (1 - SSIM, texture, intensity); variant "code" (gradient-weighted SSIM, max targets) or "paper".
    c.loss = ml_collections.ConfigDict(dict(weights=(10.0, 16.0, 14.0), variant="code"))

    c.data = ml_collections.ConfigDict(dict(
        source="tfds:tno", split="train", data_dir="",
        patch_size=256, crop_margin=0, flips=False, rot90=False, pad_small=True,
        num_workers=2, synthetic_pairs=64, synthetic_size=160))

    c.train = ml_collections.ConfigDict(dict(
        batch_size=4, epochs=1, num_steps=75_248,
        learning_rate=1e-5, lr_decay_every_epochs=10_000, lr_decay=1.0, min_learning_rate=1e-5,
        weight_decay=0.0, clip_grad_norm=0.0,
        log_every=100, checkpoint_every=5000, keep_checkpoints=3, image_every=5000))

    c.bench = ml_collections.ConfigDict(dict(train_size=256, train_batch=4, train_stages=("ddpm",), stage_batch=8,
                                             infer_sizes=((256, 256), (576, 768), (480, 640))))

    return configs.apply_presets(c, arg, _PRESETS, "configs/dmfuse.py")


def _ddpm(c):
    c.stage = "ddpm"
    c.data.update(source="tfds:natural_images/original", flips=True)
    c.train.update(batch_size=8, num_steps=1_000_000, checkpoint_every=10_000, image_every=0)


def _paper_loss(c):
    c.loss.update(weights=(1.0, 20.0, 4.0), variant="paper")


def _tiny(c):
    c.model.update(inner_channel=8, norm_groups=4, res_blocks=1, head_features=8, row_chunk=0)


def _smoke(c):
    _tiny(c)
    c.data.update(source="synthetic", patch_size=32, synthetic_size=40, synthetic_pairs=16, num_workers=0)
    c.train.update(batch_size=2, num_steps=10, log_every=5, checkpoint_every=10, image_every=10, learning_rate=1e-3,
                   min_learning_rate=1e-3)  # a constant schedule: min == lr


_PRESETS = {"ddpm": _ddpm, "paper_loss": _paper_loss, "tiny": _tiny, "smoke": _smoke}
