"""Image files in and out with Pillow: an upload becomes a square RGB array, an array becomes a PNG.

    pixels = decode_image(upload_bytes, size=32)   # (32, 32, 3) uint8, or ImageRejected saying why not
    png = encode_png(pixels); url = to_data_url(pixels)   # for a response, a web page's <img src=...>
    folder = read_image_folder("photos/", size=32) # one sub-folder per class: images, labels, classes, files

An upload is untrusted, so decode_image checks what is cheap to check before Pillow decodes any pixel: the byte
count, that Pillow recognises one of the accepted formats (only those plugins are tried), and the pixel count
the header declares (a decompression bomb is a small file that declares a huge image). Whatever Pillow raises
or warns past that point becomes ImageRejected, whose message is meant for the person who sent the file.
"""

from __future__ import annotations

import base64
import io
import logging
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

log = logging.getLogger(__name__)

MAX_BYTES = 5 * 1024 * 1024
MAX_PIXELS = 40_000_000
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")  # the Pillow plugins an upload may use
ACCEPTED = "PNG, JPEG, GIF, BMP, WebP"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp")
# Pillow's resize reduces by whole factors first (a box filter, fast) while the image is at least this many times
# the target, then resamples the rest: Pillow's docs put 3 at indistinguishable from resampling all the way.
REDUCING_GAP = 3.0
# warnings.catch_warnings swaps the process's filters and is not thread-safe: decodes in server threads take
# turns inside it, so one call's exit cannot restore filters another call is still relying on.
_WARNINGS_LOCK = threading.Lock()


class ImageRejected(ValueError):
    """A file that is not an acceptable image; str(error) is the reason, for the person who sent it."""


