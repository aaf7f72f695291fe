// Operands for the wasm kernel benches (kernel_bench.cpp,
// decode_gemv_bench.cpp): ternary codes in the kernel layout and int8
// activations from a linear congruential sequence. Their values do not
// change the kernels' speed; they only have to be valid.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace bitmamba::kernels::bench {

inline uint32_t lcg_next(uint32_t& s) { return s = s * 1664525u + 1013904223u; }

// `bytes` bytes of codes 0..2 in every 2-bit field.
inline std::vector<uint8_t> random_codes(size_t bytes, uint32_t seed) {
  std::vector<uint8_t> codes(bytes);
  for (uint8_t& b : codes) {
    const uint32_t r = lcg_next(seed);
    b = static_cast<uint8_t>((r >> 8) % 3 | ((r >> 14) % 3) << 2 | ((r >> 20) % 3) << 4 | ((r >> 26) % 3) << 6);
  }
  return codes;
}

// `n` int8 activations over the whole range.
inline std::vector<int8_t> random_int8(size_t n, uint32_t seed) {
  std::vector<int8_t> q(n);
  for (int8_t& v : q) v = static_cast<int8_t>(static_cast<int>(lcg_next(seed) >> 24) - 128);
  return q;
}

}  // namespace bitmamba::kernels::bench
