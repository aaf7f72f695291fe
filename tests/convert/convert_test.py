#!/usr/bin/env python3
"""Tests of scripts/convert_checkpoint.py on synthetic Flax checkpoints.

    convert_test.py --case tiny|errors|255m --bitmamba CLI --workdir DIR

tiny    The tiny preset's shapes (GPT-2 vocab, d_model 128, 2 layers):
        - the converted file's bytes equal the reference exporter's rules
          (exporter_rules.py) applied to the same weights;
        - the engine's logits on the converted file (`CLI logits`) equal the
          float reference (tests/reference) run on the checkpoint's own float
          weights, ternarised in float64 as the model defines them, within
          the golden test's tolerance. Its kernels are kept away from the
          round() tie at |w| = mean|w| / 2 (flax_writer.separate_from_ties),
          so float32 and float64 agree on every code and a difference can
          only be a misplaced or misread tensor.
        A second, smaller checkpoint without the 'params' level, in bfloat16,
        with the embedding in Flax's chunked form, also has the exporter's
        bytes; in it one kernel holds exact ties (+-0.5, +-1.5 at mean|w| = 1)
        whose codes must round half to even, and one kernel is all zero
        (scale 1.0).
errors  Each malformed checkpoint gets exit status 1, a message naming the
        problem, and no output file (an existing one is left as it was).
255m    The 255M shapes, in bfloat16: bytes equal the exporter's rules, and
        the engine loads the file and runs a token.
"""

import argparse
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CONVERTER = os.path.join(ROOT, "scripts", "convert_checkpoint.py")
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
import exporter_rules  # noqa: E402
import flax_writer  # noqa: E402
import golden_test  # noqa: E402
import bitmamba_ref as ref  # noqa: E402

TINY = (50257, 128, 2, 4)
SMALL = (96, 32, 2, 4)
SHAPE_255M = (50257, 1024, 24, 16)
TIMEOUT = 300


class Failure(Exception):
    pass


def convert(src, dst):
    return subprocess.run([sys.executable, CONVERTER, src, dst], capture_output=True,
                          text=True, timeout=TIMEOUT)


def convert_ok(src, dst):
    p = convert(src, dst)
    if p.returncode != 0:
        raise Failure(f"conversion of {os.path.basename(src)} failed (exit {p.returncode}): {p.stderr.strip()}")


def check_bytes(out, get, dims, what):
    diff = exporter_rules.first_difference(out, exporter_rules.expected_chunks(get, dims))
    if diff:
        raise Failure(f"{what}: not the reference exporter's bytes: {diff}")


def getter(leaves):
    table = dict(leaves)
    return lambda path: table[path]() if callable(table[path]) else table[path]


def float64_bitlinear(norm, kernel):
    """A BitLinear of the float reference from Flax weights: [in, out] kernel
    ternarised as the model defines it, in float64."""
    w = kernel.astype(np.float64).T
    scale = 1.0 / np.mean(np.abs(w))
    codes = np.clip(np.rint(w * scale), -1, 1).astype(np.float32)
    return ref.BitLinear(norm.astype(np.float64), codes, scale)


def reference_model(get, dims):
    """bitmamba_ref's model built from the checkpoint's float weights, not
    from any BIT2 file."""
    m = ref.Model.__new__(ref.Model)
    m.vocab, m.d_model, m.n_layers, m.n_heads = dims
    m.d_inner = 2 * m.d_model
    m.head_dim = m.d_inner // m.n_heads
    f64 = lambda path: get(path).astype(np.float64)  # noqa: E731
    m.embed = f64("Embed_0/embedding")
    m.layers = []
    for i in range(m.n_layers):
        b = f"BitMambaBlock_{i}/"
        layer = ref.Layer()
        layer.in_proj = float64_bitlinear(get(b + "BitLinear_0/RMSNorm_0/scale"), get(b + "BitLinear_0/kernel"))
        layer.conv_w = f64(b + "Conv_0/kernel")[:, 0, :].T      # [4, 1, E] -> [E, 4], tap 3 = newest
        layer.conv_b = f64(b + "Conv_0/bias")
        layer.dt_bias = f64(b + "dt_bias")
        layer.A_log = f64(b + "A_log")
        layer.D = f64(b + "D")
        layer.out_proj = float64_bitlinear(get(b + "BitLinear_1/RMSNorm_0/scale"), get(b + "BitLinear_1/kernel"))
        m.layers.append(layer)
    m.norm_f = f64("RMSNorm_0/scale")
    m.lm_head = float64_bitlinear(get("BitLinear_0/RMSNorm_0/scale"), get("BitLinear_0/kernel"))
    return m


