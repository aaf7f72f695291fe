#!/usr/bin/env python3
"""`bitmamba perplexity` and `bitmamba score` against eval_ref.py.

    eval_test.py --bitmamba CLI --workdir DIR [--runner CMD] [--node NODE]

On the tiny synthetic model (make-model --preset tiny): NLL and perplexities
of a text in one pass and with --window, and per-choice log-likelihoods,
predictions and accuracies of a small multiple-choice file whose items hit
lm-eval-harness's tokenization rules (trailing whitespace of the context,
an empty context, a choice whose first token merges with the context's
end). Relative error <= 1e-4 on NLL and log-likelihoods; counts exact.
Also the error cases of score's input, each naming its line. The reference's
token ids come from the npm package gpt-3-encoder.
"""

import argparse
import json
import os
import shlex
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import bitmamba_ref as ref  # noqa: E402
import eval_ref  # noqa: E402

TOLERANCE = 1e-4
WINDOW = 16

TEXT = ("The quick brown fox jumps over the lazy dog.\n\n"
        " = Valkyria Chronicles III = \n"
        "Senjō no Valkyria 3 : Unrecorded Chronicles ( Japanese : 戦場のヴァルキュリア3 ) is a game.\t"
        "Caf\u00e9 \u00a0prices rose 12.5 % in 2011 ,   didn't they?\n")

ITEMS = [
    {"context": "The capital of France is", "choices": [" Paris", " London", " a cat"], "label": 0},
    {"context": "Question: Is water wet?\nAnswer: ", "choices": ["yes", "no"], "label": 1},
    {"context": "", "choices": ["The sun rises in the east.", "The sun rises in the west."], "label": 0},
    {"context": "Goal: open a jar. Solution:", "choices": [" twist the lid", " freeze it", " café"], "label": 2},
]

# (label, file contents, words the error must contain)
BAD_INPUTS = [
    ("bad JSON", '{"context": "a", "choices": ["b"], "label": 0}\n{"context": \n', ["line 2", "JSON"]),
    ("label out of range", '{"context": "a", "choices": ["b", "c"], "label": 2}\n', ["line 1", "label"]),
    ("no choices", '{"context": "a", "choices": [], "label": 0}\n', ["line 1", "choices"]),
    ("context not a string", '{"context": 5, "choices": ["b"], "label": 0}\n', ["line 1", "context"]),
]


class Failure(Exception):
    pass


def run(cmd, what, expect_ok=True):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
    if expect_ok and p.returncode != 0:
        raise Failure(f"{what}: exit {p.returncode}: {' '.join(cmd)}\n{p.stderr.decode(errors='replace')}")
    return p


def encoder(node):
    """Token ids of each text by gpt-3-encoder, in one Node process."""
    script = ("const {encode} = require(process.argv[1]);"
              "const texts = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
              "process.stdout.write(JSON.stringify(texts.map((t) => encode(t))));")
    cache = {}

    def encode_all(texts):
        todo = [t for t in texts if t not in cache]
        if todo:
            p = subprocess.run([node, "-e", script, os.path.join(ROOT, "node_modules", "gpt-3-encoder")],
                               input=json.dumps(todo).encode(), stdout=subprocess.PIPE, check=True)
            cache.update(zip(todo, json.loads(p.stdout)))
        return [cache[t] for t in texts]
    return encode_all


def rel_err(got, want):
    return abs(got - want) / max(abs(want), 1e-12)


def check_close(what, got, want, problems):
    if rel_err(got, want) > TOLERANCE:
        problems.append(f"{what}: engine {got!r}, reference {want!r} (rel err {rel_err(got, want):.2e})")


def check_perplexity(engine, model, workdir, encode_all, window):
    path = os.path.join(workdir, "text.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write(TEXT)
    cmd = engine + ["perplexity", model, "--text-file", path, "--json"] + (["--window", str(window)] if window else [])
    got = json.loads(run(cmd, "perplexity").stdout)
    want = eval_ref.perplexity(ref.Model(model), encode_all([TEXT])[0], TEXT, window)
    problems = []
    for key in ("tokens", "words", "bytes"):
        if got[key] != want[key]:
            problems.append(f"{key}: engine {got[key]}, reference {want[key]}")
    for key in ("nll", "ppl", "word_ppl", "bits_per_byte"):
        check_close(key, got[key], want[key], problems)
    if not (isinstance(got.get("tokens_per_s"), (int, float)) and got["tokens_per_s"] > 0):
        problems.append(f"tokens_per_s: {got.get('tokens_per_s')!r}")
    return problems


def check_score(engine, model, workdir, encode_all):
    path = os.path.join(workdir, "tasks.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(item) + "\n" for item in ITEMS)
    got = json.loads(run(engine + ["score", model, "--tasks", path, "--json"], "score").stdout)

    def encode(text):
        return encode_all([text])[0]
    texts = [t for it in ITEMS for c in it["choices"] for t in (it["context"] + c, it["context"].rstrip())]
    encode_all(texts)
    want = eval_ref.score(ref.Model(model), ITEMS, encode)
    problems = []
    if got["items"] != want["items"]:
        problems.append(f"items: engine {got['items']}, reference {want['items']}")
    for key in ("acc", "acc_norm"):
        if got[key] != want[key]:
            problems.append(f"{key}: engine {got[key]}, reference {want[key]}")
    for i, (g, w) in enumerate(zip(got["results"], want["results"])):
        for j, (gl, wl) in enumerate(zip(g["loglik"], w["loglik"])):
            check_close(f"item {i + 1} choice {j}", gl, wl, problems)
        for key in ("pred", "pred_norm"):
            if g[key] != w[key]:
                problems.append(f"item {i + 1} {key}: engine {g[key]}, reference {w[key]}")
    return problems


def check_bad_inputs(engine, model, workdir):
    problems = []
    for label, contents, words in BAD_INPUTS:
        path = os.path.join(workdir, "bad.jsonl")
        with open(path, "w", encoding="utf-8") as f:
            f.write(contents)
        p = run(engine + ["score", model, "--tasks", path], label, expect_ok=False)
        err = p.stderr.decode(errors="replace")
        if p.returncode != 1 or not all(w in err for w in words):
            problems.append(f"{label}: exit {p.returncode}, stderr {err.strip()!r}, wanted exit 1 naming {words}")
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bitmamba", required=True, help="native CLI (makes the model)")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--runner", help="command that runs the CLI under test (default: --bitmamba)")
    ap.add_argument("--node", default="node")
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    engine = shlex.split(args.runner) if args.runner else [args.bitmamba]
    model = os.path.join(args.workdir, "tiny.bin")
    run([args.bitmamba, "make-model", "--preset", "tiny", "--seed", "3", "--out", model], "make-model")
    encode_all = encoder(args.node)

    failed = 0
    checks = [
        ("perplexity, one pass", lambda: check_perplexity(engine, model, args.workdir, encode_all, 0)),
        (f"perplexity --window {WINDOW}", lambda: check_perplexity(engine, model, args.workdir, encode_all, WINDOW)),
        ("score", lambda: check_score(engine, model, args.workdir, encode_all)),
        ("score, bad input", lambda: check_bad_inputs(engine, model, args.workdir)),
    ]
    for label, check in checks:
        try:
            problems = check()
        except (Failure, KeyError, ValueError, subprocess.SubprocessError) as e:
            problems = [f"{type(e).__name__}: {e}"]
        print(f"{'ok  ' if not problems else 'FAIL'} {label}")
        for p in problems:
            print(f"     {p}")
        failed += bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