def decode_image(data: bytes, size: int, max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Bytes of a PNG, JPEG, GIF (its first frame), BMP or WebP -> (size, size, 3) uint8 RGB: the centre square,
    resized. Transparency is composited on white; palette, greyscale and CMYK images are converted; a JPEG's
    EXIF orientation is applied (a phone photo comes out upright). Raises ImageRejected with the reason."""
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")  # the caller's mistake, not the upload's
    if not data:
        raise ImageRejected("the file is empty")
    if len(data) > max_bytes:
        raise ImageRejected(f"the file is {len(data)} bytes; the limit is {max_bytes}")
    with _WARNINGS_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's remarks on odd but readable files (EXIF, palettes) stay quiet
        warnings.simplefilter("error", Image.DecompressionBombWarning)  # but a bomb warning stops the decode
        image = _open(data, max_pixels)
        try:
            _draft(image, size)
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise ImageRejected(f"the image is too large to decode safely: {error}") from error
        except Exception as error:  # Pillow's decoders raise OSError, ValueError, SyntaxError, struct.error...
            raise ImageRejected(f"the image is corrupt or truncated: {error}") from error
        try:
            return _square_rgb(image, size)
        except Exception as error:
            raise ImageRejected(f"the image could not be converted: {error}") from error


def _open(data: bytes, max_pixels: int) -> Image.Image:
    """Pillow's lazy open (the header only) restricted to FORMATS, and the declared pixel count checked."""
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageRejected(f"the image is too large to decode safely: {error}") from error
    except UnidentifiedImageError as error:
        raise ImageRejected(f"not an image: Pillow cannot identify it ({ACCEPTED} are accepted)") from error
    except Exception as error:  # a format Pillow recognised, with a header cut short or malformed
        raise ImageRejected(f"the image is corrupt or truncated: {error}") from error
    width, height = image.size
    if width * height > max_pixels:
        raise ImageRejected(f"the image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}")
    if width < 1 or height < 1:
        raise ImageRejected(f"the image is {width}x{height} pixels: it has no pixels")
    return image


def _draft(image: Image.Image, size: int) -> None:
    """Let a JPEG decode at 1/2, 1/4 or 1/8 scale when its short side stays at least REDUCING_GAP * size: a
    12-megapixel phone photo then decodes in a fraction of the time and memory. Other formats ignore it."""
    width, height = image.size
    shortest = min(width, height)
    target = REDUCING_GAP * size / shortest
    image.draft("RGB", (int(np.ceil(width * target)), int(np.ceil(height * target))))


def _square_rgb(image: Image.Image, size: int) -> np.ndarray:
    image = ImageOps.exif_transpose(image)
    if image.has_transparency_data:
        # Palette or greyscale transparency becomes an alpha channel first; transparent pixels turn white.
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = image.point(lambda value: value / 256).convert("L")  # 16-bit grey: keep the top 8 bits, not clip
    image = image.convert("RGB")
    width, height = image.size
    side = min(width, height)
    box = ((width - side) // 2, (height - side) // 2, (width - side) // 2 + side, (height - side) // 2 + side)
    if box != (0, 0, width, height):
        image = image.crop(box)  # not resize's box=, whose filter also reads the pixels just outside the box
    if side != size:
        # BILINEAR in Pillow widens its triangle filter with the reduction, so it anti-aliases a downscale; it
        # does not ring at edges the way LANCZOS does, and the images are small, flat-coloured scenes where
        # LANCZOS' extra sharpness buys nothing.
        image = image.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=REDUCING_GAP)
    return np.array(image, dtype=np.uint8)


def encode_png(image: np.ndarray) -> bytes:
    """(height, width, 3) uint8 -> PNG bytes (lossless: decode_image at the same size gives it back)."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected a (height, width, 3) uint8 array, got {image.shape} {image.dtype}")
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="PNG")
    return buffer.getvalue()


def to_data_url(image: np.ndarray) -> str:
    """A data: URL of the image as PNG, for an <img src=...> thumbnail with no file behind it."""
    return "data:image/png;base64," + base64.b64encode(encode_png(image)).decode("ascii")


@dataclass(frozen=True)
class ImageFolder:
    """Decoded images of a one-sub-folder-per-class layout; files are relative to the root."""

    images: np.ndarray  # (n, size, size, 3) uint8
    labels: np.ndarray  # (n,) int64 index into classes
    classes: tuple[str, ...]  # the sub-folders that hold at least one decodable image, sorted
    files: tuple[str, ...]
    skipped: tuple[str, ...] = ()  # image files that failed to decode, relative to the root


def read_image_folder(root: str | Path, size: int) -> ImageFolder:
    """Every image file (IMAGE_SUFFIXES, any case) one level down in root's sub-folders, decoded to size x size.

    The sub-folder is the class. Hidden entries (a leading dot, like macOS's ._name.jpg) are ignored, as are
    other suffixes; a file that does not decode is skipped with a warning naming it, and a sub-folder left with
    no image is dropped (no class without examples). The byte limit of uploads does not apply to one's own
    files; the pixel limit does. Raises ValueError naming root when there is nothing to learn from."""
    root = Path(root)
    if not root.exists():
        raise ValueError(f"image folder {root} does not exist")
    if not root.is_dir():
        raise ValueError(f"image folder {root} is not a directory")
    folders = sorted(entry for entry in root.iterdir() if entry.is_dir() and not entry.name.startswith("."))
    if not folders:
        raise ValueError(f"image folder {root} has no class sub-folders (expected root/<class>/<image>)")
    images, labels, files, skipped, classes = [], [], [], [], []
    for folder in folders:
        found = 0
        for path in sorted(folder.iterdir()):
            if not path.is_file() or path.name.startswith(".") or path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            relative = path.relative_to(root).as_posix()
            try:
                data = path.read_bytes()
                images.append(decode_image(data, size, max_bytes=max(len(data), 1)))
            except (ImageRejected, OSError) as error:
                log.warning("skipping %s: %s", path, error)
                skipped.append(relative)
                continue
            labels.append(len(classes))
            files.append(relative)
            found += 1
        if found:
            classes.append(folder.name)
        else:
            log.warning("dropping class %s: it holds no image that decodes", folder.name)
    if skipped:
        log.warning("skipped %d of %d image files under %s", len(skipped), len(skipped) + len(files), root)
    if not images:
        raise ValueError(
            f"no image under {root} could be decoded: {len(skipped)} image files failed (see the log), "
            f"none other with a suffix in {IMAGE_SUFFIXES}"
        )
    if len(classes) < 2:
        raise ValueError(f"image folder {root} needs images in at least 2 class sub-folders, found {classes}")
    return ImageFolder(
        images=np.stack(images),
        labels=np.asarray(labels, dtype=np.int64),
        classes=tuple(classes),
        files=tuple(files),
        skipped=tuple(skipped),
    )
