#!/usr/bin/env python3
"""Pillow (and numpy) as the independent reference for the falcon_io tests.

    pillow_reference.py decode OUT      images of every supported kind, written by Pillow
                                        (or by hand where Pillow cannot write them), and
                                        what Pillow decodes them to
    pillow_reference.py resize OUT      random images of every mode and Image.resize(size)
    pillow_reference.py preprocess OUT  the reference's preprocessing of the decode images
    pillow_reference.py read DIR        what Pillow decodes every *.png in DIR to

Each command writes OUT/manifest.json listing raw files (pixels row-major, interleaved;
"1" as 0/255 bytes, 16-bit gray as little-endian uint16, preprocessing as float32).

The reference (Falcon-Perception) locks Pillow 12.2. Where an older installed Pillow
differs, the 12.2 behaviour is produced with the older Pillow's own operations:
  * images over 100x taller than wide are resized vertically first (12.2's Image.resize);
  * 16-bit gray PNGs open as "I" before 10.3 (resized like "I;16" unless values overflow,
    so those test images keep mid-range values).
"""
import io
import json
import math
import os
import struct
import sys
import warnings
import zlib

import numpy as np
import PIL
from PIL import Image

PILLOW = tuple(int(x) for x in PIL.__version__.split(".")[:2])
rng = np.random.default_rng(1234)
warnings.filterwarnings("ignore")  # Pillow warns about palette transparency on convert


# ---------------------------------------------------------------- helpers

def smooth_image(h, w, channels, seed):
    """Gradients plus noise: compressible, but with edges for JPEG and the filters."""
    r = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    planes = []
    for c in range(channels):
        fx, fy = r.uniform(0.02, 0.3, 2)
        base = 127 + 100 * np.sin(x * fx + c) * np.cos(y * fy - c)
        planes.append(base + r.normal(0, 12, (h, w)))
    a = np.clip(np.stack(planes, -1), 0, 255).astype(np.uint8)
    return a[..., 0] if channels == 1 else a


