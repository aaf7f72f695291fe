// The ternary GEMM driver shared by avx2.cpp and avx512.cpp: the walk over
// token groups and row tiles, the qsum corrections and denominators, and the
// staged copy to `out`. Each file supplies its own row product (one row
// against up to `Tokens` tokens), which is all that differs between them.
// Include from those two files only: it needs AVX2 (checked below).
//
// Everything here is in an anonymous namespace, so each file compiles its
// own copy with its own -m flags: the linker must not merge an AVX-512
// build of an inline function into the AVX2 file, whose code runs on CPUs
// without AVX-512. (Each instantiation also names its file's own row table,
// which has internal linkage.)
#pragma once

#ifndef __AVX2__
#error "kernels/x86_gemm_driver.h is for the AVX2 and AVX-512 kernel files only"
#endif

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/kernels.h"

namespace bitmamba::kernels {
namespace {

// One row `w` against tokens q, q + q_stride, ...: dots[t] = sum_c code[c] * q[t][c]
// for the group's tokens, 0 in the lanes past them (all `Tokens` are written).
using GemmRowFn = void (*)(const uint8_t* w, const int8_t* q, size_t q_stride, int blocks, int32_t* dots);

// RowFns[nt] handles a group of nt tokens (1..Tokens); RowTile rows are
// staged before they go to `out`.
template <int Tokens, int RowTile, const GemmRowFn (&RowFns)[Tokens + 1]>
void ternary_gemm_driver(const uint8_t* packed, int padded_cols, float w_scale, const QuantizedActs& acts,
                         int row_begin, int row_end, float* out, size_t out_stride) {
  static_assert(Tokens % 8 == 0, "the outputs are finished 8 tokens (one __m256) at a time");
  const size_t row_bytes = static_cast<size_t>(padded_cols) / 4;
  const int blocks = padded_cols / kBlockCols;
  const size_t q_stride = static_cast<size_t>(acts.padded_cols);
  // Token groups outermost: a group's activations (Tokens * padded_cols
  // bytes, 16 KiB for 1024 columns and 16 tokens) stay in L1 while every row
  // of the range streams past.
  for (int t0 = 0; t0 < acts.tokens; t0 += Tokens) {
    const int nt = acts.tokens - t0 < Tokens ? acts.tokens - t0 : Tokens;
    // The group's corrections and denominators as vectors (unused lanes:
    // qsum 0, denominator 1), so each row's outputs take one vector
    // subtract, convert and divide.
    alignas(32) float denom[Tokens];
    alignas(32) int32_t qsum[Tokens];
    for (int t = 0; t < Tokens; ++t) {
      denom[t] = t < nt ? acts.scale[t0 + t] * w_scale : 1.0f;
      qsum[t] = t < nt ? acts.qsum[t0 + t] : 0;
    }
    const int8_t* q = acts.q + static_cast<size_t>(t0) * q_stride;
    for (int tile = row_begin; tile < row_end; tile += RowTile) {
      const int tile_end = tile + RowTile < row_end ? tile + RowTile : row_end;
      // The tile's outputs are staged token-major in L1, then each token's
      // rows go out as one contiguous copy: stored straight to `out`, every
      // output would touch another cache line (out_stride floats apart).
      alignas(64) float staged[Tokens][RowTile];
      for (int r = tile; r < tile_end; ++r) {
        alignas(32) int32_t dots[Tokens];
        alignas(32) float values[Tokens];
        RowFns[nt](packed + r * row_bytes, q, q_stride, blocks, dots);
        for (int t = 0; t < Tokens; t += 8) {
          const __m256i d = _mm256_sub_epi32(_mm256_load_si256(reinterpret_cast<const __m256i*>(dots + t)),
                                             _mm256_load_si256(reinterpret_cast<const __m256i*>(qsum + t)));
          _mm256_store_ps(values + t, _mm256_div_ps(_mm256_cvtepi32_ps(d), _mm256_load_ps(denom + t)));
        }
        for (int t = 0; t < nt; ++t) staged[t][r - tile] = values[t];
      }
      for (int t = 0; t < nt; ++t)
        std::memcpy(out + (t0 + t) * out_stride + tile, staged[t], static_cast<size_t>(tile_end - tile) * sizeof(float));
    }
  }
}

}  // namespace
}  // namespace bitmamba::kernels