def case_tiny(args):
    src, out = os.path.join(args.workdir, "tiny.msgpack"), os.path.join(args.workdir, "tiny.bin")
    leaves = [(p, f()) for p, f in flax_writer.synthetic_leaves(TINY, seed=1, separated=True)]
    flax_writer.write_checkpoint(src, leaves)
    convert_ok(src, out)
    get = getter(leaves)
    check_bytes(out, get, TINY, "tiny")
    golden = golden_test.Golden(args.bitmamba, args.workdir, None)
    tokens = golden_test.fixed_tokens(TINY[0])
    engine = golden.engine_logits(out, tokens, "tiny")
    errs, flips = golden_test.compare(reference_model(get, TINY), tokens, engine)
    print(f"PASS tiny: exporter's bytes; engine logits on the converted file vs the float "
          f"reference of the checkpoint: max err/rms {errs.max():.3g} over {len(tokens)} tokens "
          f"({len(flips)} int8 flips replayed), tolerance {golden_test.TOLERANCE:g}")
    case_small_variants(args)


def tie_kernel(shape):
    """Values +-0.5 and +-1.5 only, mean |w| exactly 1, so w * scale sits on
    round()'s ties: half to even gives 0, 1, 0, -1 (half away: 1, 1, -1, -1)."""
    pattern = np.array([0.5, 1.5, -0.5, -1.5], np.float32)
    index = np.add.outer(np.arange(shape[0]), np.arange(shape[1]))
    return pattern[index % 4]