def pixels_of(im):
    """Raw bytes of a Pillow image in falcon_io's layout."""
    if im.mode == "1":
        return (np.array(im, dtype=np.uint8) * 255).astype(np.uint8).tobytes()
    if im.mode in ("I", "I;16"):
        return np.array(im).astype("<u2").tobytes()
    return im.tobytes()


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def raw_png(w, h, depth, color_type, samples, extra=b"", interlace=False):
    """PNG written by hand (Pillow cannot write 2/4-bit gray, 16-bit colour or Adam7).
    samples: uint array [h, w, channels] of values < 2**depth."""
    def pack_rows(a):
        rows = []
        for row in a:
            flat = row.reshape(-1)
            if depth == 16:
                data = flat.astype(">u2").tobytes()
            elif depth == 8:
                data = flat.astype(np.uint8).tobytes()
            else:
                per_byte = 8 // depth
                padded = np.zeros(((len(flat) + per_byte - 1) // per_byte) * per_byte, np.uint8)
                padded[: len(flat)] = flat
                grouped = padded.reshape(-1, per_byte)
                shifts = [(per_byte - 1 - i) * depth for i in range(per_byte)]
                data = bytes(int(sum(int(v) << s for v, s in zip(g, shifts))) for g in grouped)
            rows.append(b"\0" + data)
        return b"".join(rows)

    if interlace:
        passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
        raw = b"".join(pack_rows(samples[y0::dy, x0::dx]) for x0, y0, dx, dy in passes
                       if samples[y0::dy, x0::dx].size)
    else:
        raw = pack_rows(samples)
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 1 if interlace else 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def pillow_resize(im, size):
    """Image.resize(size) as Pillow 12.2 does it, whatever Pillow is installed."""
    if im.size == size:
        return im.copy()
    tall = im.size[1] > im.size[0] * 100 and size[1] < im.size[1]
    if PILLOW >= (12, 2) or not tall or im.mode in ("1", "P"):
        return im.resize(size)
    premultiplied = {"LA": "La", "RGBA": "RGBa"}.get(im.mode)
    work = im.convert(premultiplied) if premultiplied else im
    work = work.resize((im.size[0], size[1]), Image.BICUBIC, box=(0, 0) + im.size)
    work = work.resize(size, Image.BICUBIC, box=(0, 0, im.size[0], size[1]))
    return work.convert(im.mode) if premultiplied else work


def write(out, name, data):
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
    return name


# ---------------------------------------------------------------- decode

def decode_cases():
    """(file name, encoded bytes) of every kind of input the engine supports."""
    cases = []

    def save(name, im, fmt, **kw):
        b = io.BytesIO()
        im.save(b, fmt, **kw)
        cases.append((name, b.getvalue()))

    rgb = Image.fromarray(smooth_image(37, 53, 3, 1), "RGB")
    rgba = Image.fromarray(smooth_image(29, 41, 4, 2), "RGBA")
    gray = Image.fromarray(smooth_image(31, 45, 1, 3), "L")
    # PNG in Pillow's own modes.
    save("png_rgb.png", rgb, "PNG")
    save("png_rgba.png", rgba, "PNG")
    save("png_l.png", gray, "PNG")
    save("png_la.png", Image.fromarray(smooth_image(23, 19, 2, 4), "LA"), "PNG")
    save("png_1.png", gray.convert("1"), "PNG")
    pal = rgb.convert("P", palette=Image.ADAPTIVE, colors=200)
    save("png_p8.png", pal, "PNG")
    save("png_p8_trns.png", pal, "PNG", transparency=bytes(range(0, 250, 5)))
    for bits, colors in ((1, 2), (2, 4), (4, 16)):
        save(f"png_p{bits}.png", rgb.convert("P", palette=Image.ADAPTIVE, colors=colors), "PNG", bits=bits)
    mid16 = (smooth_image(27, 33, 1, 5).astype(np.uint16) * 128 + 16384).astype(np.uint16)
    save("png_i16.png", Image.fromarray(mid16), "PNG")
    low16 = np.random.default_rng(12).integers(0, 600, (9, 14)).astype(np.uint16)  # convert() clips at 255
    save("png_i16_low.png", Image.fromarray(low16), "PNG")
    # PNG kinds Pillow reads but cannot write.
    r = np.random.default_rng(6)
    for depth in (2, 4):
        s = r.integers(0, 1 << depth, (13, 21, 1))
        cases.append((f"png_l{depth}.png", raw_png(21, 13, depth, 0, s)))
    cases.append(("png_rgb16.png", raw_png(17, 11, 16, 2, r.integers(0, 65536, (11, 17, 3)))))
    cases.append(("png_rgba16.png", raw_png(17, 11, 16, 6, r.integers(0, 65536, (11, 17, 4)))))
    cases.append(("png_la16.png", raw_png(15, 9, 16, 4, r.integers(0, 65536, (9, 15, 2)))))
    cases.append(("png_rgb_interlaced.png", raw_png(19, 23, 8, 2, r.integers(0, 256, (23, 19, 3)), interlace=True)))
    cases.append(("png_l4_interlaced.png", raw_png(11, 10, 4, 0, r.integers(0, 16, (10, 11, 1)), interlace=True)))
    cases.append(("png_l_trns.png", raw_png(8, 6, 8, 0, r.integers(0, 256, (6, 8, 1)),
                                             extra=chunk(b"tRNS", struct.pack(">H", 7)))))
    # JPEG: the subsamplings, progressive, odd sizes, gray, CMYK.
    for sub, tag in ((0, "444"), (1, "422"), (2, "420")):
        save(f"jpeg_{tag}.jpg", rgb, "JPEG", quality=90, subsampling=sub)
        save(f"jpeg_{tag}_progressive.jpg", rgb, "JPEG", quality=75, subsampling=sub, progressive=True)
    odd = Image.fromarray(smooth_image(17, 33, 3, 7), "RGB")
    save("jpeg_420_odd.jpg", odd, "JPEG", quality=85, subsampling=2)
    save("jpeg_420_optimized.jpg", odd, "JPEG", quality=60, subsampling=2, optimize=True)
    save("jpeg_gray.jpg", gray, "JPEG", quality=90)
    save("jpeg_gray_progressive.jpg", gray, "JPEG", quality=90, progressive=True)
    save("jpeg_cmyk.jpg", Image.fromarray(smooth_image(21, 26, 4, 8), "CMYK"), "JPEG", quality=90)
    # WebP: lossy and lossless, with and without alpha.
    save("webp_lossy.webp", rgb, "WEBP", quality=80)
    save("webp_lossless.webp", rgb, "WEBP", lossless=True)
    save("webp_lossy_alpha.webp", rgba, "WEBP", quality=80)
    save("webp_lossless_alpha.webp", rgba, "WEBP", lossless=True)
    return cases


def cmd_decode(out):
    manifest = []
    for name, data in decode_cases():
        write(out, name, data)
        im = Image.open(io.BytesIO(data))
        im.load()
        entry = {"file": name, "mode": im.mode, "width": im.size[0], "height": im.size[1],
                 "pixels": write(out, name + ".pixels", pixels_of(im)),
                 "rgb": write(out, name + ".rgb", im.convert("RGB").tobytes())}
        if im.mode == "P":
            entry["palette"] = write(out, name + ".palette", bytes(im.getpalette()))
        manifest.append(entry)
    return manifest


# ---------------------------------------------------------------- resize

def random_image(mode, w, h):
    if mode == "P":
        im = Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8), "P")
        im.putpalette(rng.integers(0, 256, 768, dtype=np.uint8).tobytes())
        return im
    if mode == "1":
        return Image.fromarray(rng.integers(0, 2, (h, w), dtype=np.uint8) * 255, "L").convert("1")
    if mode == "I;16":
        # Mid-range values: no bicubic overshoot past 0..65535, where old Pillow's "I"
        # path and 12.2's "I;16" path agree.
        v = rng.integers(16384, 49152, (h, w))
        return Image.fromarray(v.astype(np.uint16)) if PILLOW >= (12, 2) else Image.fromarray(v.astype(np.int32), "I")
    channels = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4, "CMYK": 4}[mode]
    a = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
    if mode == "RGBA" or mode == "LA":
        a[..., -1] = rng.choice([0, 255, 1, 128, 200], (h, w))  # edge alphas included
    return Image.fromarray(a[..., 0] if channels == 1 else a, mode)


