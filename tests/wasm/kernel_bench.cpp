// Ternary GEMV throughput of each kernel table of a wasm build, and of the
// lookup-table prototype (lut_gemv.h), under Node or in a browser
// (scripts/bench-kernels-browser.mjs), in the units of the native
// tests/bench/kernels_bench (GB/s of weights at 2 bits each, one thread), so
// the figures can be set side by side:
//
//   node --experimental-wasm-relaxed-simd --no-liftoff --no-experimental-fetch
//        build/wasm/test/kernel-bench-relaxed.js
//   build/release/tests/bench/kernels_bench
//        --benchmark_filter='gemv/avx2/.*threads:1'
//
// Two figures per shape:
//   in cache   one matrix, multiplied again and again (as kernels_bench does):
//              what the kernel's instructions allow;
//   streaming  distinct copies adding up to 192 MiB, one after the other: what
//              decode sees, with every weight coming from memory.
// Each figure is the best of several timed passes (the machine is shared).
// Then prefill's GEMM per table, and the GEMVs of a whole 255M decode token through the thread pool, at 1
// and 2 threads, with the build's best table (decode_gemv_bench.cpp).
// Before timing, each lookup-table variant's output is compared bit for bit
// with the scalar table's; a mismatch fails the program.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <vector>

#include "kernels/kernels.h"
#include "tests/common/bitlinear_shapes.h"
#include "tests/wasm/decode_gemv_bench.h"
#include "tests/wasm/lut_gemv.h"
#include "tests/wasm/random_operands.h"

