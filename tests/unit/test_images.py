"""Image references (data URIs, bare Base64, URLs) and decoding of untrusted image bytes."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import pytest
from PIL import Image

from reelforge.errors import InputError, InvalidImage, InvalidRequest
from reelforge.media.images import (
    GREY_BACKGROUND,
    check_image_ref,
    decode_image,
    inspect_image,
    load_image,
    parse_image_ref,
    sniff_image_type,
)
from reelforge.media.netguard import FetchPolicy

pytestmark = pytest.mark.unit

MiB = 2**20
LIMIT = 20 * MiB
PIXELS = 50_000_000


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def close(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 6) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


@pytest.fixture
def png() -> bytes:
    return encode(Image.new("RGB", (8, 6), (10, 200, 30)), "PNG")


def no_dns(host: str, port: int) -> list[str]:
    raise AssertionError("no DNS expected")


# --- references -----------------------------------------------------------------------


def test_data_uri(png: bytes) -> None:
    ref = parse_image_ref(f"data:image/png;base64,{b64(png)}", field="image_url", max_bytes=LIMIT)
    assert ref.kind == "data"
    assert ref.data == png
    assert ref.mime == "image/png"
    assert ref.url is None
    assert b64(png) not in repr(ref)


def test_data_uri_tolerates_whitespace_and_newlines(png: bytes) -> None:
    text = b64(png)
    wrapped = "\n".join(text[i : i + 20] for i in range(0, len(text), 20))
    value = f"  DATA:Image/PNG;BASE64,\r\n{wrapped} \t\n"
    assert parse_image_ref(value, field="image_url", max_bytes=LIMIT).data == png


def test_data_uri_missing_padding(png: bytes) -> None:
    data = png + b"x" * (1 + len(png) % 3)  # a length that needs Base64 padding
    text = b64(data)
    assert text.endswith("=")
    ref = parse_image_ref(f"data:image/png;base64,{text.rstrip('=')}", field="f", max_bytes=LIMIT)
    assert ref.data == data


def test_data_uri_urlsafe_alphabet() -> None:
    data = encode(Image.effect_noise((32, 32), 80).convert("RGB"), "PNG")
    urlsafe = base64.urlsafe_b64encode(data).decode().rstrip("=")
    assert "-" in urlsafe or "_" in urlsafe
    assert parse_image_ref(f"data:image/png;base64,{urlsafe}", field="f", max_bytes=LIMIT).data == (
        data
    )


def test_data_uri_with_extra_parameters(png: bytes) -> None:
    value = f"data:image/png;name=a.png;base64,{b64(png)}"
    assert parse_image_ref(value, field="f", max_bytes=LIMIT).data == png


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("data:text/html;base64,", "media type text/html"),
        ("data:application/pdf;base64,", "media type application/pdf"),
        ("data:;base64,", "no valid media type"),
        ("data:image/png,", "must be Base64-encoded"),
    ],
)
def test_data_uri_wrong_type_or_encoding(png: bytes, header: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message) as info:
        parse_image_ref(header + b64(png), field="tail_image_url", max_bytes=LIMIT)
    assert info.value.field == "tail_image_url"
    assert info.value.message.startswith("tail_image_url ")
    assert b64(png)[:40] not in info.value.message


@pytest.mark.parametrize(
    "payload",
    ["!!!notbase64!!!", "abcde", "ab+cd_ef", "QUJD===", "iVBORw0KGgo%%%"],
)
def test_data_uri_broken_base64(payload: str) -> None:
    with pytest.raises(InvalidRequest, match="valid Base64") as info:
        parse_image_ref(f"data:image/png;base64,{payload}", field="image_url", max_bytes=LIMIT)
    assert payload not in info.value.message


def test_data_uri_without_comma() -> None:
    with pytest.raises(InvalidRequest, match="not a valid data URI"):
        parse_image_ref("data:image/png;base64", field="image_url", max_bytes=LIMIT)


def test_data_uri_too_big_reports_sizes_before_decoding() -> None:
    payload = "A" * (int(25.3 * MiB) * 4 // 3)
    with pytest.raises(InvalidRequest) as info:
        parse_image_ref(f"data:image/png;base64,{payload}", field="image_url", max_bytes=LIMIT)
    assert info.value.message == "image_url is 25.3 MiB; the limit is 20 MiB"


def test_bare_base64(png: bytes) -> None:
    ref = parse_image_ref(b64(png), field="image_url", max_bytes=LIMIT)
    assert ref.kind == "data"
    assert ref.data == png
    assert ref.mime is None


def test_bare_base64_jpeg_with_newlines() -> None:
    jpeg = encode(Image.new("RGB", (16, 16), "red"), "JPEG")
    text = base64.encodebytes(jpeg).decode()
    assert "\n" in text
    assert parse_image_ref(text, field="image_url", max_bytes=LIMIT).data == jpeg


def test_bare_base64_too_big() -> None:
    with pytest.raises(InvalidRequest, match="the limit is 1 KiB"):
        parse_image_ref("A" * 4000, field="image_url", max_bytes=1024)


def test_bare_base64_of_non_image() -> None:
    with pytest.raises(InvalidRequest, match="expected an http"):
        parse_image_ref(
            b64(b"just some text that is not an image at all"), field="f", max_bytes=LIMIT
        )


def test_bare_base64_of_svg() -> None:
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>'
    with pytest.raises(InvalidRequest, match="SVG"):
        parse_image_ref(b64(svg), field="image_url", max_bytes=LIMIT)


@pytest.mark.parametrize(
    "value", ["hello", "cat.png", "/etc/passwd", "C:\\images\\cat.png", "example.com/a.png", ""]
)
def test_other_values_refused(value: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_image_ref(value, field="image_url", max_bytes=LIMIT)
    assert info.value.field == "image_url"
    assert "http(s) URL" in info.value.message
    assert "Base64" in info.value.message


@pytest.mark.parametrize("value", ["file:///etc/passwd", "ftp://x/a.png", "gopher://x/"])
def test_other_schemes_refused(value: str) -> None:
    scheme = value.split(":")[0]
    with pytest.raises(InvalidRequest, match=f"unsupported scheme '{scheme}'"):
        parse_image_ref(value, field="image_url", max_bytes=LIMIT)


def test_url_reference() -> None:
    ref = parse_image_ref(" https://img.example/a.png?x=1 ", field="image_url", max_bytes=LIMIT)
    assert (ref.kind, ref.url, ref.data) == ("url", "https://img.example/a.png?x=1", None)


def test_url_reference_syntax_checked() -> None:
    with pytest.raises(InvalidRequest, match="user name"):
        parse_image_ref("https://a@b.example/", field="image_url", max_bytes=LIMIT)


# --- check_image_ref / load_image -----------------------------------------------------


def test_check_image_ref_checks_inline_data(png: bytes) -> None:
    policy = FetchPolicy(resolver=no_dns)
    ref = check_image_ref(f"data:image/png;base64,{b64(png)}", policy, field="f", max_pixels=100)
    assert ref.kind == "data"
    broken = b64(png[:40])
    with pytest.raises(InvalidImage):
        check_image_ref(f"data:image/png;base64,{broken}", policy, field="f", max_pixels=100)
    with pytest.raises(InvalidImage, match="at least 64"):
        check_image_ref(b64(png), policy, field="f", max_pixels=100, min_side=64)


def test_check_image_ref_vets_urls() -> None:
    policy = FetchPolicy(resolver=lambda h, p: ["10.0.0.1"])
    with pytest.raises(InvalidRequest) as info:
        check_image_ref("http://img.example/a.png", policy, field="image_url", max_pixels=PIXELS)
    assert info.value.field == "image_url"
    ok = FetchPolicy(resolver=lambda h, p: ["93.184.216.34"])
    ref = check_image_ref("http://img.example/a.png", ok, field="image_url", max_pixels=PIXELS)
    assert ref.url == "http://img.example/a.png"


def test_load_image_inline(png: bytes) -> None:
    image = load_image(b64(png), FetchPolicy(resolver=no_dns), field="f", max_pixels=PIXELS)
    assert image.mode == "RGB"
    assert image.size == (8, 6)
    assert image.getpixel((0, 0)) == (10, 200, 30)


def test_load_image_reports_input_errors_only() -> None:
    policy = FetchPolicy(resolver=no_dns)
    with pytest.raises(InvalidImage, match="unsupported scheme 'file'"):
        load_image("file:///etc/passwd", policy, field="image_url", max_pixels=PIXELS)
    with pytest.raises(InvalidImage, match="valid Base64"):
        load_image("data:image/png;base64,@@@@", policy, field="image_url", max_pixels=PIXELS)


# --- decoding ---------------------------------------------------------------------------


def test_sniff() -> None:
    assert sniff_image_type(encode(Image.new("RGB", (2, 2)), "PNG")) == "png"
    assert sniff_image_type(encode(Image.new("RGB", (2, 2)), "JPEG")) == "jpeg"
    assert sniff_image_type(encode(Image.new("RGB", (2, 2)), "WEBP")) == "webp"
    assert sniff_image_type(encode(Image.new("RGB", (2, 2)), "GIF")) == "gif"
    assert sniff_image_type(encode(Image.new("RGB", (2, 2)), "BMP")) == "bmp"
    assert sniff_image_type(encode(Image.new("RGB", (2, 2)), "TIFF")) == "tiff"
    assert sniff_image_type(b"<svg/>") is None


def test_exif_rotated_jpeg_is_upright() -> None:
    stored = Image.new("RGB", (40, 20), (255, 0, 0))
    stored.paste((0, 0, 255), (20, 0, 40, 20))  # left red, right blue
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90° clockwise
    data = encode(stored, "JPEG", exif=exif.tobytes(), quality=95)
    image = decode_image(data, field="image_url", max_pixels=PIXELS)
    assert image.size == (20, 40)
    assert close(image.getpixel((10, 5)), (255, 0, 0), 30)
    assert close(image.getpixel((10, 35)), (0, 0, 255), 30)


def test_cmyk_jpeg() -> None:
    data = encode(Image.new("CMYK", (16, 16), (255, 0, 0, 0)), "JPEG", quality=95)
    image = decode_image(data, field="image_url", max_pixels=PIXELS)
    assert image.mode == "RGB"
    assert close(image.getpixel((8, 8)), (0, 255, 255))


def test_palette_png_with_transparency() -> None:
    palette = Image.new("P", (4, 2))
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    palette.paste(1, (2, 0, 4, 2))  # left half index 0 (transparent), right half red
    data = encode(palette, "PNG", transparency=0)
    image = decode_image(data, field="image_url", max_pixels=PIXELS)
    assert image.mode == "RGB"
    assert image.getpixel((0, 0)) == GREY_BACKGROUND
    assert image.getpixel((3, 1)) == (255, 0, 0)


def test_rgba_png_transparency_becomes_grey() -> None:
    rgba = Image.new("RGBA", (3, 1))
    rgba.putpixel((0, 0), (255, 0, 0, 0))
    rgba.putpixel((1, 0), (0, 0, 255, 255))
    rgba.putpixel((2, 0), (255, 255, 255, 128))
    image = decode_image(encode(rgba, "PNG"), field="image_url", max_pixels=PIXELS)
    assert image.mode == "RGB"
    assert image.getpixel((0, 0)) == (128, 128, 128)
    assert image.getpixel((1, 0)) == (0, 0, 255)
    assert close(image.getpixel((2, 0)), (192, 192, 192), 2)


def test_la_png() -> None:
    la = Image.new("LA", (2, 1))
    la.putpixel((0, 0), (255, 0))
    la.putpixel((1, 0), (255, 255))
    image = decode_image(encode(la, "PNG"), field="f", max_pixels=PIXELS)
    assert [image.getpixel((x, 0)) for x in range(2)] == [(128, 128, 128), (255, 255, 255)]


def test_16_bit_png_is_scaled_not_clipped() -> None:
    wide = Image.new("I;16", (3, 1))
    for x, value in enumerate((0, 32768, 65535)):
        wide.putpixel((x, 0), value)
    data = encode(wide, "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    image = decode_image(data, field="f", max_pixels=PIXELS)
    assert [image.getpixel((x, 0)) for x in range(3)] == [(0, 0, 0), (128, 128, 128), (255,) * 3]


def test_32_bit_int_and_float_tiff() -> None:
    ints = Image.new("I", (3, 1))
    for x, value in enumerate((0, 100_000, 200_000)):
        ints.putpixel((x, 0), value)
    image = decode_image(encode(ints, "TIFF"), field="f", max_pixels=PIXELS)
    assert [image.getpixel((x, 0))[0] for x in range(3)] == [0, 128, 255]
    floats = Image.new("F", (3, 1))
    for x, value in enumerate((0.0, 0.5, 1.0)):
        floats.putpixel((x, 0), value)
    image = decode_image(encode(floats, "TIFF"), field="f", max_pixels=PIXELS)
    assert [image.getpixel((x, 0))[0] for x in range(3)] == [0, 128, 255]


def test_one_bit_bmp() -> None:
    bits = Image.new("1", (2, 1))
    bits.putpixel((1, 0), 1)
    image = decode_image(encode(bits, "BMP"), field="f", max_pixels=PIXELS)
    assert [image.getpixel((x, 0)) for x in range(2)] == [(0, 0, 0), (255, 255, 255)]


def test_animated_gif_gives_first_frame() -> None:
    frames = [Image.new("RGB", (4, 4), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 3
    image = decode_image(data, field="f", max_pixels=PIXELS)
    assert image.mode == "RGB"
    assert image.getpixel((1, 1)) == (255, 0, 0)


def test_webp() -> None:
    data = encode(Image.new("RGB", (6, 4), (20, 40, 220)), "WEBP", lossless=True)
    image = decode_image(data, field="f", max_pixels=PIXELS)
    assert (image.mode, image.size, image.getpixel((2, 2))) == ("RGB", (6, 4), (20, 40, 220))
    transparent = encode(Image.new("RGBA", (2, 2), (0, 0, 0, 0)), "WEBP", lossless=True)
    assert decode_image(transparent, field="f", max_pixels=PIXELS).getpixel((0, 0)) == (
        GREY_BACKGROUND
    )


def test_tiff_and_bmp() -> None:
    for fmt in ("TIFF", "BMP"):
        data = encode(Image.new("RGB", (5, 5), (1, 2, 3)), fmt)
        assert decode_image(data, field="f", max_pixels=PIXELS).getpixel((0, 0)) == (1, 2, 3)


def test_result_is_loaded_and_independent(png: bytes) -> None:
    image = decode_image(png, field="f", max_pixels=PIXELS)
    assert image.mode == "RGB"
    assert image.im is not None  # pixel data present, no lazy file behind it
    assert image.copy().tobytes() == image.tobytes()


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"></svg>', "SVG"),
        (b"<svg onload=alert(1)>", "SVG"),
        (b"<!DOCTYPE html><html><body>hi</body></html>", "HTML"),
        (b"\n  <html><script>x</script></html>", "HTML"),
        (b"%PDF-1.7\n...", "PDF"),
        (b'{"image": "nope"}', "JSON"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00", "AVIF"),
        (b"\x00\x00\x00\x1cftypisom\x00\x00\x00\x00", "MP4"),
    ],
)
def test_non_images_named(data: bytes, kind: str) -> None:
    with pytest.raises(InvalidImage, match=kind) as info:
        decode_image(data, field="image_url", max_pixels=PIXELS)
    assert info.value.message.startswith("image_url is ")
    assert "JPEG, PNG, WebP, GIF, BMP or TIFF" in info.value.message


def test_disguised_svg_in_png_data_uri() -> None:
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    ref = parse_image_ref(f"data:image/png;base64,{b64(svg)}", field="image_url", max_bytes=LIMIT)
    with pytest.raises(InvalidImage, match="SVG"):
        decode_image(ref.data or b"", field="image_url", max_pixels=PIXELS)


def test_random_bytes_and_empty() -> None:
    with pytest.raises(InvalidImage, match="not a supported image"):
        decode_image(bytes(range(256)) * 4, field="image_url", max_pixels=PIXELS)
    with pytest.raises(InvalidImage, match="empty"):
        decode_image(b"", field="image_url", max_pixels=PIXELS)


def test_other_pillow_formats_refused() -> None:
    for fmt in ("ICO", "PPM", "TGA"):
        data = encode(Image.new("RGB", (16, 16)), fmt)
        with pytest.raises(InvalidImage):
            decode_image(data, field="f", max_pixels=PIXELS)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def fake_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height``: a decompression bomb's shape."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"\x00" * 4096, 9))
        + _chunk(b"IEND", b"")
    )


def test_decompression_bomb_refused_by_pillow_guard() -> None:
    data = fake_png(100_000, 100_000)
    assert len(data) < 200
    with pytest.raises(InvalidImage, match="too many pixels"):
        decode_image(data, field="image_url", max_pixels=PIXELS)


def test_pixel_limit_checked_from_header_before_decoding() -> None:
    with pytest.raises(InvalidImage) as info:
        decode_image(fake_png(8000, 8000), field="image_url", max_pixels=PIXELS)
    assert (
        info.value.message == "image_url is 8000x8000 (64 megapixels); the limit is 50 megapixels"
    )


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_pixel_limit_above_pillow_warning_level() -> None:
    with pytest.raises(InvalidImage) as info:
        decode_image(fake_png(10_000, 10_000), field="image_url", max_pixels=PIXELS)
    assert info.value.message.endswith("(100 megapixels); the limit is 50 megapixels")


@pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")
def test_pillow_bomb_warning_as_error_is_invalid_image() -> None:
    with pytest.raises(InvalidImage, match="too many pixels"):
        decode_image(fake_png(10_000, 10_000), field="image_url", max_pixels=PIXELS)


def test_small_pixel_limit() -> None:
    data = encode(Image.new("RGB", (20, 10)), "PNG")
    with pytest.raises(InvalidImage, match="20x10 \\(200 pixels\\); the limit is 199 pixels"):
        decode_image(data, field="f", max_pixels=199)
    assert decode_image(data, field="f", max_pixels=200).size == (20, 10)


def test_truncated_jpeg() -> None:
    data = encode(Image.effect_noise((64, 64), 60).convert("RGB"), "JPEG")
    with pytest.raises(InvalidImage, match="truncated or corrupt") as info:
        decode_image(data[: len(data) // 2], field="image_url", max_pixels=PIXELS)
    assert isinstance(info.value, InputError)
    assert "JPEG" in info.value.message


def test_corrupt_png() -> None:
    data = bytearray(encode(Image.effect_noise((32, 32), 60).convert("RGB"), "PNG"))
    data[60:80] = b"\xff" * 20
    with pytest.raises(InvalidImage, match="truncated or corrupt"):
        decode_image(bytes(data), field="image_url", max_pixels=PIXELS)


def test_min_side() -> None:
    data = encode(Image.new("RGB", (300, 200)), "PNG")
    with pytest.raises(InvalidImage) as info:
        decode_image(data, field="image_url", max_pixels=PIXELS, min_side=256)
    assert info.value.message == (
        "image_url is 300x200 pixels; each side must be at least 256 pixels"
    )
    assert decode_image(data, field="image_url", max_pixels=PIXELS, min_side=200).size == (300, 200)


# --- cheap checks at submit (no pixel decoded) --------------------------------------------


def test_inspect_accepts_every_gallery_image_and_refuses_each_cut_in_half() -> None:
    from gallery import GALLERY

    for name, make in GALLERY.items():
        data, _ = make()
        inspect_image(data, field="image_url", max_pixels=PIXELS)
        if name.endswith(".gif"):
            continue  # GIF has no cheap end marker; the worker's decode refuses it
        with pytest.raises(InvalidImage, match="truncated or corrupt"):
            inspect_image(data[: len(data) // 2], field="image_url", max_pixels=PIXELS)


def test_inspect_refuses_a_tiny_png_declaring_49_megapixels() -> None:
    """The audit's bomb: ~100 bytes claiming 7000x7000 (147 MB of pixels to decode)."""
    bomb = fake_png(7000, 7000)
    assert len(bomb) < 200
    with pytest.raises(InvalidImage, match="truncated or corrupt"):
        inspect_image(bomb, field="image_url", max_pixels=PIXELS)
    without_end = bomb[: bomb.index(b"IEND") - 4]
    with pytest.raises(InvalidImage, match="truncated or corrupt"):
        inspect_image(without_end, field="image_url", max_pixels=PIXELS)


