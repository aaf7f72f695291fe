#!/usr/bin/env python3
"""What a compact embedding costs on one model: size, load time, and how far
its logits move from the float32 file's.

    measure_compact.py --bitmamba CLI --model MODEL.bin --workdir DIR [--tokens 512] [--node RUNNER]

For f16 and q8 it converts MODEL (`CLI convert`), feeds the same tokens one at
a time to each file (`CLI logits`), and prints per form: file size, load
time and peak RSS (`CLI bench`), the wasm memory after loading (`RUNNER
bench`, e.g. scripts/bitmamba-node, when given), the logits' normalised error
||l - l_f32|| / ||l_f32|| (mean and max over positions) and top-1 agreement
with the float32 file, and the error at the first position alone (before
the recurrent state carries anything). As a yardstick it does the same for
a float32 file whose embedding values are each moved by one ulp: random
weights make a chaotic model, in which any change grows along the tokens.
Not a test: docs/convert.md quotes its output.
"""

import argparse
import json
import os
import subprocess
import sys

import numpy as np


def run(cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def run_apart(cmd):
    """run(), from a child of a small shell: Linux carries a process's peak RSS
    across exec, so a command started straight from this (large) process
    would report this process's peak as its own."""
    return run(["/bin/sh", "-c", '"$@"; exit $?', "sh"] + cmd)


def bench(cli, model, node):
    """'load N ms, peak RSS N MiB[, wasm memory N MiB]' of one load and one token."""
    flags = ["bench", model, "--prompt-tokens", "1", "--gen-tokens", "1", "--runs", "1", "--json"]
    native = json.loads(run_apart([cli] + flags))
    text = f"load {native['load_ms']:.0f} ms, peak RSS {native['peak_rss_mib']:.0f} MiB"
    if node:
        text += f", wasm memory {json.loads(run_apart([node] + flags))['wasm_memory_mib']:.0f} MiB"
    return text


def logits(cli, model, tokens, vocab):
    out = model + ".logits"
    run([cli, "logits", model, "--tokens", " ".join(map(str, tokens)), "--out", out])
    rows = np.fromfile(out, "<f4").reshape(len(tokens), vocab).astype(np.float64)
    os.remove(out)
    return rows


def one_ulp_off(model, out):
    """A copy of the plain BIT2 `model` with each embedding value one ulp up or down."""
    data = bytearray(open(model, "rb").read())
    vocab, d_model = np.frombuffer(data, "<i4", 2, 4)
    count = int(vocab) * int(d_model)
    embed = np.frombuffer(data, "<f4", count, 36)
    away = np.where(np.random.default_rng(1).random(count) < 0.5, -np.inf, np.inf).astype(np.float32)
    data[36:36 + 4 * count] = np.nextafter(embed, away).astype("<f4").tobytes()
    with open(out, "wb") as f:
        f.write(data)


def compare(got, base):
    err = np.linalg.norm(got - base, axis=1) / np.linalg.norm(base, axis=1)
    top1 = np.mean(got.argmax(axis=1) == base.argmax(axis=1))
    return (f"normalised error: first position {err[0]:.1e}, mean {err.mean():.1e}, max {err.max():.1e}; "
            f"top-1 agreement {100 * top1:.1f}% over {len(got)} tokens")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bitmamba", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--tokens", type=int, default=512)
    ap.add_argument("--node", help="the wasm runner (scripts/bitmamba-node), for the wasm memory")
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    vocab = int(np.fromfile(args.model, "<i4", 2)[1])
    tokens = np.random.default_rng(0).integers(0, vocab, args.tokens).tolist()
    base = logits(args.bitmamba, args.model, tokens, vocab)
    print(f"f32: {os.path.getsize(args.model) / 2**20:.1f} MiB, {bench(args.bitmamba, args.model, args.node)}",
          flush=True)
    stem = os.path.join(args.workdir, os.path.basename(args.model))
    ulp = f"{stem}.ulp"
    one_ulp_off(args.model, ulp)
    print(f"f32, embedding 1 ulp off: {compare(logits(args.bitmamba, ulp, tokens, vocab), base)}", flush=True)
    os.remove(ulp)
    for form in ("f16", "q8"):
        path = f"{stem}.{form}"
        run([args.bitmamba, "convert", args.model, path, "--embed", form])
        got = logits(args.bitmamba, path, tokens, vocab)
        print(f"{form}: {os.path.getsize(path) / 2**20:.1f} MiB, {bench(args.bitmamba, path, args.node)}; "
              f"{compare(got, base)}", flush=True)
        os.remove(path)


if __name__ == "__main__":
    sys.exit(main())
