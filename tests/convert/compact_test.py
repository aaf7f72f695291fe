#!/usr/bin/env python3
"""Tests of `bitmamba convert IN OUT --embed f32|f16|q8` (compact files).

    compact_test.py --case files|errors --bitmamba CLI --workdir DIR

files   On the tiny preset and on an odd shape (vocab 701, d_model 73, so
        that every tensor after a compact embedding is misaligned):
        - bytes: the f16 and q8 files are the header, the embedding encoded
          here with NumPy from the format's definition (docs/format.md),
          and every byte after the embedding unchanged;
        - back to f32: f16 -> f32 holds the half values exactly, q8 -> f32
          holds float32(q * scale), and f32 -> f16 -> f32 -> f16 reproduces
          the first f16 file;
        - logits: the engine's logits on each compact file equal the NumPy
          reference's, which decodes the compact embedding itself, within
          the golden test's tolerance; and they equal, bit for bit, the
          engine's logits on the f32 file converted back (same floats in).
errors  Usage errors exit 2; an embedding value beyond the half range, and
        compact files with a bad type tag, a bad shape, a truncated table, a
        NaN half or a negative row scale exit 1 with a message naming the
        embedding, from `convert` and from `logits`, and the reference
        rejects the same files. A failed convert leaves no output and an
        existing OUT as it was.
"""

import argparse
import os
import struct
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
import golden_test  # noqa: E402
import bitmamba_ref as ref  # noqa: E402

HEADER = 20
EMBED_HEAD = 16  # type, ndim, vocab, d_model
TYPE_TAGS = {"f32": 0, "f16": 1, "q8": 3}
TIMEOUT = 300
# (name, make-model arguments)
MODELS = [
    ("tiny", ["--preset", "tiny"]),
    ("v701-d73", ["--vocab", "701", "--d-model", "73", "--layers", "2", "--heads", "2", "--seed", "5"]),
]


class Failure(Exception):
    pass


def run(cmd):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)


def run_ok(cmd):
    p = run(cmd)
    if p.returncode != 0:
        raise Failure(f"{' '.join(cmd)}: exit {p.returncode}\n{p.stderr.strip()}")
    return p


def read(path):
    with open(path, "rb") as f:
        return f.read()


def dims_of(data):
    return struct.unpack_from("<ii", data, 4)  # vocab, d_model


def float_embedding(data):
    """(embedding float32 [V, D], bytes after it) of a plain BIT2 file."""
    vocab, d_model = dims_of(data)
    end = HEADER + EMBED_HEAD + 4 * vocab * d_model
    return np.frombuffer(data, "<f4", vocab * d_model, HEADER + EMBED_HEAD).reshape(vocab, d_model), data[end:]


def encode(embed, kind):
    """The embedding tensor's bytes in `kind`, from the format's definition."""
    vocab, d_model = embed.shape
    head = struct.pack("<4i", TYPE_TAGS[kind], 2, vocab, d_model)
    if kind == "f32":
        return head + embed.astype("<f4").tobytes()
    if kind == "f16":
        return head + embed.astype("<f2").tobytes()  # round to nearest even
    scales = (np.abs(embed).max(axis=1) / np.float32(127)).astype(np.float32)
    safe = np.where(scales == 0, np.float32(1), scales)[:, None]
    codes = np.clip(np.rint(embed / safe), -127, 127).astype(np.int8)
    return head + scales.astype("<f4").tobytes() + codes.tobytes()


def decode(data, kind):
    """The compact file's embedding as float32, from the format's definition."""
    vocab, d_model = dims_of(data)
    at = HEADER + EMBED_HEAD
    if kind == "f16":
        return np.frombuffer(data, "<f2", vocab * d_model, at).astype(np.float32).reshape(vocab, d_model)
    scales = np.frombuffer(data, "<f4", vocab, at)
    codes = np.frombuffer(data, np.int8, vocab * d_model, at + 4 * vocab).reshape(vocab, d_model)
    return codes.astype(np.float32) * scales[:, None]


class Files:
    def __init__(self, args):
        self.cli = args.bitmamba
        self.workdir = args.workdir

    def path(self, name):
        return os.path.join(self.workdir, name)

    def convert(self, src, dst, kind):
        run_ok([self.cli, "convert", src, dst, "--embed", kind])
        return dst

    def engine_logits(self, model, tokens):
        out = model + ".logits"
        run_ok([self.cli, "logits", model, "--tokens", " ".join(map(str, tokens)), "--out", out])
        return np.frombuffer(read(out), "<f4").reshape(len(tokens), -1)

    def check_model(self, name, make_args):
        src = self.path(f"{name}.bin")
        run_ok([self.cli, "make-model"] + make_args + ["--out", src])
        base = read(src)
        embed, rest = float_embedding(base)
        tokens = golden_test.fixed_tokens(embed.shape[0])
        notes = []
        for kind in ("f16", "q8"):
            packed = self.convert(src, self.path(f"{name}.{kind}.bin"), kind)
            data = read(packed)
            if data != base[:HEADER] + encode(embed, kind) + rest:
                raise Failure(f"{name} {kind}: bytes differ from the format's encoding of the embedding")
            back = self.convert(packed, self.path(f"{name}.{kind}.f32.bin"), "f32")
            if read(back) != base[:HEADER] + encode(decode(data, kind), "f32") + rest:
                raise Failure(f"{name} {kind} -> f32: not the decoded values with the rest unchanged")
            if kind == "f16":
                again = self.convert(back, self.path(f"{name}.f16.again.bin"), "f16")
                if read(again) != data:
                    raise Failure(f"{name}: f32 -> f16 -> f32 -> f16 changed the file")
            got = self.engine_logits(packed, tokens)
            if not np.array_equal(got, self.engine_logits(back, tokens)):
                raise Failure(f"{name} {kind}: logits differ from those of the f32 file converted back")
            errs, flips = golden_test.compare(ref.Model(packed), tokens, got.astype(np.float64))
            notes.append(f"{kind} {len(data)} bytes, max err/rms {errs.max():.2g}"
                         + (f" ({len(flips)} int8 flips replayed)" if flips else ""))
        return f"{name} ({len(base)} bytes): " + "; ".join(notes)