def resize_sizes():
    sizes = [((1, 1), (5, 3)), ((7, 5), (1, 1)), ((300, 2), (17, 40)), ((2, 300), (40, 17)),
             ((500, 400), (37, 29)), ((31, 17), (300, 200)), ((64, 64), (64, 16)), ((64, 64), (16, 64)),
             ((3, 400), (3, 150)), ((4, 900), (2, 120)), ((5, 700), (9, 300)), ((1000, 3), (250, 2))]
    for _ in range(14):
        w, h = (int(v) for v in rng.integers(1, 260, 2))
        sizes.append(((w, h), tuple(int(v) for v in rng.integers(1, 260, 2))))
    return sizes


def cmd_resize(out):
    manifest = []
    for mode in ("L", "LA", "RGB", "RGBA", "CMYK", "P", "1", "I;16"):
        for i, ((w, h), size) in enumerate(resize_sizes()):
            im = random_image(mode, w, h)
            stem = f"{mode.replace(';', '')}_{i}"
            entry = {"mode": mode, "in_w": w, "in_h": h, "out_w": size[0], "out_h": size[1],
                     "input": write(out, stem + ".in", pixels_of(im)),
                     "expected": write(out, stem + ".out", pixels_of(pillow_resize(im, size)))}
            if mode == "P":
                entry["palette"] = write(out, stem + ".palette", bytes(im.getpalette()))
            manifest.append(entry)
    return manifest


# ---------------------------------------------------------------- preprocess

