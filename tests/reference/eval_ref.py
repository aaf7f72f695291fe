#!/usr/bin/env python3
"""Reference perplexity and multiple-choice scoring over bitmamba_ref.

Written from docs/evaluation.md and lm-eval-harness's definitions, never
from the C++: float64 log-softmax over the float64 reference logits.

    perplexity(model, ids, text, window) -> dict of tokens, nll, ppl,
        word_ppl, bits_per_byte, words, bytes
    score(model, items, encode) -> dict of items, acc, acc_norm and results
        [{loglik, pred, pred_norm}], items as {context, choices, label}

Token ids come from the caller (the test encodes with the npm package
gpt-3-encoder, the tokenizer's own reference).
"""

import math
import re

import numpy as np

import bitmamba_ref as ref

EOT = 50256


def log_softmax(logits):
    m = np.max(logits)
    return logits - m - math.log(float(np.sum(np.exp(logits - m))))


def continuation_loglik(sess, logits, tokens):
    """Sum of log p(token) over tokens, starting from the context's logits."""
    total = 0.0
    for t in tokens:
        total += float(log_softmax(logits)[t])
        logits = sess.step(t)
    return total


def perplexity(model, ids, text, window=0):
    """Every token after a leading <|endoftext|>; a reset every window tokens."""
    window = window or len(ids)
    sess = ref.Session(model)
    nll = 0.0
    for start in range(0, len(ids), window):
        sess.reset()
        nll -= continuation_loglik(sess, sess.step(EOT), ids[start:start + window])
    words = len(re.split(r"\s+", text))
    n_bytes = len(text.encode("utf-8"))
    return {
        "tokens": len(ids), "nll": nll, "ppl": math.exp(nll / len(ids)),
        "word_ppl": math.exp(nll / words), "bits_per_byte": nll / n_bytes / math.log(2),
        "words": words, "bytes": n_bytes,
    }


def encode_pair(context, choice, encode):
    """lm-eval-harness: trailing whitespace of the context goes to the choice;
    the choice's tokens are those of context + choice past the context's."""
    stripped = context.rstrip()
    choice = context[len(stripped):] + choice
    if stripped == "":
        return [EOT], encode(choice)
    whole = encode(stripped + choice)
    ctx = encode(stripped)
    return ctx, whole[len(ctx):]


def score(model, items, encode):
    sess = ref.Session(model)
    results = []
    for item in items:
        logliks = []
        for choice in item["choices"]:
            ctx, cont = encode_pair(item["context"], choice, encode)
            sess.reset()
            for t in ctx:
                logits = sess.step(t)
            logliks.append(continuation_loglik(sess, logits, cont))
        norm = [ll / len(c.encode("utf-8")) for ll, c in zip(logliks, item["choices"])]
        results.append({"loglik": logliks, "pred": int(np.argmax(logliks)), "pred_norm": int(np.argmax(norm))})
    n = len(items)
    return {
        "items": n,
        "acc": sum(r["pred"] == it["label"] for r, it in zip(results, items)) / n,
        "acc_norm": sum(r["pred_norm"] == it["label"] for r, it in zip(results, items)) / n,
        "results": results,
    }