def ternary_codes_at(path, offset, rows, cols):
    """(scale, codes) of the ternary tensor whose header starts at offset."""
    with open(path, "rb") as f:
        f.seek(offset)
        head = np.frombuffer(f.read(16), "<i4")
        scale = float(np.frombuffer(head[3:].tobytes(), "<f4")[0])
        packed = np.frombuffer(f.read((rows * cols + 3) // 4), np.uint8)
    if tuple(head[:3]) != (2, rows, cols):
        raise Failure(f"no [{rows}, {cols}] ternary header at byte {offset}: {list(head[:3])}")
    codes = ((packed[:, None] >> np.array([0, 2, 4, 6], np.uint8)) & 3).reshape(-1)[:rows * cols]
    return scale, codes.astype(np.int8).reshape(rows, cols) - 1


def out_proj_offset(dims, layer):
    """Byte offset of layers.N.out_proj's header in a BIT2 file of dims."""
    V, D, L, H = dims
    E = 2 * D
    fl = lambda *shape: 8 + 4 * len(shape) + 4 * int(np.prod(shape))  # noqa: E731
    tern = lambda r, c: 16 + (r * c + 3) // 4  # noqa: E731
    block = fl(D) + tern(2 * E + 3 * H, D) + fl(E, 1, 4) + fl(E) + 2 * fl(H) + 2 * fl(E) + tern(D, E)
    return 20 + fl(V, D) + layer * block + block - tern(D, E)


def case_small_variants(args):
    src, out = os.path.join(args.workdir, "small.msgpack"), os.path.join(args.workdir, "small.bin")
    V, D, L, H = SMALL
    leaves = [(p, flax_writer.bfloat16_round_trip(f())) for p, f in flax_writer.synthetic_leaves(SMALL, seed=2)]
    table = dict(leaves)
    table["BitMambaBlock_0/BitLinear_1/kernel"] = tie_kernel((2 * D, D))
    table["BitMambaBlock_1/BitLinear_1/kernel"] = np.zeros((2 * D, D), np.float32)
    leaves = list(table.items())
    flax_writer.write_checkpoint(src, leaves, wrap_params=False, dtype="bfloat16", chunk_bytes=4096)
    convert_ok(src, out)
    check_bytes(out, getter(leaves), SMALL, "small bfloat16 chunked")
    scale, codes = ternary_codes_at(out, out_proj_offset(SMALL, 0), D, 2 * D)
    want = {0.5: 0, 1.5: 1, -0.5: 0, -1.5: -1}
    expect = np.vectorize(want.get)(tie_kernel((2 * D, D)).T)
    if scale != 1.0 or not np.array_equal(codes, expect):
        raise Failure(f"tie kernel: scale {scale}, codes {codes[0, :8]} (want 1.0, {expect[0, :8]}): "
                      "round() must take halves to even")
    scale, codes = ternary_codes_at(out, out_proj_offset(SMALL, 1), D, 2 * D)
    if scale != 1.0 or np.any(codes != 0):
        raise Failure(f"all-zero kernel: scale {scale}, codes not all 0 (want scale 1.0)")
    print("PASS small: no 'params' level, bfloat16, chunked arrays: exporter's bytes; "
          "ties round half to even; an all-zero kernel gets scale 1.0")


def mutated(name, mutate):
    leaves = dict((p, f()) for p, f in flax_writer.synthetic_leaves(SMALL, seed=3))
    mutate(leaves)
    return name, list(leaves.items())


def set_nan(leaves):
    leaves["BitMambaBlock_1/BitLinear_0/kernel"][3, 5] = np.nan


def error_cases():
    """(name, writer of the bad input, substring the message must contain)."""
    D, E = SMALL[1], 2 * SMALL[1]
    trees = [
        mutated("missing tensor", lambda t: t.pop("BitMambaBlock_1/D")),
        mutated("extra tensor", lambda t: t.update({"BitMambaBlock_0/Conv_1/bias": np.zeros(E, np.float32)})),
        mutated("wrong shape", lambda t: t.update({"BitMambaBlock_1/Conv_0/kernel": np.zeros((4, 1, E - 1), np.float32)})),
        mutated("missing block", lambda t: [t.pop(p) for p in list(t) if p.startswith("BitMambaBlock_0/")]),
        mutated("NaN", set_nan),
        mutated("integer tensor", lambda t: t.update({"RMSNorm_0/scale": flax_writer.ndarray_ext(
            (D,), "int32", np.ones(D, np.int32).tobytes())})),
    ]
    expect = {"missing tensor": "missing tensor BitMambaBlock_1/D",
              "extra tensor": "unexpected tensor BitMambaBlock_0/Conv_1/bias",
              "wrong shape": f"BitMambaBlock_1/Conv_0/kernel has shape [4, 1, {E - 1}], expected [4, 1, {E}]",
              "missing block": "missing block BitMambaBlock_0 (blocks must be numbered 0..N-1)",
              "NaN": "BitMambaBlock_1/BitLinear_0/kernel has a NaN or infinite value at index [3, 5]",
              "integer tensor": "dtype 'int32'"}
    cases = [(name, lambda path, leaves=leaves: flax_writer.write_checkpoint(path, leaves), expect[name])
             for name, leaves in trees]
    cases += [
        ("bad extension type", lambda p: write_bytes(p, msgpack_bytes({"params": flax_writer.msgpack.ExtType(3, b"x")})),
         "extension type 3"),
        ("garbage", lambda p: write_bytes(p, b"\xc1" + bytes(range(200))), "not a msgpack file"),
        ("truncated", lambda p: write_truncated(p), "not a msgpack file"),
        ("trailing bytes", lambda p: write_bytes(p, msgpack_bytes({"params": {}}) + b"\0"),
         "trailing bytes after the checkpoint at byte 9"),  # 0x81, fixstr "params", 0x80
        ("empty file", lambda p: write_bytes(p, b""), "the file is empty"),
        ("not a map", lambda p: write_bytes(p, msgpack_bytes([1, 2, 3])), "not a map of parameters"),
        ("short array data", lambda p: write_bytes(p, msgpack_bytes(
            {"Embed_0": {"embedding": flax_writer.ndarray_ext((4, 4), "float32", b"\0" * 60)}})), "carries 60 bytes"),
        ("no such file", None, "No such file"),
    ]
    return cases


def msgpack_bytes(obj):
    return flax_writer.msgpack.packb(obj, use_bin_type=True)


def write_bytes(path, data):
    with open(path, "wb") as f:
        f.write(data)


def write_truncated(path):
    flax_writer.write_checkpoint(path, flax_writer.synthetic_leaves(SMALL, seed=4))
    data = open(path, "rb").read()
    write_bytes(path, data[:len(data) // 2])


def case_errors(args):
    keep = b"an existing file the converter must not touch"
    failed = []
    for i, (name, write, expect) in enumerate(error_cases()):
        src = os.path.join(args.workdir, f"bad{i}.msgpack")
        out = os.path.join(args.workdir, f"bad{i}.bin")
        for path in (src, out, out + ".partial"):
            if os.path.exists(path):
                os.remove(path)
        if write:
            write(src)
        if i % 2:
            write_bytes(out, keep)
        p = convert(src, out)
        problems = []
        if p.returncode != 1:
            problems.append(f"exit {p.returncode}, expected 1")
        if expect not in p.stderr:
            problems.append(f"message {p.stderr.strip()!r} lacks {expect!r}")
        if "Traceback" in p.stderr:
            problems.append("a Python traceback instead of a message")
        left = open(out, "rb").read() if os.path.exists(out) else None
        if left != (keep if i % 2 else None):
            problems.append("the output file was created or changed")
        if os.path.exists(out + ".partial"):
            problems.append("a partial output file was left behind")
        if problems:
            failed.append(f"{name}: " + "; ".join(problems))
        else:
            print(f"PASS {name}: {p.stderr.strip()}")
    if failed:
        raise Failure("\n    ".join(failed))


def case_255m(args):
    src, out = os.path.join(args.workdir, "255m.msgpack"), os.path.join(args.workdir, "255m.bin")
    # bfloat16 halves the bytes written and read (the tiny case covers float32).
    leaves = [(p, lambda f=f: flax_writer.bfloat16_round_trip(f()))
              for p, f in flax_writer.synthetic_leaves(SHAPE_255M, seed=5)]
    flax_writer.write_checkpoint(src, leaves, dtype="bfloat16")
    convert_ok(src, out)
    check_bytes(out, getter(leaves), SHAPE_255M, "255m")
    logits = os.path.join(args.workdir, "255m.logits")
    p = subprocess.run([args.bitmamba, "logits", out, "--tokens", "464", "--out", logits],
                       capture_output=True, text=True, timeout=TIMEOUT)
    if p.returncode != 0 or os.path.getsize(logits) != 4 * SHAPE_255M[0]:
        raise Failure(f"the engine did not run the converted 255M file: {p.stderr.strip()}")
    size = os.path.getsize(out)
    for path in (src, out, logits):  # ~0.8 GB between them
        os.remove(path)
    print(f"PASS 255m: exporter's bytes ({size} bytes); the engine loads it and runs a token")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--case", required=True, choices=["tiny", "errors", "255m"])
    ap.add_argument("--bitmamba", required=True)
    ap.add_argument("--workdir", required=True)
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    try:
        {"tiny": case_tiny, "errors": case_errors, "255m": case_255m}[args.case](args)
    except (Failure, golden_test.Failure) as e:
        print(f"FAIL {args.case}: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
