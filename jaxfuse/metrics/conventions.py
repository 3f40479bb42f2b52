"""The two metric conventions, and how images are turned into the gray arrays the metrics see.

``matlab`` (default) reproduces the MATLAB toolbox Linfeng-Tang/Evaluation-for-Image-Fusion
(``Evaluation/analysis_Reference.m``, the toolbox SIBA's README points to). ``cddfuse``
reproduces the Python evaluator of Zhaozixiang1228/MMIF-CDDFuse (``utils/Evaluator.py``).
Metrics that the CDDFuse evaluator does not have (MS_SSIM, Nabf, FMI_*) use the toolbox
definition in both conventions, applied to that convention's gray images; Qe, in neither tool,
follows Piella & Heijmans (see its docstring). PC (Zhao et al.'s phase-congruency metric), in
neither tool, follows metricZhao.m of Zheng Liu's toolbox (see :mod:`jaxfuse.metrics.phase`).

Every difference between the two, metric by metric (A = infrared, B = visible, F = fused):

=========  ==========================================  =========================================
item       matlab (toolbox)                            cddfuse (Evaluator.py)
=========  ==========================================  =========================================
gray       ``rgb2gray``: 0.298936R+0.587043G+0.114021B  ``cv2.cvtColor(float32, BGR2GRAY)``:
           rounded half away from zero to uint8         0.299R+0.587G+0.114B in float32, then
                                                        ``np.round`` (half to even). The fused
                                                        file is read as 3 channels too.
range      0..255 (MSE and PSNR on 0..1, see below)     0..255 everywhere
AG         sum / ((H-1)(W-1))                           mean over H*W (same gradient otherwise)
MI         bits (log2), 256x256 joint histogram         nats (``sklearn mutual_info_score``)
MSE        on 0..1: (mse(F,A)+mse(F,B))/2 / 255^2       on 0..255: (mse(F,A)+mse(F,B))/2
PSNR       20 log10(255 / sqrt(MSE_0..1)) (the toolbox  10 log10(max(F)^2 / MSE_0..255)
           mixes scales: as printed, ~48 dB higher)
CC         r(A,F) and r(B,F) averaged, but the toolbox  both Pearson correlations averaged
           centres B with mean(A) in r(B,F)'s numerator
SSIM       0.5 ssim(F,A) + 0.5 ssim(F,B), MATLAB        ssim(F,A) + ssim(F,B) (summed), skimage:
           ``ssim``: 11x11 Gaussian (sigma 1.5),        7x7 uniform window, sample covariance,
           replicate padding, DynamicRange 1 (double    3-pixel border cropped, data_range 2 (the
           input), so C1 = 1e-4, C2 = 9e-4              float default of scikit-image <= 0.19,
                                                        which the evaluator relied on; newer
                                                        versions raise instead)
VIF        vifp_mscale(A,F) + vifp_mscale(B,F); NaN     same sum; a NaN per-source term becomes
           when undefined                               1.0 (the evaluator's rule)
EN, SD,    identical definitions                        identical definitions
SF, SCD,
Qabf
=========  ==========================================  =========================================

Toolbox quirks reproduced on purpose (they are what papers using the toolbox report):

* ``easy``: the toolbox computes only half the metrics per run and sets the others to the
  constant 1 (``easy = 1`` gives EN..Qabf, ``easy = 0`` Nabf, SSIM, MS_SSIM, FMI_*). jaxfuse
  always computes every requested metric.
* Nabf is called as ``analysis_nabf(img1, img2, img_f)`` while its signature is
  ``(fused, source1, source2)``: the toolbox's Nabf treats the *infrared* image as the fused
  one and the fused image as a source. ``matlab`` reproduces that call; ``Nabf_fixed`` in
  :mod:`jaxfuse.metrics.gradient` is the intended order (used by neither convention).
* Qabf: the toolbox (and the CDDFuse copy) uses ``atan(Sy/Sx)`` (pi/2 where Sx == 0), the
  orientation term ``1 - |aA - aF| / (pi/2)`` and, where gA == gF, the strength ratio ``gF``
  (not 1). The other formula in circulation (Petrovic's, in the Nabf code) uses
  ``||aA - aF| - pi/2| * 2/pi`` and other sigmoid constants; it is used only inside Nabf.
* FMI_pixel: ``analysis_fmi`` is called without a feature argument, so its default feature,
  the binary ``edge(img)`` Sobel map, is used -- not raw pixels. FMI_dct uses ``dct2`` of the
  whole image, FMI_w the ``dwt2(img, 'dmey')`` sub-bands, all with 3x3 windows. The features are
  MATLAB's (``edge``'s direction-aware thinning, the 102-tap ``dmey``, 'sym' extension), not
  GNU Octave's; :func:`jaxfuse.metrics.fmi.octave_fmi` gives the toolbox's values in Octave.
* MS_SSIM is the toolbox's ``analysis_ms_ssim``: Ma et al.'s multi-exposure MEF-SSIM over 3
  scales with both sources as the reference sequence -- not Wang's MS-SSIM of two pairs.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

CONVENTIONS = ("matlab", "cddfuse")

# MATLAB rgb2gray weights (the inverse of its YIQ transform, as rgb2gray.m writes them).
_MATLAB_RGB = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])


@dataclasses.dataclass(frozen=True)
class Convention:
    """Static switches that select a convention inside the jitted metric code."""
    name: str

    @property
    def matlab(self) -> bool:
        return self.name == "matlab"


def get(name: str) -> Convention:
    if name not in CONVENTIONS:
        raise ValueError(f"unknown convention {name!r}; choose one of {', '.join(CONVENTIONS)}")
    return Convention(name)


def to_gray(image: np.ndarray, convention: str = "matlab", dtype=np.float64) -> np.ndarray:
    """(H, W), (H, W, 1) or (H, W, 3) uint8 -> (H, W) gray values 0..255 (integers) as ``dtype``:
    float64, or uint8 (the same values; :func:`jaxfuse.metrics.compute_metrics` reads uint8
    images with an eighth of the memory traffic).

    A colour image whose three channels are equal (a grey image stored as RGB, as most IVF
    datasets ship) goes through a 256-entry table of the same rule: 3x faster, same values."""
    img = np.asarray(image)
    if img.dtype != np.uint8:
        raise TypeError(f"expected a uint8 image, got {img.dtype}")
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim == 2:
        return img.astype(dtype)
    if img.ndim != 3 or img.shape[-1] != 3:
        raise ValueError(f"expected (H, W), (H, W, 1) or (H, W, 3), got shape {img.shape}")
    r = img[..., 0]
    if np.array_equal(r, img[..., 1]) and np.array_equal(r, img[..., 2]):
        table = _gray_table(get(convention).name)
        return r.astype(dtype) if table is None else table.astype(dtype, copy=False)[r]
    return _rgb_to_gray(img, get(convention)).astype(dtype, copy=False)


@functools.cache
def _gray_table(convention: str) -> np.ndarray | None:
    """The rule applied to the 256 grey levels; None where it maps every level to itself."""
    levels = np.repeat(np.arange(256, dtype=np.uint8)[:, None, None], 3, axis=2)
    table = _rgb_to_gray(levels, get(convention))[:, 0]
    return None if np.array_equal(table, np.arange(256)) else table


def _rgb_to_gray(img: np.ndarray, conv: Convention) -> np.ndarray:
    if conv.matlab:
        y = img.astype(np.float64) @ _MATLAB_RGB
        return np.floor(y + 0.5)  # MATLAB's uint8() rounds half away from zero (y >= 0)
    rgb = img.astype(np.float32)
    y = (rgb[..., 2] * np.float32(0.114) + rgb[..., 1] * np.float32(0.587)
         + rgb[..., 0] * np.float32(0.299))
    return np.round(y).astype(np.float64)
