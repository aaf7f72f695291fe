#!/usr/bin/env python3
"""Converts a BitMamba-2 Flax checkpoint (.msgpack) to a BIT2 model file.

    convert_checkpoint.py IN.msgpack OUT.bin

The output is byte for byte what the reference exporter writes from the same
checkpoint (docs/convert.md). The shapes come from the checkpoint itself;
every tensor of the published tree must be there with its expected shape,
finite, and nothing else may be. On any error OUT is left untouched and the
exit status is 1. Needs NumPy and msgpack (Debian: python3-numpy,
python3-msgpack); no JAX.
"""

import os
import re
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import flax_msgpack  # noqa: E402

BIT2_MAGIC = 0x42495432
TYPE_FLOAT = 0
TYPE_TERNARY = 2
CONV_WIDTH = 4
BLOCK = re.compile(r"BitMambaBlock_(\d+)$")


class ConvertError(Exception):
    pass


def flatten(tree, prefix=""):
    """{"a/b/c": array} for every leaf of nested dicts."""
    leaves = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            leaves.update(flatten(value, path + "/"))
        else:
            leaves[path] = value
    return leaves


def model_dims(leaves):
    """(vocab, d_model, n_layers, n_heads) read off the flattened tree."""
    embed = leaves.get("Embed_0/embedding")
    if not isinstance(embed, np.ndarray) or embed.ndim != 2:
        raise ConvertError("missing tensor Embed_0/embedding (a [vocab, d_model] array)")
    vocab, d_model = embed.shape
    blocks = sorted({int(m.group(1)) for m in (BLOCK.match(p.split("/")[0]) for p in leaves) if m})
    if not blocks:
        raise ConvertError("no BitMambaBlock_N in the checkpoint")
    if blocks != list(range(len(blocks))):
        missing = sorted(set(range(blocks[-1] + 1)) - set(blocks))
        raise ConvertError(f"missing block BitMambaBlock_{missing[0]} (blocks must be numbered 0..N-1)")
    dt_bias = leaves.get("BitMambaBlock_0/dt_bias")
    if not isinstance(dt_bias, np.ndarray) or dt_bias.ndim != 1 or dt_bias.shape[0] == 0:
        raise ConvertError("missing tensor BitMambaBlock_0/dt_bias (a [n_heads] array)")
    n_heads = dt_bias.shape[0]
    if (2 * d_model) % n_heads != 0:
        raise ConvertError(f"d_inner {2 * d_model} is not divisible by n_heads {n_heads}")
    return vocab, d_model, len(blocks), n_heads


def bit2_layout(vocab, d_model, n_layers, n_heads):
    """The BIT2 tensors in file order: (checkpoint path, Flax shape, kind).

    kind: "float" (written as is), "kernel" (Flax [in, out] -> ternary
    [out, in]) or "conv" (Flax [4, 1, C] -> float [C, 1, 4]).
    """
    D, E, H, V = d_model, 2 * d_model, n_heads, vocab
    layout = [("Embed_0/embedding", (V, D), "float")]
    for i in range(n_layers):
        b = f"BitMambaBlock_{i}/"
        layout += [
            (b + "BitLinear_0/RMSNorm_0/scale", (D,), "float"),
            (b + "BitLinear_0/kernel", (D, 2 * E + 3 * H), "kernel"),
            (b + "Conv_0/kernel", (CONV_WIDTH, 1, E), "conv"),
            (b + "Conv_0/bias", (E,), "float"),
            (b + "dt_bias", (H,), "float"),
            (b + "A_log", (H,), "float"),
            (b + "D", (E,), "float"),
            (b + "BitLinear_1/RMSNorm_0/scale", (E,), "float"),
            (b + "BitLinear_1/kernel", (E, D), "kernel"),
        ]
    layout += [
        ("RMSNorm_0/scale", (D,), "float"),
        ("BitLinear_0/RMSNorm_0/scale", (D,), "float"),
        ("BitLinear_0/kernel", (D, V), "kernel"),
    ]
    return layout


def check_leaves(leaves, layout):
    expected = {path for path, _, _ in layout}
    missing = [p for p, _, _ in layout if p not in leaves]
    extra = sorted(set(leaves) - expected)
    if missing:
        raise ConvertError(f"missing tensor {missing[0]}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    if extra:
        raise ConvertError(f"unexpected tensor {extra[0]}" + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else "")
                           + ": not part of a BitMamba-2 model")
    for path, shape, _ in layout:
        got = leaves[path]
        if not isinstance(got, np.ndarray):
            raise ConvertError(f"tensor {path} is a {type(got).__name__}, not an array")
        if got.shape != shape:
            raise ConvertError(f"tensor {path} has shape {list(got.shape)}, expected {list(shape)}")


