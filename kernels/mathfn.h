// exp and log of our own, so native and wasm compute identical floats.
//
// Platform libm functions differ in their last bits; a random-weight model
// turns one ulp into a different token a few layers later. These use only
// float +, -, *, comparisons and exponent-bit arithmetic, in a fixed order
// that the SIMD kernels replicate lane by lane (see kernels.h).
#pragma once

#include <cstdint>
#include <cstring>

namespace bitmamba {

namespace mathfn {
constexpr float kExpLo = -87.0f;  // keeps 2^n a normal float
constexpr float kExpHi = 88.0f;
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kRoundMagic = 12582912.0f;  // 1.5 * 2^23: x + magic rounds x to an integer
constexpr float kLn2Hi = 0.693359375f;
constexpr float kLn2Lo = -2.12194440e-4f;
// Minimax polynomial for (e^r - 1 - r) / r^2 on |r| <= ln2 / 2 (Cephes expf).
constexpr float kExpP0 = 1.9875691500e-4f;
constexpr float kExpP1 = 1.3981999507e-3f;
constexpr float kExpP2 = 8.3334519073e-3f;
constexpr float kExpP3 = 4.1665795894e-2f;
constexpr float kExpP4 = 1.6666665459e-1f;
constexpr float kExpP5 = 5.0000001201e-1f;
}  // namespace mathfn

inline float float_from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

inline uint32_t bits_from_float(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

// e^x for x in [-87, 88] (clamped outside), relative error ~1e-7.
inline float exp_f32(float x) {
  using namespace mathfn;
  x = x < kExpLo ? kExpLo : x;
  x = x > kExpHi ? kExpHi : x;
  float t = x * kLog2e + kRoundMagic;
  float n = t - kRoundMagic;
  float r = x - n * kLn2Hi;
  r = r - n * kLn2Lo;
  float p = kExpP0;
  p = p * r + kExpP1;
  p = p * r + kExpP2;
  p = p * r + kExpP3;
  p = p * r + kExpP4;
  p = p * r + kExpP5;
  float e = p * (r * r) + r + 1.0f;
  int32_t k = static_cast<int32_t>(bits_from_float(t) - bits_from_float(kRoundMagic));
  return e * float_from_bits(static_cast<uint32_t>(k + 127) << 23);
}

// Natural log for finite x > 0 (Cephes logf). Scalar only: used per head and
// in the sampler, never in a vector kernel.
inline float log_f32(float x) {
  uint32_t u = bits_from_float(x);
  int32_t e = static_cast<int32_t>((u >> 23) & 0xff) - 126;
  float m = float_from_bits((u & 0x007fffffu) | 0x3f000000u);  // m in [0.5, 1)
  if (m < 0.707106781186547524f) {
    e -= 1;
    m = m + m - 1.0f;
  } else {
    m = m - 1.0f;
  }
  float z = m * m;
  float y = 7.0376836292e-2f;
  y = y * m - 1.1514610310e-1f;
  y = y * m + 1.1676998740e-1f;
  y = y * m - 1.2420140846e-1f;
  y = y * m + 1.4249322787e-1f;
  y = y * m - 1.6668057665e-1f;
  y = y * m + 2.0000714765e-1f;
  y = y * m - 2.4999993993e-1f;
  y = y * m + 3.3333331174e-1f;
  y = y * m * z;
  float fe = static_cast<float>(e);
  y = y + fe * -2.12194440e-4f;
  y = y - 0.5f * z;
  return m + y + fe * 0.693359375f;
}

inline float silu_f32(float x) { return x / (1.0f + exp_f32(-x)); }

inline float softplus_f32(float x) { return x > 20.0f ? x : log_f32(1.0f + exp_f32(x)); }

}  // namespace bitmamba
