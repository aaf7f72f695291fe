"""The reference exporter's rules, written again from their description
(docs/convert.md) and kept minimal, to check the converter's bytes.

The exporter renames the Flax tree to its own names (embed.weight,
layers.N.in_proj.weight, ...), transposes every 2-D kernel to [out, in] and
permutes the depthwise conv kernel [4, 1, C] to [C, 1, 4]; then, in the BIT2
order, writes floats as they are and the three BitLinear weights ternarised
in float32: scale = 1 / mean|W| (1.0 if W is all zero), q = clip(round(W *
scale), -1, 1), round half to even, packed as q + 1 in 2 bits, first weight
in the low bits.

expected_chunks(get, dims) yields the file's bytes piece by piece; get(path)
returns the Flax leaf at "a/b/c" as float32.
"""

import struct

import numpy as np

PLACES = [1, 4, 16, 64]  # 2-bit field weights within a byte, lowest first


def exporter_names(n_layers):
    """{exporter name: (Flax path, how to reorder)} and the write order."""
    names = {"embed.weight": ("Embed_0/embedding", None)}
    order = ["embed.weight"]
    for i in range(n_layers):
        flax, ours = f"BitMambaBlock_{i}/", f"layers.{i}."
        block = [
            ("in_proj.norm.weight", "BitLinear_0/RMSNorm_0/scale", None),
            ("in_proj.weight", "BitLinear_0/kernel", "t"),
            ("conv1d.weight", "Conv_0/kernel", "conv"),
            ("conv1d.bias", "Conv_0/bias", None),
            ("dt_bias", "dt_bias", None),
            ("A_log", "A_log", None),
            ("D", "D", None),
            ("out_proj.norm.weight", "BitLinear_1/RMSNorm_0/scale", None),
            ("out_proj.weight", "BitLinear_1/kernel", "t"),
        ]
        for name, path, how in block:
            names[ours + name] = (flax + path, how)
            order.append(ours + name)
    for name, path, how in [("norm_f.weight", "RMSNorm_0/scale", None),
                            ("lm_head.norm.weight", "BitLinear_0/RMSNorm_0/scale", None),
                            ("lm_head.weight", "BitLinear_0/kernel", "t")]:
        names[name] = (path, how)
        order.append(name)
    return names, order


def reorder(value, how):
    if how == "t":
        return value.T.copy()
    if how == "conv":
        return np.moveaxis(value, [0, 2], [2, 0]).copy()
    return value


def is_bitlinear(name):
    return name.endswith(("in_proj.weight", "out_proj.weight", "lm_head.weight"))


def ternary_bytes(w):
    mean_abs = np.abs(w).mean()
    scale = np.float32(1.0) if mean_abs == 0 else np.float32(1.0) / mean_abs
    q = np.clip(np.round(w * scale), -1, 1).astype(np.int16)
    fields = (q + 1).astype(np.uint8).reshape(-1, 4)
    packed = (fields.astype(np.uint32) @ np.array(PLACES, np.uint32)).astype(np.uint8)
    rows, cols = w.shape
    return struct.pack("<i", 2) + struct.pack("<ii", rows, cols) + struct.pack("<f", scale) + packed.tobytes()


def float_bytes(w):
    head = struct.pack("<ii", 0, w.ndim) + b"".join(struct.pack("<i", d) for d in w.shape)
    return head + w.astype("<f4").tobytes()


def expected_chunks(get, dims):
    vocab, d_model, n_layers, n_heads = dims
    yield struct.pack("<iiiii", 0x42495432, vocab, d_model, n_layers, n_heads)
    names, order = exporter_names(n_layers)
    for name in order:
        path, how = names[name]
        w = reorder(np.asarray(get(path), dtype=np.float32), how)
        yield ternary_bytes(w) if is_bitlinear(name) else float_bytes(w)


def first_difference(path, chunks):
    """None if the file at path holds exactly the chunks' bytes, else a
    message naming the first differing byte offset."""
    offset = 0
    with open(path, "rb") as f:
        for chunk in chunks:
            got = f.read(len(chunk))
            if got != chunk:
                n = min(len(got), len(chunk))
                diff = next((i for i in range(n) if got[i] != chunk[i]), n)
                return (f"byte {offset + diff} differs (file has {len(got)} of the "
                        f"{len(chunk)} bytes of this tensor)")
            offset += len(chunk)
        extra = len(f.read(1))
    return f"{extra} trailing byte(s) after {offset}" if extra else None
