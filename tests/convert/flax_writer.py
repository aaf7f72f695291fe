"""Synthetic BitMamba-2 checkpoints in Flax's msgpack format, for the tests.

Written from the format's description (docs/convert.md), never from the
converter: a msgpack map of parameter names whose leaves are extension
values of type 1 holding msgpack (shape, dtype name, C-order bytes), arrays
over chunk_bytes split into Flax's {"__msgpack_chunked_array__": True, ...}
form. Leaves are produced one at a time and written straight to the file,
so a 255M-shaped checkpoint never sits in memory whole.
"""

import zlib

import msgpack
import numpy as np

SEPARATION = 1e-3  # separated kernels keep |w| / mean|w| this far from 0.5


def published_leaves(vocab, d_model, n_layers, n_heads):
    """[(path, shape)] of the published parameter tree, below 'params'."""
    D, E, H = d_model, 2 * d_model, n_heads
    leaves = [("Embed_0/embedding", (vocab, D))]
    for i in range(n_layers):
        b = f"BitMambaBlock_{i}/"
        leaves += [
            (b + "BitLinear_0/kernel", (D, 2 * E + 3 * H)),
            (b + "BitLinear_0/RMSNorm_0/scale", (D,)),
            (b + "Conv_0/kernel", (4, 1, E)),
            (b + "Conv_0/bias", (E,)),
            (b + "dt_bias", (H,)),
            (b + "A_log", (H,)),
            (b + "D", (E,)),
            (b + "BitLinear_1/kernel", (E, D)),
            (b + "BitLinear_1/RMSNorm_0/scale", (E,)),
        ]
    leaves += [
        ("RMSNorm_0/scale", (D,)),
        ("BitLinear_0/kernel", (D, vocab)),
        ("BitLinear_0/RMSNorm_0/scale", (D,)),
    ]
    return leaves


def separate_from_ties(w):
    """Moves kernel entries whose |w| / mean|w| lies within SEPARATION of 0.5
    (where round() turns 0 into +-1) out of that band, so that float32 and
    float64 ternarisation agree on every code."""
    m = float(np.mean(np.abs(w), dtype=np.float64))
    x = np.abs(w) / m
    near = np.abs(x - 0.5) < 2 * SEPARATION
    target = np.where(x < 0.5, 0.5 - 3 * SEPARATION, 0.5 + 3 * SEPARATION)
    return np.where(near, np.sign(w) * target * m, w).astype(np.float32)


def leaf_values(path, shape, seed, separated=False):
    """Deterministic float32 values for one leaf, scaled like a trained model's
    so that activations stay O(1): every vector differs from 1 or 0, so a
    tensor put in the wrong place changes the logits."""
    rng = np.random.default_rng([seed, zlib.crc32(path.encode())])
    name = path.rsplit("/", 1)[-1]
    if name == "embedding":
        return rng.standard_normal(shape, dtype=np.float32)
    if name == "kernel" and len(shape) == 2:
        w = rng.standard_normal(shape, dtype=np.float32) * np.float32(shape[0] ** -0.5)
        return separate_from_ties(w) if separated else w
    if name == "kernel":
        return rng.normal(0.0, 0.5, shape).astype(np.float32)
    if name == "bias":
        return rng.normal(0.0, 0.1, shape).astype(np.float32)
    if name in ("scale", "D"):
        return rng.uniform(0.5, 1.5, shape).astype(np.float32)
    if name == "dt_bias":
        y = rng.uniform(0.001, 0.1, shape)
        return (y + np.log(-np.expm1(-y))).astype(np.float32)  # softplus^-1
    if name == "A_log":
        return np.log(rng.uniform(1.0, 16.0, shape)).astype(np.float32)
    raise ValueError(f"no generator for {path}")


def to_bfloat16_bytes(values):
    """bfloat16 by truncation: the top 16 bits of each float32."""
    return (np.ascontiguousarray(values, np.float32).view(np.uint32) >> 16).astype("<u2").tobytes()


def bfloat16_round_trip(values):
    """What a bfloat16 leaf holds once widened back to float32."""
    return (np.ascontiguousarray(values, np.float32).view(np.uint32) & 0xFFFF0000).view(np.float32)


