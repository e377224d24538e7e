#!/usr/bin/env python3
"""Independent reference for COCO RLE: writes coco_rle_cases.json for mask_rle_test.cpp.

pycocotools is not packaged for Debian, so this restates its maskApi.c (rleEncode,
rleToString, rleFrString) in plain Python, and the C++ encoder is checked against the
strings written here. Masks are small literal grids or shapes given by integer formulas
that the C++ test rebuilds the same way.

    python3 tests/io/coco_rle_reference.py > tests/io/coco_rle_cases.json
"""
import json
import random


def shape_mask(spec):
    if spec["kind"] == "grid":
        return [[int(ch) for ch in row] for row in spec["rows"]]
    h, w = spec["h"], spec["w"]
    if spec["kind"] == "rect":
        y0, y1, x0, x1 = spec["y0"], spec["y1"], spec["x0"], spec["x1"]
        return [[1 if y0 <= y < y1 and x0 <= x < x1 else 0 for x in range(w)] for y in range(h)]
    if spec["kind"] == "circle":
        cy, cx, r = spec["cy"], spec["cx"], spec["r"]
        return [[1 if (y - cy) ** 2 + (x - cx) ** 2 <= r * r else 0 for x in range(w)] for y in range(h)]
    raise ValueError(spec["kind"])


def runs(mask):
    """Column-major runs starting with zeros (maskApi.c rleEncode)."""
    h, w = len(mask), len(mask[0])
    flat = [mask[y][x] for x in range(w) for y in range(h)]
    out, prev, count = [], 0, 0
    for v in flat:
        if v != prev:
            out.append(count)
            count, prev = 0, v
        count += 1
    out.append(count)
    return out


def to_string(cnts):
    """maskApi.c rleToString: delta from the run two back for i > 2, 5-bit chunks + 48."""
    s = []
    for i, c in enumerate(cnts):
        x = c - cnts[i - 2] if i > 2 else c
        more = True
        while more:
            ch = x & 0x1F
            x >>= 5  # arithmetic shift, as on a C long
            more = (x != -1) if (ch & 0x10) else (x != 0)
            if more:
                ch |= 0x20
            s.append(chr(ch + 48))
    return "".join(s)


def from_string(s):
    """maskApi.c rleFrString."""
    cnts, p = [], 0
    while p < len(s):
        x, k, more = 0, 0, True
        while more:
            c = ord(s[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = c & 0x20
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(cnts) > 2:
            x += cnts[-2]
        cnts.append(x)
    return cnts


def main():
    rng = random.Random(7)
    specs = [
        {"kind": "grid", "rows": ["0000", "0110", "0110"]},
        {"kind": "grid", "rows": ["1"]},
        {"kind": "grid", "rows": ["0"]},
        {"kind": "grid", "rows": ["1100", "1000", "0001"]},  # first pixel set: leading 0 run
        {"kind": "grid", "rows": ["".join(rng.choice("01") for _ in range(9)) for _ in range(7)]},
        {"kind": "grid", "rows": ["".join("1" if (x + y) % 2 else "0" for x in range(6)) for y in range(5)]},
        {"kind": "rect", "h": 120, "w": 200, "y0": 30, "y1": 90, "x0": 10, "x1": 150},
        {"kind": "rect", "h": 50, "w": 60, "y0": 0, "y1": 50, "x0": 0, "x1": 60},  # all ones
        {"kind": "rect", "h": 50, "w": 60, "y0": 0, "y1": 0, "x0": 0, "x1": 0},  # empty
        {"kind": "circle", "h": 300, "w": 400, "cy": 150, "cx": 190, "r": 97},
        # Runs past 2^20 and deltas of both signs across many 5-bit chunks.
        {"kind": "rect", "h": 1500, "w": 1200, "y0": 0, "y1": 1500, "x0": 900, "x1": 1100},
        {"kind": "circle", "h": 2000, "w": 1000, "cy": 1700, "cx": 500, "r": 40},
    ]
    cases = []
    for spec in specs:
        mask = shape_mask(spec)
        spec = dict(spec, h=len(mask), w=len(mask[0]))
        cnts = runs(mask)
        s = to_string(cnts)
        assert from_string(s) == cnts
        cases.append({"shape": spec, "counts": cnts if len(cnts) < 400 else None,
                      "area": sum(map(sum, mask)), "string": s})
    print(json.dumps(cases, indent=1))


if __name__ == "__main__":
    main()
