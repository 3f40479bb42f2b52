"""Image files in and out: decoding with clear errors, pairing ir/vi folders, atomic writes.

Every error names the offending file. Conversions are documented and deterministic:

* 16-bit grey or RGB files are reduced to 8 bits by rounding ``v / 257`` (so 65535 -> 255).
* Palette, grey+alpha and RGBA files are converted to RGB (alpha dropped).
* An RGB infrared image is reduced to grey like PIL's ``convert('L')``, which is what the
  official SIBA test loader does (integer ITU-R 601-2 luma).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
GRAY_MODES = ("L", "1", "I", "I;16", "I;16B", "I;16L")  # PIL modes read as (H, W, 1)


class ImageError(ValueError):
    """A bad input image or folder; the message names the file and the problem."""


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Reads an image as uint8, (H, W, 1) for grey files and (H, W, 3) for colour ones."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    try:
        with Image.open(path) as img:
            img.load()
            return _to_uint8(img, path)
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image file (or a format Pillow cannot read)") from None
    except (OSError, SyntaxError) as e:
        raise ImageError(f"{path}: cannot decode image ({e})") from None


def _to_uint8(img: Image.Image, path: Path) -> np.ndarray:
    if img.mode in GRAY_MODES[2:]:
        a = np.asarray(img).astype(np.float64)
        if a.max() > 65535 or a.min() < 0:
            raise ImageError(f"{path}: {img.mode} values outside 0..65535")
        return np.round(a / 257.0).astype(np.uint8)[..., None]
    if img.mode == "F":
        raise ImageError(f"{path}: floating-point images are not supported; save as 8/16-bit")
    if img.mode in ("L", "1"):
        return np.asarray(img.convert("L"), dtype=np.uint8)[..., None]
    if img.mode in ("RGB;16", "RGB48"):  # pragma: no cover - rare Pillow modes
        raise ImageError(f"{path}: 48-bit RGB is not supported; save as 8-bit")
    return np.asarray(img if img.mode == "RGB" else img.convert("RGB"), dtype=np.uint8)


def rgb_to_gray_uint8(rgb: np.ndarray) -> np.ndarray:
    """PIL ``convert('L')`` on a (H, W, 3) uint8 array (its fixed-point ITU-R 601-2 luma)."""
    r, g, b = (rgb[..., i].astype(np.int32) for i in range(3))
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.uint8)[..., None]


def read_gray(path: str | os.PathLike) -> np.ndarray:
    """Reads an image as (H, W, 1) uint8; colour files are reduced like PIL ``convert('L')``."""
    a = read_image(path)
    return a if a.shape[-1] == 1 else rgb_to_gray_uint8(a)


def list_images(folder: str | os.PathLike) -> dict[str, Path]:
    """Maps file name -> path for every image in ``folder`` (not recursive)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageError(f"{folder}: no such directory")
    files = {p.name: p for p in sorted(folder.iterdir())
             if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES}
    if not files:
        raise ImageError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
    return files


def pair_folders(ir_dir: str | os.PathLike, vi_dir: str | os.PathLike) -> list[tuple[str, Path, Path]]:
    """Pairs ``ir_dir/NAME`` with ``vi_dir/NAME``; returns sorted (name, ir_path, vi_path).

    Names pair by file name; if that leaves files unmatched they pair by stem (``01.png`` with
    ``01.jpg``; the pair is then named after the ir file). Any file still without a
    counterpart is an error that lists them.
    """
    ir, vi = list_images(ir_dir), list_images(vi_dir)
    if set(ir) != set(vi):
        ir_stems = {Path(n).stem: p for n, p in ir.items()}
        vi_stems = {Path(n).stem: p for n, p in vi.items()}
        if len(ir_stems) == len(ir) and len(vi_stems) == len(vi) and set(ir_stems) == set(vi_stems):
            return [(ir_stems[s].name, ir_stems[s], vi_stems[s]) for s in sorted(ir_stems)]
        only_ir = sorted(set(ir) - set(vi))
        only_vi = sorted(set(vi) - set(ir))
        raise ImageError(
            f"ir/vi names do not pair: {len(only_ir)} only in {ir_dir} {_head(only_ir)}, "
            f"{len(only_vi)} only in {vi_dir} {_head(only_vi)}")
    return [(n, ir[n], vi[n]) for n in sorted(ir)]


def _head(names: list[str], k: int = 5) -> str:
    return "[" + ", ".join(names[:k]) + (", ...]" if len(names) > k else "]")


def check_same_size(name: str, ir: np.ndarray, vi: np.ndarray, ir_path=None, vi_path=None) -> None:
    """Raises ImageError if the two images of a pair differ in height or width."""
    if ir.shape[:2] != vi.shape[:2]:
        raise ImageError(
            f"pair {name}: ir {ir_path or ''} is {ir.shape[1]}x{ir.shape[0]} but vi {vi_path or ''} "
            f"is {vi.shape[1]}x{vi.shape[0]} (W x H); the two images of a pair must be aligned")


def atomic_write(path: str | os.PathLike, write_fn) -> None:
    """Calls ``write_fn(tmp_path)`` then renames tmp onto ``path``; no half-written files.

    The file gets the permissions the umask gives a new file (0644 under umask 0022), unlike a
    ``tempfile.mkstemp`` file (always 0600), which the rename would carry over.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_temp(path.parent, f".{path.name}.", path.suffix,
                    lambda p: os.close(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)))
    try:
        write_fn(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def make_temp_dir(parent: str | os.PathLike, prefix: str) -> Path:
    """A new empty directory in ``parent`` with the umask's permissions (``tempfile.mkdtemp``
    makes 0700 ones), for building a result that is then renamed into place."""
    return _new_temp(Path(parent), prefix, "", lambda p: os.mkdir(p, 0o777))


def _new_temp(parent: Path, prefix: str, suffix: str, create) -> Path:
    """Creates ``parent/<prefix><random><suffix>`` with ``create`` (which fails if it exists)."""
    for _ in range(100):
        candidate = parent / f"{prefix}{secrets.token_hex(4)}{suffix}"
        try:
            create(candidate)
            return candidate
        except FileExistsError:
            continue
    raise FileExistsError(f"{parent}: cannot find a free temporary name {prefix}*{suffix}")


def write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Writes a uint8 (H, W), (H, W, 1) or (H, W, 3) image atomically; format from the suffix."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise TypeError(f"{path}: expected uint8 image, got {image.dtype}")
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    fmt = Image.registered_extensions().get(Path(path).suffix.lower())
    if fmt is None:
        raise ImageError(f"{path}: unknown image format suffix")
    atomic_write(path, lambda tmp: Image.fromarray(image).save(tmp, format=fmt))
