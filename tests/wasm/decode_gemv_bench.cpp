// The GEMVs of one 255M decode token: 24 layers of in_proj (4144 x 1024) and
// out_proj (1024 x 2048), then the lm_head (50257 x 1024), 50.9 MB of
// distinct weights (from memory, as in decode), each cut into rows of 16
// across the thread pool as core/session.cpp cuts out_proj and the lm_head.
// At 1 and 2 threads: ms per token and GB/s (best of 15 tokens, and their
// median, comparable with the CLI's median decode rate), beside the cost of the 49
// parallel calls a token makes (measured as empty calls), so that decode's
// time splits into GEMV work, pool synchronisation and the rest.
#include "tests/wasm/decode_gemv_bench.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "kernels/threadpool.h"
#include "tests/wasm/random_operands.h"

namespace bitmamba::kernels::bench {

namespace {

constexpr int kLayers = 24;
struct Matrix {
  int rows, cols;
};
constexpr Matrix kInProj{4144, 1024}, kOutProj{1024, 2048}, kLmHead{50257, 1024};

size_t matrix_bytes(const Matrix& m) { return static_cast<size_t>(m.rows) * ternary_row_bytes(m.cols); }

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct Token {
  std::vector<uint8_t> weights;  // layer 0 in_proj, layer 0 out_proj, ..., lm_head
  std::vector<int8_t> q;         // activations, 2048 columns
  std::vector<float> out;
  float scale = 3.0f;
  int32_t qsum = 5;
};

Token make_token() {
  Token t;
  t.weights = random_codes(kLayers * (matrix_bytes(kInProj) + matrix_bytes(kOutProj)) + matrix_bytes(kLmHead), 3);
  t.q = random_int8(2048, 5);
  t.out.resize(static_cast<size_t>(kLmHead.rows));
  return t;
}

// One token's GEMVs; returns seconds.
double run_token(const Table& table, ThreadPool& pool, Token& t) {
  const auto t0 = std::chrono::steady_clock::now();
  const uint8_t* w = t.weights.data();
  auto gemv = [&](const Matrix& m) {
    const QuantizedActs acts{t.q.data(), &t.scale, &t.qsum, 1, m.cols};
    pool.parallel_for(m.rows, 16, [&](int begin, int end) {
      table.ternary_gemv(w, m.cols, 1.5f, acts, begin, end, t.out.data(), 1);
    });
    w += matrix_bytes(m);
  };
  for (int l = 0; l < kLayers; ++l) {
    gemv(kInProj);
    gemv(kOutProj);
  }
  gemv(kLmHead);
  return seconds_since(t0);
}

// Microseconds per parallel_for that has nothing to do.
double empty_call_us(ThreadPool& pool) {
  constexpr int kCalls = 20000;
  double best = 1e9;
  for (int pass = 0; pass < 5; ++pass) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kCalls; ++i) pool.parallel_for(pool.size(), 1, [](int, int) {});
    const double us = seconds_since(t0) / kCalls * 1e6;
    best = us < best ? us : best;
  }
  return best;
}

}  // namespace

void bench_decode_gemvs(const Table& table) {
  Token token = make_token();
  const double bytes = static_cast<double>(token.weights.size());
  std::printf("\n255M decode token, GEMVs only (%s, %.1f MB of weights, %d parallel calls):\n", table.isa, bytes / 1e6,
              2 * kLayers + 1);
  std::printf("%8s %10s %10s %10s %12s %16s\n", "threads", "ms/token", "GB/s", "tok/s", "median ms", "us/empty call");
  for (int threads = 1; threads <= 2; ++threads) {
    ThreadPool pool(threads);
    std::vector<double> times(15);
    for (double& s : times) s = run_token(table, pool, token);
    std::sort(times.begin(), times.end());
    const double best = times.front();
    std::printf("%8d %10.2f %10.2f %10.1f %12.2f %16.2f\n", threads, best * 1e3, bytes / best / 1e9, 1 / best,
                times[times.size() / 2] * 1e3, empty_call_us(pool));
  }
}

}  // namespace bitmamba::kernels::bench