namespace {

using namespace bitmamba::kernels;
using bench::kShapes;
using bench::Shape;

constexpr size_t kStreamBytes = size_t{192} << 20;

// The kernel tables timed, where the build has them.
constexpr const char* kTableNames[] = {"relaxed", "relaxed-dot-add", "simd128"};

// One GEMV over copy c of the weights.
using Gemv = std::function<void(size_t copy)>;

struct Speed {
  double gbps = 0, us = 0;
};

// GB/s of weights (`bytes` per matrix at 2 bits a weight) of each GEMV,
// `copies` matrices multiplied in turn, and the time of one call in us: the
// best of several passes, the GEMVs taking turns within each pass so that
// the machine's load weighs on all of them alike.
std::vector<Speed> best_speeds(const std::vector<Gemv>& gemvs, size_t bytes, size_t copies) {
  // At least ~20 ms of work per pass, so the clock's resolution does not matter.
  const size_t calls_per_pass = copies > 1 ? copies : (size_t{64} << 20) / bytes + 1;
  std::vector<Speed> best(gemvs.size());
  for (int pass = 0; pass < 10; ++pass) {
    for (size_t g = 0; g < gemvs.size(); ++g) {
      const auto t0 = std::chrono::steady_clock::now();
      for (size_t c = 0; c < calls_per_pass; ++c) gemvs[g](c % copies);
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double gbps = static_cast<double>(bytes) * static_cast<double>(calls_per_pass) / seconds / 1e9;
      if (gbps > best[g].gbps) best[g] = {gbps, seconds / static_cast<double>(calls_per_pass) * 1e6};
    }
  }
  return best;
}

void print(const char* kernels, const Shape& s, const Speed& cached, const Speed& streamed) {
  std::printf("%-16s %-16s %10.2f %10.2f %10.1f\n", kernels, s.name, cached.gbps, streamed.gbps, streamed.us);
}

// Random codes of `copies` matrices in the kernel layout.
std::vector<uint8_t> random_weights(size_t bytes, size_t copies) { return bench::random_codes(bytes * copies, 7); }

// Quantised activations of `tokens` tokens.
struct Acts {
  std::vector<int8_t> q;
  std::vector<float> scale;
  std::vector<int32_t> qsum;  // any value: the kernels subtract it as given
  int tokens, padded_cols;
  QuantizedActs view() const { return {q.data(), scale.data(), qsum.data(), tokens, padded_cols}; }
};

Acts random_acts(int padded_cols, int tokens, uint32_t seed) {
  return {bench::random_int8(static_cast<size_t>(tokens) * padded_cols, seed), std::vector<float>(tokens, 3.0f),
          std::vector<int32_t>(tokens, 5), tokens, padded_cols};
}

// Bit for bit against the scalar table on the first copy; false on a mismatch.
bool lut_matches_scalar(const lut::LutVariant& v, const Shape& s, const uint8_t* weights, const uint8_t* lut_weights,
                        const QuantizedActs& acts) {
  const int padded = ternary_padded_cols(s.cols);
  std::vector<float> want(static_cast<size_t>(s.rows)), got(static_cast<size_t>(s.rows));
  table_scalar().ternary_gemv(weights, padded, 1.5f, acts, 0, s.rows, want.data(), 1);
  v.gemv(lut_weights, padded, 1.5f, acts, 0, s.rows, got.data());
  return std::memcmp(want.data(), got.data(), want.size() * sizeof(float)) == 0;
}

// Every table of the build and every lookup-table variant on one shape;
// false if a variant's output differs from the scalar table's.
bool bench_shape(const Shape& s, size_t bytes, size_t copies) {
  const int padded = ternary_padded_cols(s.cols);
  const std::vector<uint8_t> weights = random_weights(bytes, copies);
  const size_t lut_bytes = lut::lut_bytes(s.rows, padded);
  // Copies of one repacked matrix: their content does not change the speed.
  std::vector<uint8_t> lut_weights(lut_bytes * copies);
  lut::lut_repack(weights.data(), s.rows, padded, lut_weights.data());
  for (size_t c = 1; c < copies; ++c) std::memcpy(&lut_weights[c * lut_bytes], lut_weights.data(), lut_bytes);
  const Acts acts = random_acts(padded, 1, 11);
  const QuantizedActs view = acts.view();
  std::vector<float> out(static_cast<size_t>(s.rows));

  std::vector<const char*> names;
  std::vector<Gemv> gemvs;
  for (const char* name : kTableNames) {
    const Table* t = table_by_name(name);
    if (t == nullptr) continue;  // not a table of this build
    names.push_back(t->isa);
    gemvs.push_back([&, t](size_t c) {
      t->ternary_gemv(weights.data() + c * bytes, padded, 1.5f, view, 0, s.rows, out.data(), 1);
    });
  }
  bool ok = true;
  for (const lut::LutVariant* v = lut::lut_variants(); v->name != nullptr; ++v) {
    if (!lut_matches_scalar(*v, s, weights.data(), lut_weights.data(), view)) {
      std::printf("%-16s %-16s MISMATCH against the scalar table\n", v->name, s.name);
      ok = false;
      continue;
    }
    names.push_back(v->name);
    gemvs.push_back([&, v](size_t c) {
      v->gemv(lut_weights.data() + c * lut_bytes, padded, 1.5f, view, 0, s.rows, out.data());
    });
  }
  const std::vector<Speed> cached = best_speeds(gemvs, bytes, 1);
  const std::vector<Speed> streamed = best_speeds(gemvs, bytes, copies);
  for (size_t g = 0; g < gemvs.size(); ++g) print(names[g], s, cached[g], streamed[g]);
  return ok;
}

// Prefill's GEMM: each table over 64 tokens (the session's chunk) of the
// 255M in_proj and out_proj, in cache, in G weight-tokens a second (one
// thread): the speed of its instructions, as prefill sees it per chunk.
void bench_gemms() {
  constexpr int kTokens = 64;
  std::printf("\n%-16s %-16s %12s %10s   (prefill GEMM, %d tokens, in cache, 1 thread)\n", "kernels", "shape",
              "Gweight-tok/s", "us/call", kTokens);
  for (const Shape& s : kShapes) {
    if (std::strcmp(s.name, "255m_in_proj") != 0 && std::strcmp(s.name, "255m_out_proj") != 0) continue;
    const int padded = ternary_padded_cols(s.cols);
    const size_t bytes = static_cast<size_t>(s.rows) * ternary_row_bytes(s.cols);
    const std::vector<uint8_t> weights = random_weights(bytes, 1);
    const Acts tokens = random_acts(padded, kTokens, 13);
    const QuantizedActs acts = tokens.view();
    std::vector<float> out(static_cast<size_t>(kTokens) * s.rows);
    std::vector<const char*> names;
    std::vector<Gemv> gemms;
    for (const char* name : kTableNames) {
      const Table* t = table_by_name(name);
      if (t == nullptr) continue;
      names.push_back(t->isa);
      gemms.push_back([&, t](size_t) { t->ternary_gemm(weights.data(), padded, 1.5f, acts, 0, s.rows, out.data(), s.rows); });
    }
    // best_speeds counts bytes of weights; a call here covers kTokens weight-tokens per weight (4 a byte).
    const std::vector<Speed> speeds = best_speeds(gemms, bytes * 4 * kTokens, 1);
    for (size_t g = 0; g < gemms.size(); ++g)
      std::printf("%-16s %-16s %12.2f %10.1f\n", names[g], s.name, speeds[g].gbps, speeds[g].us);
  }
}

}  // namespace

int main() {
  std::printf("%-16s %-16s %10s %10s %10s   (GB/s of weights at 2 bits, 1 thread)\n", "kernels", "shape",
              "in cache", "streaming", "us/call");
  bool ok = true;
  for (const Shape& s : kShapes) {
    const size_t bytes = static_cast<size_t>(s.rows) * ternary_row_bytes(s.cols);
    const size_t copies = kStreamBytes / bytes > 1 ? kStreamBytes / bytes : 1;
    ok = bench_shape(s, bytes, copies) && ok;
  }
  bench_gemms();
  bench::bench_decode_gemvs(table_best());
  return ok ? 0 : 1;
}