def resize_if_necessary(im, mn, mx):  # data.py resize_image_if_necessary
    w, h = im.size
    ar = w / h
    if mn <= w <= mx and mn <= h <= mx:
        return im
    vertical = w < h
    if w < mn or h < mn:
        nw, nh = (mn, int(mn / ar)) if vertical else (int(mn * ar), mn)
    else:
        nw, nh = (mx, int(mx / ar)) if vertical else (int(mx * ar), mx)
    if nw > mx:
        nw, nh = mx, int(mx / ar)
    if nh > mx:
        nw, nh = int(mx * ar), mx
    return pillow_resize(im, (nw, nh))


def smart_resize(a, factor=16, min_pixels=56 * 56, max_pixels=28 * 28 * 1280):  # data.py
    h, w = a.shape[:2]
    if h < factor or w < factor:
        raise ValueError("side under the factor")
    if max(h, w) / min(h, w) > 200:
        raise ValueError("aspect ratio over 200")
    hb, wb = round(h / factor) * factor, round(w / factor) * factor
    if hb * wb > max_pixels:
        beta = np.sqrt((h * w) / max_pixels)
        hb, wb = math.floor(h / beta / factor) * factor, math.floor(w / beta / factor) * factor
    elif hb * wb < min_pixels:
        beta = np.sqrt(min_pixels / (h * w))
        hb, wb = math.ceil(h * beta / factor) * factor, math.ceil(w * beta / factor) * factor
    return np.array(pillow_resize(Image.fromarray(a), (wb, hb)))


def reference_pixels(im, mn, mx):
    im = resize_if_necessary(im, mn, mx)
    if im.mode != "RGB":
        im = im.convert("RGB")
    a = smart_resize(np.array(im))
    x = a.astype(np.float32) * (1 / 255)
    mean = np.array([0.5] * 3, dtype=np.float32)[None, None, :]
    std = np.array([0.5] * 3, dtype=np.float32)[None, None, :]
    return ((x.astype(np.float32) - mean) / std).astype(np.float32)


def cmd_preprocess(out):
    manifest = []
    extra = []
    # A tall image (over 100x taller than wide; kept as is by [16, 4096], then shortened by
    # smart_resize, which reaches 12.2's vertical-first order) and a wide one.
    tall = Image.fromarray(smooth_image(2600, 20, 3, 9), "RGB")
    wide = Image.fromarray(smooth_image(18, 1500, 3, 10), "RGB")
    for name, im in (("tall.png", tall), ("wide.png", wide)):
        b = io.BytesIO()
        im.save(b, "PNG")
        extra.append((name, b.getvalue()))
    big = io.BytesIO()
    Image.fromarray(smooth_image(1100, 1500, 3, 11), "RGB").save(big, "JPEG", quality=85)
    extra.append(("big.jpg", big.getvalue()))
    for name, data in decode_cases() + extra:
        if name == "png_i16_low.png" and PILLOW < (12, 2):
            continue  # bicubic undershoot below 0 is clipped by 12.2's "I;16" path, not by old "I"
        write(out, name, data)
        for mn, mx in ((256, 1024), (64, 1024), (64, 128), (20, 40), (16, 4096)):
            im = Image.open(io.BytesIO(data))
            try:
                x = reference_pixels(im, mn, mx)
            except ValueError:  # the reference refuses it: too small or too elongated
                manifest.append({"file": name, "min": mn, "max": mx, "error": True})
                continue
            stem = f"{name}_{mn}_{mx}"
            manifest.append({"file": name, "min": mn, "max": mx, "width": x.shape[1], "height": x.shape[0],
                             "expected": write(out, stem + ".f32", x.tobytes())})
    return manifest


def cmd_read(directory):
    manifest = []
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".png"):
            continue
        im = Image.open(os.path.join(directory, name))
        im.load()
        manifest.append({"file": name, "mode": im.mode, "width": im.size[0], "height": im.size[1],
                         "pixels": write(directory, name + ".pixels", pixels_of(im))})
    return manifest


def main():
    command, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    manifest = {"decode": cmd_decode, "resize": cmd_resize, "preprocess": cmd_preprocess, "read": cmd_read}[command](out)
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump({"pillow": PIL.__version__, "cases": manifest}, f, indent=1)


if __name__ == "__main__":
    main()