def case_files(args):
    files = Files(args)
    for name, make_args in MODELS:
        print("PASS", files.check_model(name, make_args), flush=True)


def patched(data, offset, fmt, value):
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


def bad_files(f32, f16, q8):
    """(name, bytes) of malformed compact files."""
    vocab, d_model = dims_of(f16)
    values_at = HEADER + EMBED_HEAD
    return [
        ("unknown type tag 4", patched(f16, HEADER, "<i", 4)),
        ("ndim 3", patched(f16, HEADER + 4, "<i", 3)),
        ("d_model off by one", patched(q8, HEADER + 12, "<i", d_model + 1)),
        ("f16 table truncated", f16[:values_at + 2 * vocab * d_model - 1]),
        ("NaN half", patched(f16, values_at + 2 * 7, "<H", 0x7E00)),
        ("infinite half", patched(f16, values_at, "<H", 0xFC00)),
        ("negative row scale", patched(q8, values_at + 4 * 3, "<f", -0.5)),
        ("NaN row scale", patched(q8, values_at, "<I", 0x7FC00000)),
        ("q8 scales truncated", q8[:values_at + 4 * vocab - 2]),
        ("half tag on a float32 table", patched(f32, HEADER, "<i", 1)),
    ]


def expect_error(cmd, status, what, needle):
    p = run(cmd)
    if p.returncode != status or needle not in p.stderr:
        raise Failure(f"{what}: exit {p.returncode}, stderr {p.stderr.strip()!r}; "
                      f"expected exit {status} and a message with {needle!r}")
    return p.stderr.strip().splitlines()[-1]


def case_errors(args):
    cli, work = args.bitmamba, args.workdir
    src = os.path.join(work, "small.bin")
    run_ok([cli, "make-model", "--vocab", "96", "--d-model", "32", "--layers", "2", "--heads", "4",
            "--out", src])
    out = os.path.join(work, "out.bin")
    for extra in (["--embed", "f8"], [], ["--embed", "f16", "--tables", "2"]):
        expect_error([cli, "convert", src, out] + extra, 2, f"usage {extra}", "convert")
    expect_error([cli, "convert", src, "--embed", "f16"], 2, "one path", "convert")

    # A value past 65504 has no half; q8 still takes it.
    data = bytearray(read(src))
    struct.pack_into("<f", data, HEADER + EMBED_HEAD + 4 * (5 * 32 + 3), 70000.0)
    big = os.path.join(work, "big.bin")
    with open(big, "wb") as f:
        f.write(data)
    with open(out, "wb") as f:
        f.write(b"keep me")
    print("PASS half range:", expect_error([cli, "convert", big, out, "--embed", "f16"], 1, "half range",
                                           "half range"))
    if read(out) != b"keep me" or os.path.exists(out + ".partial"):
        raise Failure("a failed convert changed OUT or left OUT.partial")
    run_ok([cli, "convert", big, os.path.join(work, "big.q8.bin"), "--embed", "q8"])

    compact = {}
    for kind in ("f16", "q8"):
        path = os.path.join(work, f"small.{kind}.bin")
        run_ok([cli, "convert", src, path, "--embed", kind])
        compact[kind] = read(path)
    for name, blob in bad_files(read(src), compact["f16"], compact["q8"]):
        bad = os.path.join(work, "bad.bin")
        with open(bad, "wb") as f:
            f.write(blob)
        msg = expect_error([cli, "logits", bad, "--tokens", "1 2", "--out", bad + ".logits"], 1,
                           f"logits on {name}", "embed")
        expect_error([cli, "convert", bad, out, "--embed", "f32"], 1, f"convert of {name}", "embed")
        try:
            ref.Model(bad)
            raise Failure(f"{name}: the reference accepted the file")
        except ref.FormatError:
            pass
        print(f"PASS {name}: {msg}", flush=True)
    if read(out) != b"keep me":
        raise Failure("a failed convert changed OUT")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--case", required=True, choices=["files", "errors"])
    ap.add_argument("--bitmamba", required=True)
    ap.add_argument("--workdir", required=True)
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    try:
        {"files": case_files, "errors": case_errors}[args.case](args)
    except (Failure, golden_test.Failure, ref.FormatError, subprocess.TimeoutExpired) as e:
        print(f"FAIL: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
