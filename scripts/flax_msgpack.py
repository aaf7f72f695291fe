"""Reads a Flax msgpack checkpoint (flax.serialization.to_bytes) without JAX.

The file is one msgpack map (nested maps of parameter names) whose leaves are
msgpack extension values of type 1, "ndarray": the payload is itself msgpack,
the triple (shape, dtype name, C-order bytes). Flax splits an array of more
than 2^30 bytes into a map {"__msgpack_chunked_array__": True,
"shape": {"0": d0, ...}, "chunks": {"0": flat0, ...}}; that is read too.

Leaves come back as read-only NumPy arrays over the payload bytes (no copy);
bfloat16 and float16 leaves are widened to float32, which is exact.
"""

import os

import msgpack
import numpy as np

EXT_NDARRAY = 1
CHUNKED_MARK = "__msgpack_chunked_array__"
FLOAT_DTYPES = {"float32", "float16", "float64"}
HEADER_BYTES = 512
BIN_LENGTH_BYTES = {0xC4: 1, 0xC5: 2, 0xC6: 4}
READ_SIZE = 16 << 20


class CheckpointError(Exception):
    """The file is not a Flax msgpack checkpoint this reader understands."""


def _bfloat16_to_float32(raw, count, offset):
    # bfloat16 is the top half of a float32: shifting it back is exact.
    halves = np.frombuffer(raw, dtype="<u2", count=count, offset=offset)
    return (halves.astype(np.uint32) << 16).view(np.float32)


def _ndarray_header(payload):
    """(shape, dtype name, offset of the data) of an ndarray payload.

    Parsed by hand so that the array can be a view of the payload: unpacking
    it whole would copy every weight once more.
    """
    head = msgpack.Unpacker(raw=True)
    head.feed(payload[:HEADER_BYTES])  # shape and dtype take a few dozen bytes
    try:
        if head.read_array_header() != 3:
            raise ValueError("not a triple")
        shape = tuple(int(d) for d in head.unpack())
        dtype_name = head.unpack().decode("ascii")
    except (ValueError, TypeError, AttributeError, UnicodeDecodeError, msgpack.UnpackException) as e:
        raise CheckpointError(f"an ndarray extension value is not (shape, dtype, bytes): {e}")
    at = head.tell()
    marker = payload[at] if at < len(payload) else None
    if marker not in BIN_LENGTH_BYTES:  # the data must be msgpack bin 8/16/32
        raise CheckpointError("an ndarray extension value's data is not a msgpack bin")
    width = BIN_LENGTH_BYTES[marker]
    length = int.from_bytes(payload[at + 1:at + 1 + width], "big")
    start = at + 1 + width
    if start + length != len(payload) or any(d < 0 for d in shape):
        raise CheckpointError(f"an ndarray extension value of shape {list(shape)} has a bad length")
    return shape, dtype_name, start


def _ndarray_from_ext(payload):
    shape, dtype_name, start = _ndarray_header(payload)
    count = int(np.prod(shape, dtype=np.int64))
    if dtype_name == "bfloat16":
        itemsize = 2
    elif dtype_name in FLOAT_DTYPES:
        itemsize = np.dtype(dtype_name).itemsize
    else:
        raise CheckpointError(f"an array of dtype '{dtype_name}': only float32, float16, "
                              "bfloat16 and float64 weights are supported")
    if len(payload) - start != count * itemsize:
        raise CheckpointError(f"an array of shape {list(shape)} and dtype {dtype_name} carries "
                              f"{len(payload) - start} bytes, expected {count * itemsize}")
    if dtype_name == "bfloat16":
        return _bfloat16_to_float32(payload, count, start).reshape(shape)
    dtype = "<" + np.dtype(dtype_name).str[1:]
    return np.frombuffer(payload, dtype=dtype, count=count, offset=start).reshape(shape)


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
    OSError when the file cannot be read. Read as a stream, so memory holds
    the arrays and one msgpack value at a time, never the whole file twice.
    """
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            raise CheckpointError("the file is empty")
        unpacker = msgpack.Unpacker(f, read_size=READ_SIZE, max_buffer_size=0, raw=False,
                                    strict_map_key=False, ext_hook=_ext_hook)
        try:
            tree = unpacker.unpack()
        except CheckpointError:
            raise
        except msgpack.OutOfData:
            raise CheckpointError("not a msgpack file (it ends inside a value: truncated?)")
        except (ValueError, TypeError, msgpack.UnpackException) as e:
            detail = f": {e}" if str(e) else ""
            raise CheckpointError(f"not a msgpack file ({type(e).__name__}{detail})")
        if unpacker.tell() != os.fstat(f.fileno()).st_size:
            raise CheckpointError(f"trailing bytes after the checkpoint at byte {unpacker.tell()}")
    if not isinstance(tree, dict):
        raise CheckpointError(f"the top level is a {type(tree).__name__}, not a map of parameters")
    return _resolve_chunks(tree)