def ternarize(w):
    """(scale, codes) of a float32 [out, in] weight, in the exporter's float32
    arithmetic: scale = 1 / mean|w| (1 for an all-zero tensor), codes =
    clip(round(w * scale), -1, 1) with round half to even."""
    mean_abs = np.mean(np.abs(w))  # float32 pairwise sum over the [out, in] order
    scale = np.float32(1.0) if mean_abs == 0 else np.float32(np.float32(1.0) / mean_abs)
    scaled = w * scale
    np.rint(scaled, out=scaled)  # in place: lm_head alone is 200 MB per copy
    np.clip(scaled, -1, 1, out=scaled)
    return scale, scaled.astype(np.int8)


def pack_codes(codes):
    """2 bits per weight, code = w + 1, first weight in the low bits."""
    flat = (codes.reshape(-1) + 1).astype(np.uint8)
    flat = np.concatenate([flat, np.zeros(-flat.size % 4, np.uint8)])
    quads = flat.reshape(-1, 4)
    return quads[:, 0] | quads[:, 1] << 2 | quads[:, 2] << 4 | quads[:, 3] << 6


def write_float(f, data):
    f.write(struct.pack("<ii", TYPE_FLOAT, data.ndim))
    f.write(struct.pack(f"<{data.ndim}i", *data.shape))
    f.write(np.ascontiguousarray(data, dtype="<f4").data)  # no copy through bytes


def write_ternary(f, weight):
    scale, codes = ternarize(weight)
    rows, cols = weight.shape
    f.write(struct.pack("<iiif", TYPE_TERNARY, rows, cols, scale))
    f.write(pack_codes(codes).data)


def as_bit2(path, array, kind):
    """The tensor as BIT2 stores it: float32, kernels [out, in], conv [C, 1, 4]."""
    data = np.asarray(array, dtype=np.float32)
    if not np.all(np.isfinite(data)):
        bad = np.unravel_index(int(np.flatnonzero(~np.isfinite(data))[0]), data.shape)
        raise ConvertError(f"tensor {path} has a NaN or infinite value at index {list(map(int, bad))}")
    if kind == "kernel":
        return np.ascontiguousarray(data.T)
    if kind == "conv":
        return np.ascontiguousarray(data.transpose(2, 1, 0))
    return data


def write_bit2(f, leaves, dims):
    """Writes the model, taking each leaf out of leaves as it goes so that its
    memory is returned before the next, larger temporaries are made."""
    f.write(struct.pack("<5i", BIT2_MAGIC, *dims))
    for path, _, kind in bit2_layout(*dims):
        data = as_bit2(path, leaves.pop(path), kind)
        if kind == "kernel":
            write_ternary(f, data)
        else:
            write_float(f, data)


def convert(in_path, out_path):
    tree = flax_msgpack.load(in_path)
    if isinstance(tree.get("params"), dict):
        tree = tree["params"]
    leaves = flatten(tree)
    del tree  # leaves now holds the only references to the arrays
    dims = model_dims(leaves)
    check_leaves(leaves, bit2_layout(*dims))
    # Written beside OUT and renamed into place, so a failure never leaves a
    # partial model where a loader would find it.
    tmp = out_path + ".partial"
    try:
        with open(tmp, "wb") as f:
            write_bit2(f, leaves, dims)
        os.replace(tmp, out_path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return dims


def main(argv):
    if len(argv) != 3:
        print("usage: convert_checkpoint.py IN.msgpack OUT.bin", file=sys.stderr)
        return 2
    in_path, out_path = argv[1], argv[2]
    try:
        vocab, d_model, n_layers, n_heads = convert(in_path, out_path)
    except (ConvertError, flax_msgpack.CheckpointError) as e:
        print(f"convert_checkpoint: {in_path}: {e}", file=sys.stderr)
        return 1
    except (OSError, MemoryError) as e:
        print(f"convert_checkpoint: {e}", file=sys.stderr)
        return 1
    print(f"convert_checkpoint: wrote {out_path} (vocab {vocab}, d_model {d_model}, "
          f"{n_layers} layers, {n_heads} heads, {os.path.getsize(out_path)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