def test_inspect_checks_declared_size_like_decoding() -> None:
    with pytest.raises(InvalidImage) as info:
        inspect_image(fake_png(8000, 8000), field="image_url", max_pixels=PIXELS)
    assert info.value.message.endswith("(64 megapixels); the limit is 50 megapixels")
    with pytest.raises(InvalidImage, match="too many pixels"):
        inspect_image(fake_png(100_000, 100_000), field="image_url", max_pixels=PIXELS)
    with pytest.raises(InvalidImage, match="at least 256"):
        inspect_image(fake_png(300, 200), field="image_url", max_pixels=PIXELS, min_side=256)


def test_inspect_accepts_extremely_compressible_but_honest_images() -> None:
    """Lower bounds are sound: real encoders never go below them."""
    for image, fmt, options in [
        (Image.new("RGB", (7000, 7000)), "PNG", {"compress_level": 9}),
        (Image.new("1", (7000, 7000)), "PNG", {"optimize": True}),
        (Image.new("RGB", (4000, 3000), (9, 9, 9)), "JPEG", {"quality": 1, "optimize": True}),
        (Image.new("L", (4000, 3000), 9), "JPEG", {"quality": 1, "optimize": True}),
        (Image.effect_noise((640, 480), 40).convert("RGB"), "JPEG", {"progressive": True}),
    ]:
        inspect_image(encode(image, fmt, **options), field="f", max_pixels=10**8)


