"""Shared fusion loss terms on NHWC single-channel images (SIBA Eq. 7-10 and relatives).

Filters are cross-correlations, as PyTorch/kornia apply them: a 3x3 Laplacian normalised by
its absolute sum with reflect padding (``kornia.filters.laplacian(x, 3)``) and Sobel with zero
padding (the official ``Sobelxy``).
"""

import jax
import jax.numpy as jnp
import numpy as np

LAPLACIAN_3x3 = np.array([[1, 1, 1], [1, -8, 1], [1, 1, 1]], np.float32) / 16.0
SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32)
SOBEL_Y = np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]], np.float32)


def filter3x3(x, kernel, mode: str = "constant"):
    """Cross-correlates every channel of NHWC ``x`` with a 3x3 ``kernel``, same-size output.

    ``mode`` is a ``jnp.pad`` mode: "constant" (zeros) or "reflect".
    """
    h, w = x.shape[1:3]
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode=mode)
    out = jnp.zeros_like(x)
    for i in range(3):
        for j in range(3):
            if kernel[i, j] != 0:
                out = out + float(kernel[i, j]) * xp[:, i:i + h, j:j + w, :]
    return out


def laplacian(x):
    """kornia ``laplacian(x, 3)``: [[1,1,1],[1,-8,1],[1,1,1]] / 16, reflect padding."""
    return filter3x3(x, LAPLACIAN_3x3, mode="reflect")


def sobel_magnitude(x):
    """|x * Kx| + |x * Ky| with zero padding (the official ``Sobelxy``)."""
    return jnp.abs(filter3x3(x, SOBEL_X)) + jnp.abs(filter3x3(x, SOBEL_Y))


def joint_laplacian_loss(fused, ir, vi):
    """SIBA Eq. 10: mean |J - Lap(fused)|, J = the signed Laplacian of larger magnitude."""
    lap_ir, lap_vi = laplacian(ir), laplacian(vi)
    joint = jnp.where(jnp.abs(lap_ir) - jnp.abs(lap_vi) >= 0, lap_ir, lap_vi)
    return jnp.mean(jnp.abs(joint - laplacian(fused)))


def max_intensity_loss(fused, ir, vi):
    """SIBA Eq. 7: mean |max(ir, vi) - fused|."""
    return jnp.mean(jnp.abs(jnp.maximum(vi, ir) - fused))


def sobel_gradient_loss(fused, ir, vi):
    """SIBA Eq. 9: mean |max(S(ir), S(vi)) - S(fused)|, S = Sobel magnitude."""
    return jnp.mean(jnp.abs(jnp.maximum(sobel_magnitude(vi), sobel_magnitude(ir)) - sobel_magnitude(fused)))


# ---- CrossFuse (network/loss.py and pytorch_msssim of the official code) ----
LAPLACIAN_4 = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float32)


def box_mean(x, size: int):
    """size x size mean with zero padding size // 2 (a ``Conv2d`` of 1/size^2 weights), same size.

    Separable sums of shifted slices (no cumulative sums: those lose float32 precision on
    0-255 images, and the pixel loss's mask compares two such means exactly).
    """
    p = size // 2
    h, w = x.shape[1:3]
    xp = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    rows = sum(xp[:, i:i + h] for i in range(size))
    return sum(rows[:, :, j:j + w] for j in range(size)) / (size * size)


def box_mask_pixel_loss(fused, ir, vi, size: int = 11):
    """CrossFuse ``Order_loss``: MSE to ir where its 11x11 mean dominates (strictly), else vi.

    w = s / (s_ir + s_vi + 1e-6) with s the box mean; mask = 1 where w_ir - w_vi > 0.
    """
    s_ir, s_vi = box_mean(ir, size), box_mean(vi, size)
    w_ir, w_vi = s_ir / (s_ir + s_vi + 1e-6), s_vi / (s_ir + s_vi + 1e-6)
    mask = (w_ir - w_vi > 0).astype(fused.dtype)
    target = mask * ir + (1 - mask) * vi
    return jnp.mean(jnp.square(fused - target))


