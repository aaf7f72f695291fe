#!/usr/bin/env python3
"""Independent NumPy reference of BitMamba-2 inference.

Written from docs/format.md (the BIT2 file) and docs/model.md (the math) alone,
never from the C++ sources, so that the two can catch each other's mistakes;
the compact embedding forms (half, int8 rows) as docs/format.md defines them.
It runs one token at a time in float64; the int8 activation quantisation is
done exactly as written (round half away from zero, clamp to [-128, 127],
exact integer sums).

    bitmamba_ref.py logits MODEL --tokens "1 2 3" --out FILE
        after each fed token, one row of vocab logits as little-endian
        float32; rows concatenated
    bitmamba_ref.py greedy MODEL --tokens "1 2 3" --n 16
        greedy continuation (argmax, no penalty, ties -> lowest id),
        space-separated on one line

Needs NumPy (Debian's /usr/bin/python3 has it).
"""

import argparse
import struct
import sys

import numpy as np

MAGIC = 0x42495432
TYPE_FLOAT = 0
TYPE_HALF = 1       # compact embedding only: IEEE binary16 values
TYPE_TERNARY = 2
TYPE_INT8_ROWS = 3  # compact embedding only: float32 scale per row, int8 values
CONV_WIDTH = 4
EOS_TOKEN = 50256


class FormatError(Exception):
    pass


