"""An embedded synthetic infrared-visible pair generator, so training runs with no dataset.

Each pair is a pure function of (seed, index): a textured, colourful daytime-like scene for
the visible image (sinusoid gratings, rectangles, edges), dimmed to a random low-light level
with sensor noise, and an infrared image of the same geometry where a few "hot objects"
(blurred ellipses) glow above a smooth cool background. Visible detail is absent from the
infrared image and hot objects are faint in the visible one, so a good fusion needs both.
"""

import numpy as np


class SyntheticPairs:
    """Random-access source of ``num_pairs`` synthetic pairs of ``height`` x ``width``."""

    yields = "pairs"

    def __init__(self, num_pairs: int = 64, height: int = 160, width: int = 160, seed: int = 0):
        self.num_pairs, self.height, self.width, self.seed = num_pairs, height, width, seed

    def __len__(self) -> int:
        return self.num_pairs

    def __repr__(self) -> str:
        return f"SyntheticPairs({self.num_pairs}, {self.height}x{self.width}, seed={self.seed})"

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng([self.seed, int(index) % self.num_pairs])
        h, w = self.height, self.width
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        vi = _texture(rng, yy, xx)
        ir = 0.25 + 0.1 * np.sin(yy / h * np.pi * rng.uniform(0.5, 2)) * np.cos(xx / w * np.pi)
        for _ in range(rng.integers(2, 6)):
            cy, cx = rng.uniform(0, h), rng.uniform(0, w)
            ry, rx = rng.uniform(4, h / 5), rng.uniform(4, w / 5)
            blob = np.exp(-(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2) ** 2)
            heat = rng.uniform(0.4, 0.75)
            ir = ir + heat * blob
            vi = vi * (1 - 0.3 * blob[..., None]) + 0.05 * blob[..., None]  # faint in visible
        vi = vi * rng.uniform(0.25, 1.0)  # low light
        ir = ir + rng.normal(0, 0.01, ir.shape)
        vi = vi + rng.normal(0, 0.02, vi.shape)
        return {"ir": _u8(ir)[..., None], "vi": _u8(vi), "name": f"synthetic_{index:06d}.png"}


def _texture(rng, yy, xx):
    h, w = yy.shape
    img = np.zeros((h, w, 3), np.float32) + rng.uniform(0.2, 0.5, 3)
    for _ in range(3):  # gratings
        f, th = rng.uniform(0.05, 0.5), rng.uniform(0, np.pi)
        g = 0.5 + 0.5 * np.sin(f * (xx * np.cos(th) + yy * np.sin(th)) + rng.uniform(0, 6.3))
        img += 0.15 * g[..., None] * rng.uniform(0.2, 1, 3)
    for _ in range(rng.integers(3, 8)):  # rectangles with sharp edges
        y0, x0 = rng.integers(0, h), rng.integers(0, w)
        y1, x1 = y0 + rng.integers(4, h // 2), x0 + rng.integers(4, w // 2)
        img[y0:y1, x0:x1] = rng.uniform(0, 1, 3)
    return img


def _u8(x):
    return np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)
