// Kernel throughput in GB/s of packed weight bytes, per model shape and ISA:
//   build/release/tests/bench/kernels_bench [--benchmark_filter=gemv]
// GEMV (one token) is what decode streams; GEMM (a 64-token prefill chunk) is
// reported per token, so its GB/s compare with the GEMV's directly.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "kernels/kernels.h"
#include "kernels/threadpool.h"
#include "tests/common/bitlinear_shapes.h"

namespace bitmamba::kernels {
namespace {

using bench::kShapes;
using bench::Shape;

// 64-byte aligned bytes (the session aligns its activations so; weights
// sit wherever the file puts them, aligned here for comparable figures).
struct Aligned {
  std::vector<uint8_t> bytes;
  uint8_t* data = nullptr;
  size_t size = 0;
  void resize(size_t n) {
    bytes.assign(n + 63, 0);
    data = bytes.data() + (64 - reinterpret_cast<uintptr_t>(bytes.data()) % 64) % 64;
    size = n;
  }
};

struct Inputs {
  Aligned packed;
  Aligned q;
  std::vector<float> scale;
  std::vector<int32_t> qsum;
  std::vector<float> out;
};

Inputs make_inputs(const Shape& s, int tokens) {
  std::mt19937 rng(7);
  Inputs in;
  const int padded = ternary_padded_cols(s.cols);
  in.packed.resize(static_cast<size_t>(s.rows) * ternary_row_bytes(s.cols));
  // Random codes 0..2 in every field.
  for (size_t i = 0; i < in.packed.size; ++i) {
    uint8_t v = 0;
    for (int f = 0; f < 4; ++f) v |= static_cast<uint8_t>((rng() % 3) << (2 * f));
    in.packed.data[i] = v;
  }
  in.q.resize(static_cast<size_t>(tokens) * padded);
  for (size_t i = 0; i < in.q.size; ++i) in.q.data[i] = static_cast<uint8_t>(static_cast<int>(rng() % 255) - 127);
  in.scale.assign(static_cast<size_t>(tokens), 3.0f);
  in.qsum.assign(static_cast<size_t>(tokens), 5);
  in.out.resize(static_cast<size_t>(tokens) * s.rows);
  return in;
}

void run_matmul(benchmark::State& state, const char* isa, const Shape& s, int tokens, int threads) {
  const Table* table = table_by_name(isa);
  if (table == nullptr) {
    state.SkipWithError((std::string(isa) + " is not supported here").c_str());
    return;
  }
  Inputs in = make_inputs(s, tokens);
  const int padded = ternary_padded_cols(s.cols);
  const QuantizedActs acts{reinterpret_cast<const int8_t*>(in.q.data), in.scale.data(), in.qsum.data(), tokens,
                          padded};
  const TernaryMatmulFn fn = tokens == 1 ? table->ternary_gemv : table->ternary_gemm;
  ThreadPool pool(threads);
  for (auto _ : state) {
    pool.parallel_for(s.rows, 16, [&](int begin, int end) {
      fn(in.packed.data, padded, 1.5f, acts, begin, end, in.out.data(), static_cast<size_t>(s.rows));
    });
    benchmark::DoNotOptimize(in.out.data());
    benchmark::ClobberMemory();
  }
  // Bytes of weights per token: what a decode step streams.
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(in.packed.size) * tokens);
  state.counters["tokens"] = tokens;
}

void register_all() {
  for (const char* isa : {"scalar", "avx2", "avx512"}) {
    if (table_by_name(isa) == nullptr) continue;
    for (const Shape& s : kShapes) {
      for (int threads : {1, 2}) {
        for (int tokens : {1, 64}) {
          if (std::string(isa) == "scalar" && tokens > 1) continue;  // minutes, and nobody prefills on it
          const std::string name = std::string(tokens == 1 ? "gemv/" : "gemm64/") + isa + "/" + s.name +
                                   "/threads:" + std::to_string(threads);
          benchmark::RegisterBenchmark(name.c_str(), [isa, s, tokens, threads](benchmark::State& st) {
            run_matmul(st, isa, s, tokens, threads);
          })->UseRealTime()->Unit(benchmark::kMicrosecond);
        }
      }
    }
  }
}

}  // namespace
}  // namespace bitmamba::kernels

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  bitmamba::kernels::register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
