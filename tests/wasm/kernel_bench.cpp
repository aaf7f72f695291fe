// Ternary GEMV throughput of each kernel table of a wasm build, under Node,
// in the units of the native tests/bench/kernels_bench (GB/s of packed
// weight bytes, one thread), so the two can be set side by side:
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
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "kernels/kernels.h"
#include "tests/common/bitlinear_shapes.h"

namespace {

using namespace bitmamba::kernels;
using bench::kShapes;
using bench::Shape;

constexpr size_t kStreamBytes = size_t{192} << 20;

uint32_t next(uint32_t& s) { return s = s * 1664525u + 1013904223u; }

// GB/s of weight bytes: `copies` matrices of `bytes` each, multiplied in turn.
double best_gbps(const Table& t, const Shape& s, const std::vector<uint8_t>& weights, size_t bytes, size_t copies,
                 const QuantizedActs& acts, std::vector<float>& out) {
  const int padded = ternary_padded_cols(s.cols);
  // At least ~20 ms of work per pass, so the clock's resolution does not matter.
  const size_t calls_per_pass = copies > 1 ? copies : (size_t{64} << 20) / bytes + 1;
  double best = 0;
  for (int pass = 0; pass < 8; ++pass) {
    const auto t0 = std::chrono::steady_clock::now();
    for (size_t c = 0; c < calls_per_pass; ++c)
      t.ternary_gemv(weights.data() + (c % copies) * bytes, padded, 1.5f, acts, 0, s.rows, out.data(), 1);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double gbps = static_cast<double>(bytes) * static_cast<double>(calls_per_pass) / seconds / 1e9;
    best = gbps > best ? gbps : best;
  }
  return best;
}

}  // namespace

int main() {
  std::printf("%-16s %-16s %10s %10s   (GB/s of packed weights, 1 thread)\n", "kernels", "shape", "in cache",
              "streaming");
  for (const char* name : {"relaxed", "relaxed-dot-add", "simd128"}) {
    const Table* t = table_by_name(name);
    if (t == nullptr) continue;  // not a table of this build
    for (const Shape& s : kShapes) {
      const size_t bytes = static_cast<size_t>(s.rows) * ternary_row_bytes(s.cols);
      const size_t copies = kStreamBytes / bytes > 1 ? kStreamBytes / bytes : 1;
      std::vector<uint8_t> weights(bytes * copies);
      uint32_t seed = 7;
      for (uint8_t& b : weights) {  // random codes 0..2 in every field
        const uint32_t r = next(seed);
        b = static_cast<uint8_t>((r >> 8) % 3 | ((r >> 14) % 3) << 2 | ((r >> 20) % 3) << 4 | ((r >> 26) % 3) << 6);
      }
      const int padded = ternary_padded_cols(s.cols);
      std::vector<int8_t> q(static_cast<size_t>(padded));
      for (int8_t& v : q) v = static_cast<int8_t>(static_cast<int>(next(seed) >> 24) - 128);
      const float scale = 3.0f;
      const int32_t qsum = 5;
      const QuantizedActs acts{q.data(), &scale, &qsum, 1, padded};
      std::vector<float> out(static_cast<size_t>(s.rows));
      const double cached = best_gbps(*t, s, weights, bytes, 1, acts, out);
      const double streamed = best_gbps(*t, s, weights, bytes, copies, acts, out);
      std::printf("%-16s %-16s %10.2f %10.2f\n", t->isa, s.name, cached, streamed);
    }
  }
  return 0;
}
