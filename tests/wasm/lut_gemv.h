// A lookup-table ternary GEMV for wasm (the T-MAC / TL idea), kept as a
// benchmark prototype beside the kernel tables: kernel_bench times it on the
// model shapes and checks it bit for bit against the scalar table.
//
// Weight layout ("lut2"): rows in tiles of 16; a tile holds padded_cols / 4
// vectors of 16 bytes, one per column quad 4k..4k+3. Byte r of a vector is
// row 16t + r: its low nibble is the pair index of columns (4k, 4k+1), its
// high nibble that of (4k+2, 4k+3), with pair index (w0 + 1) + 3 (w1 + 1) in
// 0..8. Four bits per two weights: 0.25 bytes per weight, as the kernel
// layout; rows past `rows` (up to a multiple of 16) hold w = 0.
//
// Per token and column pair the GEMV builds two 16-entry int8 tables, of
// w0 a0 + w1 a1 over the nine (w0, w1), for the activations split as
// a = 16 hi + lo (lo in -8..7, hi in -8..8), and looks up 16 rows at a time
// with i8x16.swizzle (or relaxed_swizzle: the indices are always 0..15,
// where it is deterministic).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/kernels.h"

namespace bitmamba::kernels::lut {

constexpr int kTileRows = 16;

inline int lut_padded_rows(int rows) { return (rows + kTileRows - 1) / kTileRows * kTileRows; }
inline size_t lut_bytes(int rows, int padded_cols) {
  return static_cast<size_t>(lut_padded_rows(rows)) * static_cast<size_t>(padded_cols) / 4;
}

// Kernel layout (kernels.h) -> lut2; dst has lut_bytes(rows, padded_cols) bytes.
void lut_repack(const uint8_t* packed, int rows, int padded_cols, uint8_t* dst);

// As kernels.h's TernaryMatmulFn for one token (acts.tokens == 1), on lut2
// weights; row_begin and row_end are multiples of 16 or rows' end.
using LutGemvFn = void (*)(const uint8_t* lut, int padded_cols, float w_scale, const QuantizedActs& acts,
                           int row_begin, int row_end, float* out);

struct LutVariant {
  const char* name;
  LutGemvFn gemv;
};

// The variants of this build; terminated by {nullptr, nullptr}.
const LutVariant* lut_variants();

}  // namespace bitmamba::kernels::lut
