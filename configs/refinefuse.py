"""RefineFuse training config: the paper's MSRS recipe (Sec. 4.1.2) by default.

    # the recipe: MSRS train with its segmentation labels (python -m jaxfuse.data.prepare --dataset msrs ...)
    python -m jaxfuse.train --config configs/refinefuse.py --workdir runs/refinefuse
    # a sanity run on the 4 local MSRS train pairs, salient masks from their YOLO boxes
    python -m jaxfuse.train --config configs/refinefuse.py:local --workdir runs/rf_local
    # the embedded synthetic pairs, tiny network, contrast-only masks: well under a minute on a CPU
    python -m jaxfuse.train --config configs/refinefuse.py:smoke --workdir /tmp/rf_smoke
    # an ablation row (Tables 8-10), e.g. Table 9 row V (no FIM)
    python -m jaxfuse.train --config configs/refinefuse.py:t9_V --workdir runs/rf_t9_V

Default: 256 x 256 random crops of MSRS train (1083 pairs) with flips and rot90, batch 8, 300
epochs (135 steps each), SGD lr 1e-3 with PSFusion's momentum 0.9, weight decay 5e-4, 1000-step
exponential warm-up from 1e-5 and poly(0.9) decay (choice C12), L = 5 L_int + L_text with the
masks of Eq. 6 (salient classes car, person, bike of the segmentation labels, choice C9).
Every open choice (C1-C12) is a field below; docs/refinefuse.md gives each one's evidence.

Presets (``:a,b`` combines them, applied in order): ``tiny`` (widths 8/8/8/16, 32-px grids),
``synthetic`` (the embedded pairs, no salient source), ``smoke`` (synthetic + tiny at 32 x 32,
10 steps, Adam), ``local`` (../shared/data/msrs_train, YOLO boxes), ``t8_A``/``t8_B``/``t8_C``
(loss ablations), ``t9_I``..``t9_V`` (module ablations), ``t10_A``/``t10_B`` (3 and 5 levels).
"""

import ml_collections

SHARED_MSRS_TRAIN = "../shared/data/msrs_train"


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.model_name = "refinefuse"
    c.stage = "fusion"
    c.init_from = ""
    c.freeze = ()
    c.dtype = "float32"
    c.seed = 0
    c.distributed = "auto"

    c.model = ml_collections.ConfigDict(dict(
        widths=(64, 64, 64, 128, 128),  # C1: levels take the first len(level_modules) widths
        level_modules=("sfim", "sfim", "psim", "psim"),  # one per level: sfim | psim | concat
        use_sfim=True, use_psim=True, use_fim=True,  # Table 9 switches
        sfim_residual=True,  # C3: E (+) E (x) W
        sfim_fast=True,  # Eq. 2 as two depthwise convs (same numbers as the grouped conv)
        psim_variant="paper",  # C5: paper | gefm
        psim_resample="grid",  # C4: grid | ratio | none
        psim_grid=(256, 128, 64, 32, 16),  # token grid side per level: the 256 patch / 2^(l-1)
        psim_ratio=(1, 2, 4, 8, 16),
        psim_heads=1, psim_scaled=False, psim_max_attention_gb=4.0,
        fim_spatial=False,  # C6
        skip="concat",  # C7: concat | add
        align_corners=False,  # bilinear resampling convention
        output="unit",  # C8: (tanh + 1) / 2 | tanh
    ))
    c.loss = ml_collections.ConfigDict(dict(
        intensity="mask",  # mask (Eq. 6-7) | plain (Eq. 10, Table 8 A) | max (Eq. 11, B)
        lambda_int=5.0, texture_weight=1.0,  # Eq. 9; texture_weight 0 is Table 8 C
        norm="l1",  # C10: l1 | l2 | psfusion_local_mse
        texture="direction",  # C11: direction (PSFusion, Sx and Sy apart) | sum (|Sx| + |Sy|)
        contrast="variance",  # variance (Gaussian 9x9, PSFusion) | literal ((x - box9 x)^2)
        tie_eps=1e-7,  # contrast differences within this are ties, won by visible
        salient_classes=(1, 2, 3),  # C9: MSRS car, person, bike; or "nonzero"
    ))
    c.data = ml_collections.ConfigDict(dict(
        source="tfds:msrs", split="train", data_dir="",
        salient_source="labels",  # labels | masks | boxes | none
        patch_size=256, crop_margin=0, flips=True, rot90=True,
        num_workers=2, synthetic_pairs=64, synthetic_size=160))
    c.train = ml_collections.ConfigDict(dict(
        batch_size=8, epochs=300, num_steps=0,
        optimizer="sgd", learning_rate=1e-3, momentum=0.9, weight_decay=5e-4,  # C12
        warmup_steps=1000, warmup_start_lr=1e-5, poly_power=0.9,
        lr_decay_every_epochs=10_000, lr_decay=1.0, min_learning_rate=1e-3,  # the Adam path's StepLR
        clip_grad_norm=0.0,
        log_every=50, checkpoint_every=2000, keep_checkpoints=3, image_every=2000))
    c.bench = ml_collections.ConfigDict(dict(
        train_size=256, train_batch=8, infer_sizes=((480, 640), (768, 1024)),
        count_sizes=((256, 256), (512, 512), (480, 640), (768, 1024)),
        # Table 11 (RTX 4090, PyTorch; "FLOPs" are thop conv MACs) and Table 10's ms/img.
        paper=dict(params=2.21e6, conv_macs_256x256=12.73e9, conv_macs_512x512=48.11e9,
                   ms_per_image_480x640=6.63, ms_per_image_768x1024=9.12)))

    for preset in filter(None, (arg or "").split(",")):
        if preset not in _PRESETS:
            raise ValueError(f"unknown preset {preset!r} for configs/refinefuse.py; presets: {sorted(_PRESETS)}")
        _PRESETS[preset](c)
    return c


