"""The Grain training pipeline: shuffle -> repeat -> crop/augment -> batch -> per-process slice.

Elements are random 128x128 (``patch``) crops at the same box in ir and vi, reduced to one
channel in [0, 1] (infrared: grey; visible: the float Y of ``color.rgb_to_ycbcr``). Crops,
flips and rotations draw from a per-element RNG that Grain derives from (seed, epoch, index),
so batches do not depend on the number of worker processes, and the iterator state (saved in
every checkpoint) makes a resumed run see exactly the batches an uninterrupted run sees. The
per-process split comes last, so the global batch (crops included) does not depend on the
number of JAX processes either.
"""

from __future__ import annotations

import dataclasses

import grain
import numpy as np

from jaxfuse.data import color, images


def _to_luma_pair(ir, vi) -> dict:
    return {"ir": color.luma(np.ascontiguousarray(ir)), "vi": color.luma(np.ascontiguousarray(vi))}


def _gray_ir(ir):
    return images.rgb_to_gray_uint8(ir) if ir.shape[-1] == 3 else ir


@dataclasses.dataclass(frozen=True)
class ResizePair(grain.transforms.Map):
    """Both images resized to ``size`` x ``size`` with OpenCV's bilinear (``cv2.resize``, no
    antialiasing), as CrossFuse's loaders do; no crop, no augmentation."""

    size: int = 256

    def map(self, element):
        import cv2  # noqa: PLC0415 - only the resize recipes need OpenCV

        def resize(x):
            y = cv2.resize(x, (self.size, self.size), interpolation=cv2.INTER_LINEAR)
            return y.reshape(self.size, self.size, x.shape[-1])

        return _to_luma_pair(resize(_gray_ir(element["ir"])), resize(element["vi"]))


@dataclasses.dataclass(frozen=True)
class RandomPatch(grain.transforms.RandomMap):
    """One random ``patch`` x ``patch`` crop per pair, ``margin`` pixels from the border.

    The official SIBA loader draws the top-left corner in [10, H - 10 - 128] (margin 10); a
    smaller image uses whatever margin still fits, and one smaller than the patch is an error.
    ``planes`` names extra (H, W, 1) uint8 planes of the element (a label or salient mask) that
    get the same crop, flips and rotation as the pair and come out unchanged in value.
    """

    patch: int = 128
    margin: int = 10
    flips: bool = False
    rot90: bool = False
    pad_small: bool = False  # reflect-pad a pair smaller than the patch instead of failing
    planes: tuple[str, ...] = ()

    def random_map(self, element, rng: np.random.Generator):
        p = self.patch
        ir = _gray_ir(element["ir"])
        stack = [ir, element["vi"]] + [np.asarray(element[k]).reshape(ir.shape[:2] + (1,)) for k in self.planes]
        h, w = ir.shape[:2]
        if self.pad_small and (h < p or w < p):
            stack = [_pad_to(x, p) for x in stack]
            h, w = stack[0].shape[:2]
        if h < p or w < p:
            raise images.ImageError(f"pair {element.get('name', '?')}: {w}x{h} (W x H) is smaller "
                                    f"than the {p}x{p} training patch")
        my, mx = min(self.margin, (h - p) // 2), min(self.margin, (w - p) // 2)
        y0 = int(rng.integers(my, h - my - p + 1))
        x0 = int(rng.integers(mx, w - mx - p + 1))
        stack = [x[y0:y0 + p, x0:x0 + p] for x in stack]
        if self.flips and rng.random() < 0.5:
            stack = [x[:, ::-1] for x in stack]
        if self.flips and rng.random() < 0.5:
            stack = [x[::-1] for x in stack]
        if self.rot90:
            k = int(rng.integers(4))
            stack = [np.rot90(x, k) for x in stack]
        return {**_to_luma_pair(*stack[:2]), **{k: np.ascontiguousarray(x) for k, x in zip(self.planes, stack[2:])}}


def _pad_to(x, size: int):
    """Reflect-pads bottom/right so that both sides are at least ``size``."""
    h, w = x.shape[:2]
    return np.pad(x, ((0, max(0, size - h)), (0, max(0, size - w)), (0, 0)), mode="reflect")


@dataclasses.dataclass(frozen=True)
class RandomImageCrop(grain.transforms.RandomMap):
    """Single images for a denoiser (the SR3 / ddpm-cd transform): a short side below ``size`` is
    resized up to it (OpenCV bilinear), then a random ``size`` x ``size`` crop and a random
    horizontal flip; RGB in [0, 1] (grey replicated to 3 channels)."""

    size: int = 256
    flips: bool = True

    def random_map(self, element, rng: np.random.Generator):
        img, s = element["image"], self.size
        h, w = img.shape[:2]
        if min(h, w) < s:
            import cv2  # noqa: PLC0415

            scale = s / min(h, w)
            nh, nw = max(s, round(h * scale)), max(s, round(w * scale))
            img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR).reshape(nh, nw, img.shape[-1])
            h, w = nh, nw
        y0, x0 = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
        img = img[y0:y0 + s, x0:x0 + s]
        if self.flips and rng.random() < 0.5:
            img = img[:, ::-1]
        img = np.ascontiguousarray(img).astype(np.float32) / np.float32(255.0)
        return {"image": np.broadcast_to(img, (s, s, 3)).copy()}


def train_dataset(source, *, batch_size: int, patch: int, margin: int = 10, flips: bool = False,
                  rot90: bool = False, resize: int = 0, pad_small: bool = False, seed: int = 0,
                  process_index: int = 0, process_count: int = 1, num_workers: int = 0) -> grain.IterDataset:
    """An endless, shuffled, per-process dataset of ``batch_size`` (global) patch batches.

    ``resize`` > 0 resizes whole pairs to ``resize`` x ``resize`` instead of cropping patches.
    The planes a source names in its ``planes`` (salient labels or masks) are cropped with the pair.
    A source of single images (``source.yields == "images"``) gets ``RandomImageCrop(patch)``.

    Each process returns its ``batch_size // process_count`` share: global batch n is local
    batches n * process_count .. + process_count - 1 of one stream, one per process, in process
    order, so it is the same for any process count. ``num_workers`` > 0 decodes in that many
    worker processes.
    """
    if batch_size % process_count:
        raise ValueError(f"batch size {batch_size} is not divisible by {process_count} processes")
    local_batch = batch_size // process_count
    planes = tuple(getattr(source, "planes", ()))
    if planes and resize:
        raise ValueError(f"{source!r} carries {planes} planes, which the whole-image resize recipe does not support")
    if len(source) // process_count < 1:
        raise ValueError(f"{source!r} has {len(source)} pairs, fewer than the {process_count} processes")
    # Crops draw from the element's global index: augment before splitting between processes.
    ds = grain.MapDataset.source(source).seed(seed).shuffle().repeat()
    if getattr(source, "yields", "pairs") == "images":
        ds = ds.random_map(RandomImageCrop(patch, flips))
    elif resize:
        ds = ds.map(ResizePair(resize))
    else:
        ds = ds.random_map(RandomPatch(patch, margin, flips, rot90, pad_small, planes))
    ds = ds.batch(local_batch, drop_remainder=True)
    ds = ds[process_index::process_count]
    ds = ds.to_iter_dataset()
    if num_workers > 0:
        ds = ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=num_workers))
    return ds
