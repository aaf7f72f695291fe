// Kernel parity inside the wasm build: the build's table (simd128 or relaxed)
// against the scalar reference, bit for bit, on random shapes with ragged
// tails, plus the thread pool under Emscripten pthreads. Built by
// wasm/CMakeLists.txt as a Node program; run by tests/wasm/CMakeLists.txt.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/threadpool.h"
#include "tests/common/kernel_parity_cases.h"

namespace bitmamba::kernels {
namespace {

// SplitMix64, as core/rng.h (kernels may not include core headers).
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  int below(int n) { return static_cast<int>(next() % static_cast<uint64_t>(n)); }
  float uniform() { return static_cast<float>(next() >> 40) * (1.0f / 16777216.0f); }
  float normal() {  // sum of 4 uniforms: cheap, roughly normal, unit variance
    return (uniform() + uniform() + uniform() + uniform() - 2.0f) * 1.7320508f;
  }
};

int g_failed = 0;
int g_checks = 0;

void check(bool ok, const std::string& what) {
  ++g_checks;
  if (!ok) {
    ++g_failed;
    if (g_failed <= 20) std::printf("FAIL %s\n", what.c_str());
  }
}

using parity::same_bits;

std::string shape(const char* op, int a, int b = -1, int c = -1) {
  std::string s = std::string(op) + " " + std::to_string(a);
  if (b >= 0) s += "x" + std::to_string(b);
  if (c >= 0) s += " t" + std::to_string(c);
  return s;
}

// Random ternary weights in the kernel layout: on-disk codes 0..2 repacked
// (all `code` if it is >= 0).
std::vector<uint8_t> random_packed(Rng& rng, int rows, int cols, int code_or_random) {
  return parity::pack_codes(rows, cols,
                            [&](uint64_t) { return code_or_random >= 0 ? code_or_random : rng.below(3); });
}

// q all `extreme_q` unless it is 0; codes all `code` unless it is < 0.
void test_matmul(const Table& simd, Rng& rng, int rows, int cols, int tokens, int extreme_q, int code) {
  const Table& ref = table_scalar();
  const int padded = ternary_padded_cols(cols);
  const std::vector<uint8_t> packed = random_packed(rng, rows, cols, code);
  std::vector<int8_t> q(static_cast<size_t>(tokens) * padded, 0);
  std::vector<float> scale(tokens);
  std::vector<int32_t> qsum(tokens);
  for (int t = 0; t < tokens; ++t) {
    int32_t sum = 0;
    for (int c = 0; c < cols; ++c) {
      const int v = extreme_q ? extreme_q : rng.below(256) - 128;
      q[static_cast<size_t>(t) * padded + c] = static_cast<int8_t>(v);
      sum += v;
    }
    scale[t] = 1.0f + rng.uniform() * 100.0f;
    qsum[t] = sum;
  }
  const QuantizedActs acts{q.data(), scale.data(), qsum.data(), tokens, padded};
  const float w_scale = 0.5f + rng.uniform() * 50.0f;
  const int row_begin = rng.below(rows);
  const int row_end = row_begin + 1 + rng.below(rows - row_begin);
  const size_t stride = static_cast<size_t>(rows) + static_cast<size_t>(rng.below(5));
  const parity::MatmulCase c{packed.data(), padded, w_scale, acts, row_begin, row_end, stride};
  for (int gemm = 0; gemm < 2; ++gemm) {
    if (!gemm && tokens != 1) continue;
    check(parity::matmul_diff(ref, simd, gemm, c).empty(),
          shape(gemm ? "ternary_gemm" : "ternary_gemv", rows, cols, tokens));
  }
}

void test_rmsnorm(const Table& simd, Rng& rng, int n, float magnitude) {
  const Table& ref = table_scalar();
  std::vector<float> x(n), g(n);
  for (int i = 0; i < n; ++i) {
    x[i] = rng.normal() * magnitude;
    g[i] = 0.5f + rng.uniform();
  }
  check(parity::rmsnorm_quantize_diff(ref, simd, x.data(), g.data(), n, ternary_padded_cols(n)).empty(),
        shape("rmsnorm_quantize", n));
  check(parity::rmsnorm_diff(ref, simd, x.data(), g.data(), n).empty(), shape("rmsnorm", n));
}

// Exact .5 ties: mean(x^2) = 4096 makes inv = 1/64 and s = 32 exact, so
// n * s = x / 2. Round half away from zero, not to even.
void test_round_ties(const Table& simd) {
  const float x[16] = {254, -31, 7, 3, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  const float g[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  const int8_t expect[5] = {127, -16, 4, 2, 1};
  for (const Table* t : {&table_scalar(), &simd}) {
    int8_t q[128];
    float s = 0;
    int32_t sum = 0;
    t->rmsnorm_quantize(x, g, 16, 128, q, &s, &sum);
    check(s == 32.0f && same_bits(q, expect, 5) && sum == 127 - 16 + 4 + 2 + 1,
          std::string("round half away from zero (") + t->isa + ")");
  }
}

void test_conv_ssm(const Table& simd, Rng& rng, int heads, int head_dim, float magnitude) {
  const Table& ref = table_scalar();
  const int E = heads * head_dim;
  auto randv = [&](int n, float m) {
    std::vector<float> v(n);
    for (float& f : v) f = rng.normal() * m;
    return v;
  };
  parity::ConvSsmInputs in(heads, head_dim);
  in.z = randv(E, magnitude);
  in.xin = randv(E, magnitude);
  in.conv_w = randv(4 * E, 0.5f);
  in.conv_b = randv(E, 0.1f);
  in.D = randv(E, 1.0f);
  in.head_B = randv(heads, 1.0f);
  in.head_C = randv(heads, 1.0f);
  for (int h = 0; h < heads; ++h) {
    in.head_d[h] = rng.uniform() * 0.1f;
    in.head_g[h] = rng.uniform();
  }
  const std::vector<float> conv0 = randv(3 * E, magnitude), ssm0 = randv(E, 1.0f);
  check(parity::conv_ssm_diff(ref, simd, in, conv0, ssm0, 3).empty(),
        shape("conv_ssm_step", heads, head_dim) + " magnitude " + std::to_string(magnitude));
}

// The pool under Emscripten pthreads: every index once, for 1..4 threads,
// many calls in a row (decode makes ~50 per token).
void test_pool() {
  for (int threads = 1; threads <= 4; ++threads) {
    ThreadPool pool(threads);
    std::vector<int> hits(1000);
    bool ok = pool.size() == threads;
    for (int call = 0; call < 200; ++call) {
      const int n = 1 + (call * 37) % 1000;
      std::fill(hits.begin(), hits.end(), 0);
      pool.parallel_for(n, 16, [&](int begin, int end) {
        for (int i = begin; i < end; ++i) ++hits[i];
      });
      for (int i = 0; i < 1000; ++i) ok = ok && hits[i] == (i < n ? 1 : 0);
    }
    check(ok, "thread pool, " + std::to_string(threads) + " threads");
  }
}

}  // namespace
}  // namespace bitmamba::kernels

// Every kernel table of the build: simd128 has one, relaxed two (int16 sums
// and int32 dot-add), of which table_best() keeps the faster here.
std::vector<const bitmamba::kernels::Table*> build_tables() {
  std::vector<const bitmamba::kernels::Table*> tables;
  for (const char* name : {"simd128", "relaxed", "relaxed-dot-add"})
    if (const bitmamba::kernels::Table* t = bitmamba::kernels::table_by_name(name)) tables.push_back(t);
  return tables;
}

int main() {
  using namespace bitmamba::kernels;
  const std::vector<const Table*> tables = build_tables();
  const size_t expected = std::strcmp(BITMAMBA_EXPECTED_ISA, "relaxed") == 0 ? 2 : 1;
  check(tables.size() == expected && std::strcmp(tables[0]->isa, BITMAMBA_EXPECTED_ISA) == 0,
        std::string("the build's tables (") + BITMAMBA_EXPECTED_ISA + ")");
  const Table& best = table_best();
  std::printf("best table here: %s\n", best.isa);
  check(std::find(tables.begin(), tables.end(), &best) != tables.end(), "the best table is one of the build's");

  for (const Table* table : tables) {
    const Table& simd = *table;
    std::printf("== kernel table %s\n", simd.isa);
    Rng rng{2024};

    std::printf("ternary products\n");
    const int cols_list[] = {1, 72, 96, 127, 128, 129, 200, 256, 384, 1000, 1024, 2048};
    for (int cols : cols_list)
      for (int tokens : {1, 2, 3, 4, 5, 7, 8, 9, 15, 17}) test_matmul(simd, rng, 1 + rng.below(70), cols, tokens, 0, -1);
    // Extremes: the longest rows with every product at its largest magnitude
    // (int16 partial sums must not wrap).
    for (int q : {-128, 127})
      for (int code : {2, 0}) test_matmul(simd, rng, 5, 8192, 1, q, code), test_matmul(simd, rng, 5, 8192, 9, q, code);

    std::printf("norms and quantisation\n");
    for (int n : {1, 3, 4, 7, 8, 9, 15, 16, 17, 31, 72, 96, 100, 128, 1000, 1024, 2048, 4097})
      for (float m : {1.0f, 1e-3f, 1e-9f, 300.0f}) test_rmsnorm(simd, rng, n, m);
    for (int i = 0; i < 300; ++i) test_rmsnorm(simd, rng, 1 + rng.below(3000), 1.0f);
    test_round_ties(simd);

    std::printf("conv + SSM step\n");
    const int head_dims[] = {1, 3, 4, 5, 6, 8, 48, 64, 128};
    for (int hd : head_dims)
      for (int heads : {1, 3, 4})
        for (float m : {1.0f, 10.0f, 100.0f}) test_conv_ssm(simd, rng, heads, hd, m);
  }

  std::printf("thread pool\n");
  test_pool();
  std::printf("%d passed, %d failed\n", g_checks - g_failed, g_failed);
  return g_failed ? 1 : 0;
}