def _set_patch(c, patch: int):
    """A new training patch, with PSIM's token grids kept at its level sizes (grid mode)."""
    c.data.patch_size = patch
    c.model.psim_grid = tuple(max(1, patch // 2 ** level) for level in range(5))


def _tiny(c):
    c.model.widths = (8, 8, 8, 16, 16)
    _set_patch(c, 32)


def _synthetic(c):
    c.data.update(source="synthetic", salient_source="none")


def _smoke(c):
    _synthetic(c)
    _tiny(c)
    c.data.update(synthetic_size=40, synthetic_pairs=16, num_workers=0)
    c.train.update(batch_size=4, num_steps=10, log_every=5, checkpoint_every=10, image_every=10,
                   optimizer="adam", learning_rate=1e-3, min_learning_rate=1e-3, weight_decay=0.0)


def _local(c):
    c.data.update(source=f"folder:{SHARED_MSRS_TRAIN}", salient_source="boxes", num_workers=0)
    c.train.update(num_steps=2000, warmup_steps=100, batch_size=4)


def _t8_a(c):
    """Table 8 A: the conventional intensity loss (Eq. 10)."""
    c.loss.intensity = "plain"


def _t8_b(c):
    """Table 8 B: the max intensity loss (Eq. 11)."""
    c.loss.intensity = "max"


def _t8_c(c):
    """Table 8 C: no texture loss."""
    c.loss.texture_weight = 0.0


def _t9_i(c):
    """Table 9 I: one level, concatenation + conv."""
    c.model.level_modules = ("concat",)


def _t9_ii(c):
    """Table 9 II: one level, SFIM."""
    c.model.level_modules = ("sfim",)


def _t9_iii(c):
    """Table 9 III: two levels, SFIM then concatenation ("without the PSIM module": our reading;
    SFIM on both levels fits the text as well)."""
    c.model.level_modules = ("sfim", "concat")


def _t9_iv(c):
    """Table 9 IV: two levels, SFIM then PSIM; level 2's token grid is patch / 2 (a choice)."""
    c.model.level_modules = ("sfim", "psim")


def _t9_v(c):
    """Table 9 V: the four levels without FIM (F_2 joins by concatenation)."""
    c.model.use_fim = False


def _t10_a(c):
    """Table 10, 3 levels (1, 1/2, 1/4): SFIM, SFIM, PSIM."""
    c.model.level_modules = ("sfim", "sfim", "psim")


def _t10_b(c):
    """Table 10, 5 levels (to 1/16): SFIM, SFIM, PSIM x 3; level 5's grid patch / 16 (a choice)."""
    c.model.level_modules = ("sfim", "sfim", "psim", "psim", "psim")


_PRESETS = {"tiny": _tiny, "synthetic": _synthetic, "smoke": _smoke, "local": _local,
            "t8_A": _t8_a, "t8_B": _t8_b, "t8_C": _t8_c,
            "t9_I": _t9_i, "t9_II": _t9_ii, "t9_III": _t9_iii, "t9_IV": _t9_iv, "t9_V": _t9_v,
            "t10_A": _t10_a, "t10_B": _t10_b}
