// Scalar pieces of the kernels.h arithmetic that every ISA file shares for
// its tails and final reductions, so the order is written down once.
#pragma once

#include <cmath>
#include <cstdint>

namespace bitmamba::kernels {

// Combines the 8 interleaved partial sums left to right.
inline float sum_lanes8(const float lanes[8]) {
  float total = lanes[0];
  for (int k = 1; k < 8; ++k) total += lanes[k];
  return total;
}

// Sum of squares with 8 interleaved partial sums (lane k: i % 8 == k).
// `lanes` may hold the partial sums of the first `start` elements.
inline float sum_squares_tail(const float* x, int start, int n, float lanes[8]) {
  for (int i = start; i < n; ++i) lanes[i % 8] += x[i] * x[i];
  return sum_lanes8(lanes);
}

inline float sum_squares_scalar(const float* x, int n) {
  float lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  return sum_squares_tail(x, 0, n, lanes);
}

inline float rms_inverse(float sumsq, int n) { return 1.0f / std::sqrt(sumsq / static_cast<float>(n) + 1e-6f); }

// roundf (half away from zero) then clamp to int8. NaN (activations that
// overflowed) becomes 127, as the AVX2 (min_ps) and wasm (pmin) clamps give
// it: a cast of NaN to int8 would be undefined.
inline int8_t quantize_round(float v) {
  float r = std::round(v);
  r = !(r <= 127.0f) ? 127.0f : r;
  r = r < -128.0f ? -128.0f : r;
  return static_cast<int8_t>(r);
}

}  // namespace bitmamba::kernels