def test_inspect_refuses_jpeg_with_too_little_scan_data() -> None:
    data = encode(Image.effect_noise((2000, 2000), 60).convert("RGB"), "JPEG", quality=90)
    end = data.rindex(b"\xff\xd9")
    scan = data.index(b"\xff\xda")
    shortened = data[: scan + 200] + data[end:]  # EOI present, most of the scan gone
    with pytest.raises(InvalidImage, match="JPEG: the file is truncated or corrupt"):
        inspect_image(shortened, field="image_url", max_pixels=PIXELS)


def test_inspect_never_decodes_so_corrupt_pixel_data_fails_in_the_worker() -> None:
    data = bytearray(encode(Image.effect_noise((300, 300), 60).convert("RGB"), "PNG"))
    start = data.index(b"IDAT") + 40
    data[start : start + 200] = b"\xff" * 200  # structure intact, pixels garbage
    inspect_image(bytes(data), field="image_url", max_pixels=PIXELS)
    with pytest.raises(InvalidImage, match="truncated or corrupt"):
        decode_image(bytes(data), field="image_url", max_pixels=PIXELS)


def test_inspect_refuses_cut_webp_bmp_tiff() -> None:
    picture = Image.effect_noise((300, 300), 60).convert("RGB")
    for fmt in ("WEBP", "BMP", "TIFF"):
        data = encode(picture, fmt)
        with pytest.raises(InvalidImage, match=f"{fmt}: the file is truncated"):
            inspect_image(data[:-100], field="image_url", max_pixels=PIXELS)
