"""Uploads decode to square RGB arrays or are rejected with a reason; a class-per-folder dataset reads back."""

import io
import logging
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from common.images.files import (
    ImageRejected,
    decode_image,
    encode_png,
    read_image_folder,
    to_data_url,
)
from common.images.render import Objects, Photos, render


def pillow_bytes(image: Image.Image, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def photo(size: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return render(Objects.sample(1, rng), Photos.sample(np.zeros(1, np.int64), rng), size=size, seed=seed)[0]


def png_declaring(width: int, height: int) -> bytes:
    """A PNG of a few dozen bytes whose header declares width x height RGB pixels: a decompression bomb's shape."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_png_round_trip_is_exact():
    image = photo(32)
    assert (decode_image(encode_png(image), 32) == image).all()
    url = to_data_url(image)
    assert url.startswith("data:image/png;base64,") and len(url) > 100


def test_encode_png_wants_rgb_uint8():
    with pytest.raises(ValueError):
        encode_png(np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError):
        encode_png(np.zeros((8, 8, 3), np.float32))


@pytest.mark.parametrize(
    "make",
    [
        lambda rgb: pillow_bytes(rgb, "JPEG", quality=90),
        lambda rgb: pillow_bytes(rgb.convert("L"), "PNG"),
        lambda rgb: pillow_bytes(rgb.convert("RGBA"), "PNG"),
        lambda rgb: pillow_bytes(rgb.convert("P"), "GIF"),
        lambda rgb: pillow_bytes(rgb, "BMP"),
        lambda rgb: pillow_bytes(rgb, "WEBP"),
        lambda rgb: pillow_bytes(rgb.convert("CMYK"), "JPEG"),
        lambda rgb: pillow_bytes(rgb.resize((90, 40)), "PNG"),  # not square: the centre square is kept
    ],
    ids=["jpeg", "grey png", "rgba png", "palette gif", "bmp", "webp", "cmyk jpeg", "wide png"],
)
def test_common_formats_decode_to_a_square_rgb_array(make):
    original = photo(64)
    decoded = decode_image(make(Image.fromarray(original)), 24)
    assert decoded.shape == (24, 24, 3) and decoded.dtype == np.uint8
    reference = np.asarray(Image.fromarray(original).resize((24, 24), Image.Resampling.BILINEAR), np.float32)
    if decoded.std() > 0 and reference.std() > 0:  # still the same picture (greyscale loses colour, not layout)
        assert np.corrcoef(decoded.mean(axis=-1).ravel(), reference.mean(axis=-1).ravel())[0, 1] > 0.6


def test_wide_image_keeps_its_centre_square():
    wide = np.zeros((20, 60, 3), np.uint8)
    wide[:, :20] = (255, 0, 0)  # left third red, centre green, right third blue
    wide[:, 20:40] = (0, 255, 0)
    wide[:, 40:] = (0, 0, 255)
    assert (decode_image(encode_png(wide), 10) == (0, 255, 0)).all()


def test_transparency_becomes_white():
    rgba = np.zeros((8, 8, 4), np.uint8)  # fully transparent black
    decoded = decode_image(pillow_bytes(Image.fromarray(rgba, "RGBA"), "PNG"), 8)
    assert (decoded == 255).all()


@pytest.mark.parametrize(
    ("data", "limits", "reason"),
    [
        (b"", {}, "empty"),
        (b"x" * 101, {"max_bytes": 100}, "101 bytes; the limit is 100"),
        (b"hello, this is a text file\n" * 10, {}, "not an image"),
        (png_declaring(50_000, 50_000), {}, "pixels"),  # Pillow's own bomb guard trips at open
        (png_declaring(8_000, 6_000), {}, "48000000 pixels; the limit is 40000000"),
    ],
    ids=["empty", "too many bytes", "text", "bomb", "too many pixels"],
)
def test_bad_uploads_are_rejected_with_a_reason(data, limits, reason):
    with pytest.raises(ImageRejected, match=reason):
        decode_image(data, 32, **limits)


def test_an_image_above_the_pixel_limit_is_rejected_before_decoding():
    data = encode_png(photo(32))
    with pytest.raises(ImageRejected, match="32x32 = 1024 pixels; the limit is 1000"):
        decode_image(data, 32, max_pixels=1000)


def test_a_truncated_image_is_rejected_as_corrupt():
    data = encode_png(photo(64))
    with pytest.raises(ImageRejected, match="corrupt or truncated"):
        decode_image(data[: len(data) // 2], 32)
    jpeg = pillow_bytes(Image.fromarray(photo(128)), "JPEG")
    for cut in (len(jpeg) // 2, 300):  # in the pixel data, in the header
        with pytest.raises(ImageRejected, match="corrupt or truncated"):
            decode_image(jpeg[:cut], 32)


def test_rejections_are_value_errors_with_no_warning(recwarn):
    with pytest.raises(ValueError):
        decode_image(png_declaring(12_000, 12_000), 32, max_pixels=10**9)  # between Pillow's warning and error
    assert not [w for w in recwarn if "Image" in str(w.category) or "PIL" in str(w.filename)]


def write(path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_read_image_folder(tmp_path, caplog):
    for c, name in enumerate(["zebra", "apple", "mango"]):
        for i in range(c + 2):
            write(tmp_path / name / f"{i}.png", encode_png(photo(40, seed=10 * c + i)))
    write(tmp_path / "apple" / "notes.txt", b"not an image")
    write(tmp_path / "apple" / "broken.png", encode_png(photo(40))[:60])
    write(tmp_path / "mango" / "._0.png", b"macOS resource fork")  # hidden: ignored
    with caplog.at_level(logging.WARNING):
        folder = read_image_folder(tmp_path, 16)
    assert folder.classes == ("apple", "mango", "zebra")
    assert folder.images.shape == (9, 16, 16, 3) and folder.images.dtype == np.uint8
    assert folder.labels.dtype == np.int64 and list(folder.labels) == [0, 0, 0, 1, 1, 1, 1, 2, 2]
    assert folder.files[:3] == ("apple/0.png", "apple/1.png", "apple/2.png") and len(folder.files) == 9
    assert folder.skipped == ("apple/broken.png",)
    assert (
        sum("broken.png" in record.getMessage() for record in caplog.records if "skipping" in record.getMessage()) == 1
    )
    expected = decode_image((tmp_path / "zebra" / "1.png").read_bytes(), 16)
    assert (folder.images[folder.files.index("zebra/1.png")] == expected).all()


def test_read_image_folder_errors_name_the_root(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        read_image_folder(tmp_path / "missing", 16)
    write(tmp_path / "file.png", encode_png(photo(8)))
    with pytest.raises(ValueError, match="not a directory"):
        read_image_folder(tmp_path / "file.png", 16)
    with pytest.raises(ValueError, match=f"{tmp_path}.*no class sub-folders"):
        read_image_folder(tmp_path, 16)
    write(tmp_path / "only" / "a.png", encode_png(photo(8)))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=f"{tmp_path}.*at least 2 class"):
        read_image_folder(tmp_path, 16)
    broken = tmp_path / "broken"
    write(broken / "a" / "x.png", b"garbage")
    write(broken / "b" / "y.jpg", b"garbage")
    with pytest.raises(ValueError, match=f"no image under {broken}"):
        read_image_folder(broken, 16)