def positive_laplacian_loss(fused, ir, vi):
    """CrossFuse ``Gradient_loss``: MSE(g(fused), max(g(ir), g(vi))), g = max(Lap4(.), 0), zero pad."""
    def g(x):
        return jnp.maximum(filter3x3(x, LAPLACIAN_4), 0.0)

    return jnp.mean(jnp.square(g(fused) - jnp.maximum(g(ir), g(vi))))


def _gaussian_window(size: int, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - size // 2
    g = np.exp(-x ** 2 / (2 * sigma ** 2)).astype(np.float32)
    g = g / g.sum()
    return np.outer(g, g).astype(np.float32)


def _valid_filter(x, window: np.ndarray):
    return jax.lax.conv_general_dilated(x, jnp.asarray(window)[:, :, None, None], (1, 1), "VALID",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _ssim_and_cs(img1, img2):
    """One level of pytorch_msssim.ssim: batch-global means, L inferred from ``img1``."""
    max_val = jnp.where(jnp.max(img1) > 128, 255.0, 1.0)
    min_val = jnp.where(jnp.min(img1) < -0.5, -1.0, 0.0)
    big_l = max_val - min_val
    window = _gaussian_window(min(11, img1.shape[1], img1.shape[2]))
    mu1, mu2 = _valid_filter(img1, window), _valid_filter(img2, window)
    s11 = _valid_filter(img1 * img1, window) - mu1 * mu1
    s22 = _valid_filter(img2 * img2, window) - mu2 * mu2
    s12 = _valid_filter(img1 * img2, window) - mu1 * mu2
    c1, c2 = (0.01 * big_l) ** 2, (0.03 * big_l) ** 2
    v1, v2 = 2.0 * s12 + c2, s11 + s22 + c2
    ssim_map = ((2 * mu1 * mu2 + c1) * v1) / ((mu1 * mu1 + mu2 * mu2 + c1) * v2)
    return jnp.mean(ssim_map), jnp.mean(v1 / v2)


def _avg_pool2(x):
    h, w = x.shape[1] // 2 * 2, x.shape[2] // 2 * 2
    n, c = x.shape[0], x.shape[3]
    return x[:, :h, :w].reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def ms_ssim_pytorch_msssim(img1, img2):
    """``msssim(img1, img2, normalize=True)`` of the pytorch_msssim copy in the CrossFuse repo.

    Five levels with 2x2 average pooling between; a Gaussian window (sigma 1.5) of
    ``min(11, h, w)`` taps, valid convolution; the value range L (255 if max > 128 else 1, minus
    1 if min < -0.5) re-inferred from ``img1`` at every level; means over the whole batch;
    (v + 1) / 2 normalisation; and the code's product ``prod_{i<5} mcs_i^w_i * mssim_5^w_5``
    (mssim_5 enters four times, mcs_5 not at all).
    """
    mssim, mcs = [], []
    for _ in MS_SSIM_WEIGHTS:
        s, c = _ssim_and_cs(img1, img2)
        mssim.append(s)
        mcs.append(c)
        img1, img2 = _avg_pool2(img1), _avg_pool2(img2)
    w = jnp.asarray(MS_SSIM_WEIGHTS, jnp.float32)
    mssim, mcs = (jnp.stack(mssim) + 1) / 2, (jnp.stack(mcs) + 1) / 2
    return jnp.prod(mcs[:-1] ** w[:-1] * mssim[-1] ** w[-1])


def gaussian_ssim(a, b, size: int = 11, sigma: float = 1.5):
    """SSIM of [0, 1] images with a Gaussian window and zero padding, the mean over everything
    (batch included): DMFuse's ``loss.ssim`` (C1 = 0.01^2, C2 = 0.03^2)."""
    window = jnp.asarray(_gaussian_window(size, sigma))[:, :, None, None]
    p = size // 2

    def filt(x):
        return jax.lax.conv_general_dilated(x, window, (1, 1), ((p, p), (p, p)),
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))

    mu_a, mu_b = filt(a), filt(b)
    s_aa, s_bb, s_ab = filt(a * a) - mu_a ** 2, filt(b * b) - mu_b ** 2, filt(a * b) - mu_a * mu_b
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    return jnp.mean(((2 * mu_a * mu_b + c1) * (2 * s_ab + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (s_aa + s_bb + c2)))


# ---- RefineFuse (Sec. 3.5, Eq. 6-11), after PSFusion's Fusionloss / final_mse1 ----
def gaussian_local_variance(x, size: int = 9, sigma: float = 1.5):
    """G*x^2 - (G*x)^2 with a normalised ``size`` x ``size`` Gaussian (PSFusion's ``std``), zero padding.

    Computed centred, sum_j g_j (x_j - mu)^2 (the same value, as sum_j g_j = 1 over the padded
    window), so a flat window gives 0 up to mu's rounding (~1e-14) instead of the +-1e-7 of the
    difference of two float32 means.
    """
    g, p = _gaussian_window(size, sigma), size // 2
    h, w = x.shape[1:3]
    xp = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    shifted = [(float(g[i, j]), xp[:, i:i + h, j:j + w]) for i in range(size) for j in range(size)]
    mu = sum(gij * s for gij, s in shifted)
    return sum(gij * jnp.square(s - mu) for gij, s in shifted)


def local_contrast(x, contrast: str = "variance"):
    """The contrast of Sec. 3.5: ``variance`` (Gaussian 9x9 local variance, PSFusion) or
    ``literal`` ("squared difference between pixel values and the average of surrounding pixels",
    (x - box9(x))^2)."""
    if contrast == "variance":
        return gaussian_local_variance(x)
    if contrast == "literal":
        return jnp.square(x - box_mean(x, 9))
    raise ValueError(f"contrast must be 'variance' or 'literal', got {contrast!r}")


def salient_masks(ir, vi, salient=None, contrast: str = "variance", tie_eps: float = 1e-7):
    """Eq. 6: M_ir = [M_sal + M_con > 0], M_vi = 1 - M_ir, no gradient.

    M_con = [c(ir) > c(vi) + tie_eps]: where the two contrasts are within ``tie_eps`` (flat
    windows in both, say) visible wins. ``salient`` (B, H, W, 1), nonzero = salient, or None.
    """
    m_ir = local_contrast(ir, contrast) > local_contrast(vi, contrast) + tie_eps
    if salient is not None:
        m_ir = m_ir | (salient > 0)
    m_ir = jax.lax.stop_gradient(m_ir.astype(ir.dtype))
    return m_ir, 1 - m_ir


def mask_intensity_loss(fused, ir, vi, m_ir, m_vi, norm: str = "l1"):
    """Eq. 7: ||M_ir (I_f - I_ir)|| + ||M_vi (I_f - I_vi)||, each a mean over all pixels.

    ``norm``: ``l1`` (PSFusion's ``F.l1_loss`` of masked products), ``l2`` (their squares), or
    ``psfusion_local_mse`` (``final_mse1``: mean(M_ir box9((f - ir)^2) + M_vi box9((f - vi)^2))).
    """
    if norm == "l1":
        return jnp.mean(jnp.abs(m_ir * (fused - ir))) + jnp.mean(jnp.abs(m_vi * (fused - vi)))
    if norm == "l2":
        return jnp.mean(jnp.square(m_ir * (fused - ir))) + jnp.mean(jnp.square(m_vi * (fused - vi)))
    if norm == "psfusion_local_mse":
        return jnp.mean(m_ir * box_mean(jnp.square(fused - ir), 9) + m_vi * box_mean(jnp.square(fused - vi), 9))
    raise ValueError(f"norm must be 'l1', 'l2' or 'psfusion_local_mse', got {norm!r}")


def plain_intensity_loss(fused, ir, vi):
    """RefineFuse Eq. 10 (Table 8, A): mean |I_f - I_ir| + mean |I_f - I_vi|."""
    return jnp.mean(jnp.abs(fused - ir)) + jnp.mean(jnp.abs(fused - vi))


def sobel_direction_loss(fused, ir, vi):
    """RefineFuse Eq. 8 as PSFusion: mean | max(|Sx ir|, |Sx vi|) - |Sx f| | + the same for y."""
    def term(kernel):
        sx = [jnp.abs(filter3x3(x, kernel)) for x in (fused, ir, vi)]
        return jnp.mean(jnp.abs(jnp.maximum(sx[1], sx[2]) - sx[0]))

    return term(SOBEL_X) + term(SOBEL_Y)
