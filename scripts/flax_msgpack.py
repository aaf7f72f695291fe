"""Reads a Flax msgpack checkpoint (flax.serialization.to_bytes) without JAX.

The file is one msgpack map (nested maps of parameter names) whose leaves are
msgpack extension values of type 1, "ndarray": the payload is itself msgpack,
the triple (shape, dtype name, C-order bytes). Flax splits an array of more
than 2^30 bytes into a map {"__msgpack_chunked_array__": True,
"shape": {"0": d0, ...}, "chunks": {"0": flat0, ...}}; that is read too.

Leaves come back as read-only NumPy arrays over the payload bytes (no copy);
bfloat16 and float16 leaves are widened to float32, which is exact.
"""

import mmap

import msgpack
import numpy as np

EXT_NDARRAY = 1
CHUNKED_MARK = "__msgpack_chunked_array__"
FLOAT_DTYPES = {"float32", "float16", "float64"}


class CheckpointError(Exception):
    """The file is not a Flax msgpack checkpoint this reader understands."""


def _bfloat16_to_float32(raw, count):
    # bfloat16 is the top half of a float32: shifting it back is exact.
    halves = np.frombuffer(raw, dtype="<u2", count=count)
    return (halves.astype(np.uint32) << 16).view(np.float32)


def _ndarray_from_ext(payload):
    try:
        shape, dtype_name, raw = msgpack.unpackb(payload, raw=True)
        shape = tuple(int(d) for d in shape)
        dtype_name = dtype_name.decode("ascii")
    except (ValueError, TypeError, UnicodeDecodeError, msgpack.UnpackException) as e:
        raise CheckpointError(f"an ndarray extension value is not (shape, dtype, bytes): {e}")
    if not isinstance(raw, bytes) or any(d < 0 for d in shape):
        raise CheckpointError(f"an ndarray extension value has a bad shape {shape} or data")
    count = int(np.prod(shape, dtype=np.int64))
    if dtype_name == "bfloat16":
        itemsize = 2
    elif dtype_name in FLOAT_DTYPES:
        itemsize = np.dtype(dtype_name).itemsize
    else:
        raise CheckpointError(f"an array of dtype '{dtype_name}': only float32, float16, "
                              "bfloat16 and float64 weights are supported")
    if len(raw) != count * itemsize:
        raise CheckpointError(f"an array of shape {list(shape)} and dtype {dtype_name} carries "
                              f"{len(raw)} bytes, expected {count * itemsize}")
    if dtype_name == "bfloat16":
        return _bfloat16_to_float32(raw, count).reshape(shape)
    return np.frombuffer(raw, dtype="<" + np.dtype(dtype_name).str[1:], count=count).reshape(shape)


def _ext_hook(code, payload):
    if code != EXT_NDARRAY:
        raise CheckpointError(f"msgpack extension type {code}: only type {EXT_NDARRAY} "
                              "(Flax ndarray) is expected in a weights checkpoint")
    return _ndarray_from_ext(payload)


def _indexed(d, what):
    """The values of a Flax {"0": v0, "1": v1, ...} map, in index order."""
    if not isinstance(d, dict) or sorted(d) != [str(i) for i in range(len(d))]:
        raise CheckpointError(f"a chunked array's '{what}' is not a {{'0': ..., '1': ...}} map")
    return [d[str(i)] for i in range(len(d))]


def _join_chunks(node):
    shape = tuple(int(d) for d in _indexed(node.get("shape"), "shape"))
    chunks = _indexed(node.get("chunks"), "chunks")
    if not all(isinstance(c, np.ndarray) for c in chunks):
        raise CheckpointError("a chunked array has a chunk that is not an array")
    flat = np.concatenate([c.reshape(-1) for c in chunks])
    if flat.size != int(np.prod(shape, dtype=np.int64)):
        raise CheckpointError(f"a chunked array of shape {list(shape)} has {flat.size} values")
    return flat.reshape(shape)


def _resolve_chunks(node):
    if isinstance(node, dict):
        if node.get(CHUNKED_MARK) is True:
            return _join_chunks(node)
        return {k: _resolve_chunks(v) for k, v in node.items()}
    return node


def load(path):
    """The checkpoint at path as nested dicts of float arrays.

    Raises CheckpointError for anything but a msgpack map of Flax arrays, and
    OSError when the file cannot be read.
    """
    with open(path, "rb") as f:
        try:
            view = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file cannot be mapped
            raise CheckpointError("the file is empty")
    with view:
        try:
            tree = msgpack.unpackb(view, ext_hook=_ext_hook, raw=False,
                                   strict_map_key=False)
        except CheckpointError:
            raise
        except (ValueError, TypeError, msgpack.UnpackException) as e:
            detail = f": {e}" if str(e) else ""
            raise CheckpointError(f"not a msgpack file ({type(e).__name__}{detail})")
    if not isinstance(tree, dict):
        raise CheckpointError(f"the top level is a {type(tree).__name__}, not a map of parameters")
    return _resolve_chunks(tree)