class Reader:
    """Bounds-checked little-endian reads over the whole file's bytes."""

    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n, what):
        if n < 0 or n > len(self.data) - self.pos:
            raise FormatError(
                f"{what}: truncated at byte {self.pos} (need {n} bytes, "
                f"{len(self.data) - self.pos} left)")
        start = self.pos
        self.pos += n
        return self.data[start:self.pos]

    def i32(self, what):
        return struct.unpack("<i", self.take(4, what))[0]

    def float_tensor(self, name, shape):
        """float tensor: int32 type=0, int32 ndim, int32 dims[ndim], float32 data."""
        at = self.pos
        kind = self.i32(name)
        if kind != TYPE_FLOAT:
            raise FormatError(f"{name}: type {kind} at byte {at}, expected {TYPE_FLOAT} (float)")
        at = self.pos
        ndim = self.i32(name)
        if ndim != len(shape):
            raise FormatError(f"{name}: ndim {ndim} at byte {at}, expected {len(shape)}")
        at = self.pos
        dims = tuple(self.i32(name) for _ in range(ndim))
        if dims != tuple(shape):
            raise FormatError(f"{name}: shape {list(dims)} at byte {at}, expected {list(shape)}")
        count = int(np.prod(shape, dtype=np.int64))
        at = self.pos
        values = np.frombuffer(self.take(4 * count, name), dtype="<f4").astype(np.float64)
        if not np.all(np.isfinite(values)):
            bad = int(np.flatnonzero(~np.isfinite(values))[0])
            raise FormatError(f"{name}: NaN/Inf at byte {at + 4 * bad}")
        return values.reshape(shape)

    def embed_tensor(self, name, vocab, d_model):
        """The embedding: a float tensor, or one of the compact forms with the
        same header (int32 type, int32 ndim=2, int32 dims[2]):
        type 1, half: vocab*d_model IEEE binary16 values;
        type 3, int8 rows: vocab float32 scales (finite, >= 0), then
        vocab*d_model int8 values; value = float32(q * scale).
        """
        at = self.pos
        kind = struct.unpack("<i", self.data[at:at + 4])[0] if len(self.data) - at >= 4 else TYPE_FLOAT
        if kind == TYPE_FLOAT:
            return self.float_tensor(name, (vocab, d_model))
        if kind not in (TYPE_HALF, TYPE_INT8_ROWS):
            raise FormatError(f"{name}: type {kind} at byte {at}, expected 0 (float), 1 (half) or 3 (int8 rows)")
        self.i32(name)
        at = self.pos
        ndim = self.i32(name)
        dims = (self.i32(name), self.i32(name)) if ndim == 2 else (ndim,)
        if dims != (vocab, d_model):
            raise FormatError(f"{name}: ndim/shape at byte {at}, expected 2 dims {[vocab, d_model]}")
        count = vocab * d_model
        if kind == TYPE_HALF:
            at = self.pos
            values = np.frombuffer(self.take(2 * count, name), dtype="<f2").astype(np.float64)
            if not np.all(np.isfinite(values)):
                raise FormatError(f"{name}: NaN/Inf at byte {at + 2 * int(np.flatnonzero(~np.isfinite(values))[0])}")
            return values.reshape(vocab, d_model)
        at = self.pos
        scales = np.frombuffer(self.take(4 * vocab, name), dtype="<f4")
        if not np.all(np.isfinite(scales) & (scales >= 0)):
            bad = int(np.flatnonzero(~(np.isfinite(scales) & (scales >= 0)))[0])
            raise FormatError(f"{name}: row scale {scales[bad]} at byte {at + 4 * bad} must be finite and >= 0")
        q = np.frombuffer(self.take(count, name), dtype=np.int8).reshape(vocab, d_model)
        return (q.astype(np.float32) * scales[:, None]).astype(np.float64)

    def ternary_tensor(self, name, rows, cols):
        """ternary tensor: int32 type=2, int32 rows, int32 cols, float32 scale,
        then rows*cols/4 bytes of 2-bit codes (code = w + 1, first weight in
        the low bits, rows contiguous).

        Returns (w, scale) with w [rows, cols] holding -1/0/+1 as float32.
        """
        at = self.pos
        kind = self.i32(name)
        if kind != TYPE_TERNARY:
            raise FormatError(f"{name}: type {kind} at byte {at}, expected {TYPE_TERNARY} (ternary)")
        at = self.pos
        got = (self.i32(name), self.i32(name))
        if got != (rows, cols):
            raise FormatError(f"{name}: shape {list(got)} at byte {at}, expected {[rows, cols]}")
        at = self.pos
        scale = struct.unpack("<f", self.take(4, name))[0]
        if not np.isfinite(scale) or scale <= 0:
            raise FormatError(f"{name}: scale {scale} at byte {at} must be finite and > 0")
        count = rows * cols
        at = self.pos
        # docs/format.md: ceil(rows*cols/4) bytes; all real shapes divide by 4.
        # If one ever did not, the last byte would be partly padding.
        packed = np.frombuffer(self.take((count + 3) // 4, name), dtype=np.uint8)
        codes = (packed[:, None] >> np.array([0, 2, 4, 6], dtype=np.uint8)) & 3
        codes = codes.reshape(-1)[:count]
        if np.any(codes == 3):
            bad = int(np.flatnonzero(codes == 3)[0])
            raise FormatError(f"{name}: invalid code 3 at byte {at + bad // 4}")
        # Integer codes times int8 activations: every partial sum is an integer
        # of magnitude <= cols*128, exact in float32 while that is <= 2^24
        # (true for every published shape), so a float32 BLAS product is an
        # exact integer sum whatever its order. Keeps the 1B model in memory.
        if cols * 128 > 2 ** 24:
            raise FormatError(f"{name}: cols {cols} too large for exact float32 sums")
        w = (codes.astype(np.int8) - 1).astype(np.float32).reshape(rows, cols)
        return w, float(scale)


class BitLinear:
    def __init__(self, norm, w, scale):
        self.norm = norm      # [cols]
        self.w = w            # [rows, cols] of -1/0/+1
        self.scale = scale    # dequantised weight = w / scale


class Layer:
    pass


class Model:
    def __init__(self, path):
        with open(path, "rb") as f:
            data = f.read()
        r = Reader(data)
        at = r.pos
        magic = r.i32("header")
        if magic != MAGIC:
            raise FormatError(f"header: magic 0x{magic & 0xffffffff:08x} at byte {at}, expected 0x{MAGIC:08x}")
        self.vocab = r.i32("header.vocab_size")
        self.d_model = r.i32("header.d_model")
        self.n_layers = r.i32("header.n_layers")
        self.n_heads = r.i32("header.n_heads")
        for key in ("vocab", "d_model", "n_layers", "n_heads"):
            if getattr(self, key) <= 0:
                raise FormatError(f"header: {key} {getattr(self, key)} must be > 0")
        self.d_inner = 2 * self.d_model
        if self.d_inner % self.n_heads != 0:
            raise FormatError(f"header: d_inner {self.d_inner} not divisible by n_heads {self.n_heads}")
        self.head_dim = self.d_inner // self.n_heads
        D, E, H = self.d_model, self.d_inner, self.n_heads

        self.embed = r.embed_tensor("embed", self.vocab, D)
        self.layers = []
        for i in range(self.n_layers):
            p = f"layers.{i}."
            layer = Layer()
            in_norm = r.float_tensor(p + "in_proj.norm", (D,))
            w, scale = r.ternary_tensor(p + "in_proj", 2 * E + 3 * H, D)
            layer.in_proj = BitLinear(in_norm, w, scale)
            layer.conv_w = r.float_tensor(p + "conv1d.weight", (E, 1, CONV_WIDTH)).reshape(E, CONV_WIDTH)
            layer.conv_b = r.float_tensor(p + "conv1d.bias", (E,))
            layer.dt_bias = r.float_tensor(p + "dt_bias", (H,))
            layer.A_log = r.float_tensor(p + "A_log", (H,))
            layer.D = r.float_tensor(p + "D", (E,))
            out_norm = r.float_tensor(p + "out_proj.norm", (E,))
            w, scale = r.ternary_tensor(p + "out_proj", D, E)
            layer.out_proj = BitLinear(out_norm, w, scale)
            self.layers.append(layer)
        self.norm_f = r.float_tensor("norm_f", (D,))
        head_norm = r.float_tensor("lm_head.norm", (D,))
        w, scale = r.ternary_tensor("lm_head", self.vocab, D)
        self.lm_head = BitLinear(head_norm, w, scale)
        if r.pos != len(data):
            raise FormatError(f"trailing garbage: {len(data) - r.pos} bytes at byte {r.pos}")


def silu(x):
    with np.errstate(over="ignore"):
        return x / (1.0 + np.exp(-x))


def softplus(x):
    with np.errstate(over="ignore"):
        return np.where(x > 20.0, x, np.log(1.0 + np.exp(x)))


def rms_norm(x, g):
    return x / np.sqrt(np.mean(x * x) + 1e-6) * g


def round_half_away(v):
    """C roundf: nearest integer, halves away from zero.

    Not floor(v + 0.5), which is wrong for negative halves, nor np.round,
    which rounds halves to even. v - trunc(v) is exact in binary floating
    point, so the comparison with 0.5 is exact too.
    """
    t = np.trunc(v)
    return t + np.where(np.abs(v - t) >= 0.5, np.sign(v), 0.0)


def quantize_activations(n):
    """int8 activations q (as floats) and their scale s: n ~= q / s."""
    s = 127.0 / max(float(np.max(np.abs(n))), 1e-5)
    q = np.clip(round_half_away(n * s), -128.0, 127.0)
    return q, s


def bit_linear(x, lin, quantize=quantize_activations):
    n = rms_norm(x, lin.norm)
    q, s = quantize(n)
    acc = lin.w @ q.astype(np.float32)  # exact integer sums, see ternary_tensor
    return acc.astype(np.float64) / (s * lin.scale)


class Session:
    """Per-sequence state: for each layer 3 conv values and 1 SSM value per channel.

    quantize replaces quantize_activations in every BitLinear; the golden test
    uses it to replay an int8 rounding flip seen in a float32 engine.
    """

    def __init__(self, model, quantize=quantize_activations):
        self.m = model
        self.quantize = quantize
        self.reset()

    def reset(self):
        E = self.m.d_inner
        # conv[l][:, k] = s_k; column 0 is the oldest input.
        self.conv = [np.zeros((E, CONV_WIDTH - 1)) for _ in self.m.layers]
        self.ssm = [np.zeros(E) for _ in self.m.layers]

    def snapshot(self):
        # step() replaces the per-layer arrays, never writes into them.
        return list(self.conv), list(self.ssm)

    def restore(self, snap):
        self.conv, self.ssm = list(snap[0]), list(snap[1])

    def step(self, token):
        """Feed one token; return its logits [vocab] in float64."""
        m = self.m
        if not 0 <= token < m.vocab:
            raise ValueError(f"token {token} out of range [0, {m.vocab})")
        E, H, P = m.d_inner, m.n_heads, m.head_dim
        x = m.embed[token].copy()
        for l, layer in enumerate(m.layers):
            v = bit_linear(x, layer.in_proj, self.quantize)    # [2E + 3H]
            z, xin = v[0:E], v[E:2 * E]
            B = v[2 * E:2 * E + H]
            C = v[2 * E + H:2 * E + 2 * H]
            dt = v[2 * E + 2 * H:2 * E + 3 * H]

            s = self.conv[l]                                   # [E, 3]
            w = layer.conv_w                                   # [E, 4]
            a = (layer.conv_b + w[:, 0] * s[:, 0] + w[:, 1] * s[:, 1]
                 + w[:, 2] * s[:, 2] + w[:, 3] * xin)
            self.conv[l] = np.column_stack((s[:, 1], s[:, 2], xin))
            u = silu(a)

            d = softplus(dt + layer.dt_bias)                   # [H]
            g = np.exp(-np.exp(layer.A_log) * d)               # [H]
            S = self.ssm[l].reshape(H, P)                      # [H, P], i = h*P + p
            uh = u.reshape(H, P)
            S = S * g[:, None] + uh * B[:, None] * d[:, None]
            self.ssm[l] = S.reshape(E)
            y = (S * C[:, None] + uh * layer.D.reshape(H, P)).reshape(E) * silu(z)

            x = x + bit_linear(y, layer.out_proj, self.quantize)
        return bit_linear(rms_norm(x, m.norm_f), m.lm_head, self.quantize)


def parse_tokens(text):
    try:
        return [int(t) for t in text.split()]
    except ValueError:
        raise ValueError(f"--tokens must be space-separated integers, got {text!r}")


def greedy(model, prompt, n):
    """Greedy continuation of n tokens; stops after EOS_TOKEN when the vocab has it."""
    if not prompt:
        raise ValueError("greedy needs at least one prompt token")
    sess = Session(model)
    for t in prompt:
        logits = sess.step(t)
    out = []
    for _ in range(n):
        nxt = int(np.argmax(logits))  # first maximum = lowest id on ties
        out.append(nxt)
        if nxt == EOS_TOKEN:
            break
        logits = sess.step(nxt)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    lg = sub.add_parser("logits", help="write float32 LE logits rows, one per fed token")
    lg.add_argument("model")
    lg.add_argument("--tokens", required=True)
    lg.add_argument("--out", required=True)
    gr = sub.add_parser("greedy", help="print the greedy continuation ids")
    gr.add_argument("model")
    gr.add_argument("--tokens", required=True)
    gr.add_argument("--n", type=int, default=16)
    args = ap.parse_args(argv)

    try:
        tokens = parse_tokens(args.tokens)
        model = Model(args.model)
        if args.cmd == "logits":
            sess = Session(model)
            rows = [sess.step(t) for t in tokens]
            out = np.asarray(rows, dtype="<f4").reshape(len(tokens), model.vocab)
            with open(args.out, "wb") as f:
                f.write(out.tobytes())
        else:
            print(" ".join(str(t) for t in greedy(model, tokens, args.n)))
    except (FormatError, ValueError, OSError) as e:
        print(f"bitmamba_ref: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