def ndarray_ext(shape, dtype_name, raw):
    payload = msgpack.packb([list(shape), dtype_name, raw], use_bin_type=True)
    return msgpack.ExtType(1, payload)


def array_ext(values, dtype):
    if dtype == "bfloat16":
        return ndarray_ext(values.shape, "bfloat16", to_bfloat16_bytes(values))
    arr = np.ascontiguousarray(values, dtype=dtype)
    return ndarray_ext(arr.shape, arr.dtype.name, arr.tobytes())


def _length_header(n, by_width):
    """The msgpack header of a bin or ext value of n bytes (by_width maps a
    length field width to its marker)."""
    for width, marker in by_width:
        if n < 1 << (8 * width):
            return marker + n.to_bytes(width, "big")
    raise ValueError(f"{n} bytes is too long for msgpack")


def write_array(f, values, dtype):
    """One ndarray extension value, written straight from the array's memory
    (packing it through msgpack.ExtType would copy a 200 MB tensor twice)."""
    if dtype == "bfloat16":
        raw = np.frombuffer(to_bfloat16_bytes(values), np.uint8)
    else:
        raw = np.ascontiguousarray(values, dtype=dtype)
    head = (b"\x93" + msgpack.packb(list(values.shape)) + msgpack.packb(dtype if dtype == "bfloat16" else raw.dtype.name)
            + _length_header(raw.nbytes, [(1, b"\xc4"), (2, b"\xc5"), (4, b"\xc6")]))
    size = len(head) + raw.nbytes
    f.write(_length_header(size, [(1, b"\xc7"), (2, b"\xc8"), (4, b"\xc9")]) + b"\x01" + head)
    f.write(raw.data)


def chunked(values, dtype, chunk_bytes):
    """Flax's form of an array over chunk_bytes: flat chunks in an indexed map."""
    per_chunk = max(1, chunk_bytes // 4)
    flat = values.reshape(-1)
    chunks = [flat[i:i + per_chunk] for i in range(0, flat.size, per_chunk)]
    return {
        "__msgpack_chunked_array__": True,
        "shape": {str(i): d for i, d in enumerate(values.shape)},
        "chunks": {str(i): array_ext(c, dtype) for i, c in enumerate(chunks)},
    }


def nest(leaves):
    """{"a": {"b": producer}} from [("a/b", producer)], keys sorted as JAX
    sorts a pytree's dict keys (so BitMambaBlock_10 comes before _2)."""
    root = {}
    for path, producer in leaves:
        *parents, name = path.split("/")
        node = root
        for p in parents:
            node = node.setdefault(p, {})
        node[name] = producer
    return root


def _write_node(f, packer, node, dtype, chunk_bytes):
    f.write(packer.pack_map_header(len(node)))
    for key in sorted(node):
        f.write(packer.pack(key))
        value = node[key]
        if isinstance(value, dict):
            _write_node(f, packer, value, dtype, chunk_bytes)
            continue
        values = value() if callable(value) else value
        if isinstance(values, msgpack.ExtType):  # a hand-made leaf, written as is
            f.write(packer.pack(values))
        elif chunk_bytes and values.size * 4 > chunk_bytes:
            f.write(packer.pack(chunked(values, dtype, chunk_bytes)))
        else:
            write_array(f, values, dtype)


def write_checkpoint(path, leaves, wrap_params=True, dtype="float32", chunk_bytes=0):
    """Writes [(path, leaf)]: an array, a zero-argument function returning
    one, or a ready msgpack.ExtType.

    dtype: "float32", "float16" or "bfloat16" (truncated); chunk_bytes > 0
    splits larger arrays as Flax does above 2^30 bytes.
    """
    tree = nest(leaves)
    if wrap_params:
        tree = {"params": tree}
    packer = msgpack.Packer(use_bin_type=True)
    with open(path, "wb") as f:
        _write_node(f, packer, tree, dtype, chunk_bytes)


def synthetic_leaves(dims, seed, separated=False):
    """[(path, producer)] of a whole model with leaf_values."""
    def producer(path, shape):
        return lambda: leaf_values(path, shape, seed, separated)
    return [(p, producer(p, s)) for p, s in published_leaves(*dims)]
