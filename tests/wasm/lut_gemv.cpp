// The lookup-table GEMV of lut_gemv.h. Built with -mrelaxed-simd (clang-16)
// in the relaxed build, which adds the relaxed_swizzle variant and widens
// with the relaxed int8 dot product; with plain SIMD128 otherwise.
#include "tests/wasm/lut_gemv.h"

#include <wasm_simd128.h>

#include <vector>

namespace bitmamba::kernels::lut {

namespace {

constexpr int kTableBytes = 32;  // per column pair: 16 entries of lo, then 16 of hi
constexpr int kQuadsPerBlock = kBlockCols / 4;

int code_at(const uint8_t* row, int c) {
  const int block = c / kBlockCols, in_block = c % kBlockCols;
  return (row[block * kBlockBytes + in_block % kBlockBytes] >> (2 * (in_block / kBlockBytes))) & 3;
}

// a = 16 hi + lo with lo in -8..7: both halves' pair sums stay within
// -16..16, so seven lookups add up in int8 without overflow.
int split_lo(int a) { return ((a + 8) & 15) - 8; }
int split_hi(int a) { return (a - split_lo(a)) >> 4; }

// Tables of every column pair; returns the sum of q. The lookups add up
// sum w q, and kernels.h's dot is sum (w + 1) q - qsum = sum w q + sum q - qsum.
int32_t build_tables(const int8_t* q, int padded_cols, int8_t* tables) {
  int32_t sum = 0;
  for (int p = 0; p < padded_cols / 2; ++p) {
    const int a0 = q[2 * p], a1 = q[2 * p + 1];
    sum += a0 + a1;
    const int lo0 = split_lo(a0), lo1 = split_lo(a1), hi0 = split_hi(a0), hi1 = split_hi(a1);
    int8_t* t = tables + p * kTableBytes;
    for (int i = 0; i < 16; ++i) {
      const int w0 = i % 3 - 1, w1 = i / 3 - 1;
      t[i] = static_cast<int8_t>(i < 9 ? w0 * lo0 + w1 * lo1 : 0);
      t[16 + i] = static_cast<int8_t>(i < 9 ? w0 * hi0 + w1 * hi1 : 0);
    }
  }
  return sum;
}

// How a variant looks up and how it widens: `flush` adds lo + 16 hi of
// rows 0-7 and 8-15 (int8 lanes, one per row) to two int16 accumulators.
struct Swizzle {
  static v128_t lookup(v128_t table, v128_t index) { return wasm_i8x16_swizzle(table, index); }
};

struct ExtendFlush {
  static void flush(v128_t lo, v128_t hi, v128_t& rows0, v128_t& rows8) {
    rows0 = wasm_i16x8_add(rows0, wasm_i16x8_add(wasm_i16x8_extend_low_i8x16(lo),
                                                 wasm_i16x8_shl(wasm_i16x8_extend_low_i8x16(hi), 4)));
    rows8 = wasm_i16x8_add(rows8, wasm_i16x8_add(wasm_i16x8_extend_high_i8x16(lo),
                                                 wasm_i16x8_shl(wasm_i16x8_extend_high_i8x16(hi), 4)));
  }
};

#if defined(BITMAMBA_WASM_RELAXED)
struct RelaxedSwizzle {
  static v128_t lookup(v128_t table, v128_t index) {
    return (v128_t)__builtin_wasm_relaxed_swizzle_i8x16((__i8x16)table, (__i8x16)index);
  }
};

// lo and hi of a row side by side, then one dot with (1, 16): exact, the
// second operand being 7-bit (and |lo + 16 hi| <= 1088, far from the int16
// saturation of x86's pmaddubsw).
struct DotFlush {
  static v128_t weigh(v128_t interleaved) {
    const v128_t w = wasm_i16x8_splat(1 | 16 << 8);
    return (v128_t)__builtin_wasm_relaxed_dot_i8x16_i7x16_s_i16x8((__i8x16)interleaved, (__i8x16)w);
  }
  static void flush(v128_t lo, v128_t hi, v128_t& rows0, v128_t& rows8) {
    rows0 = wasm_i16x8_add(rows0, weigh(wasm_i8x16_shuffle(lo, hi, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22,
                                                           7, 23)));
    rows8 = wasm_i16x8_add(rows8, weigh(wasm_i8x16_shuffle(lo, hi, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14,
                                                           30, 15, 31)));
  }
};
#endif

// sum_c w[r][c] q[c] for the 16 rows of each of T tiles (tile_bytes apart),
// which share the table loads. Per 128-column block the int16 sums move by
// at most 16 flushes * (4 + 16 * 4) * 16 = 17408.
template <class L, class F, int T>
void tile_dots(const uint8_t* w, size_t tile_bytes, const int8_t* tables, int quads, int32_t out[T][kTileRows]) {
  const v128_t m0f = wasm_i8x16_splat(0x0f);
  v128_t acc[T][4];
  for (int t = 0; t < T; ++t)
    for (int i = 0; i < 4; ++i) acc[t][i] = wasm_i32x4_splat(0);
  for (int k0 = 0; k0 < quads; k0 += kQuadsPerBlock) {
    v128_t rows0[T], rows8[T];
    for (int t = 0; t < T; ++t) rows0[t] = rows8[t] = wasm_i16x8_splat(0);
#pragma clang loop unroll(disable)
    for (int k = k0; k < k0 + kQuadsPerBlock; k += 2) {
      v128_t lo[T], hi[T];
      for (int t = 0; t < T; ++t) lo[t] = hi[t] = wasm_i8x16_splat(0);
      for (int u = 0; u < 2; ++u) {  // two quads: four lookups per half, within int8
        const int8_t* tab = tables + (k + u) * 2 * kTableBytes;
        const v128_t lo0 = wasm_v128_load(tab), hi0 = wasm_v128_load(tab + 16);
        const v128_t lo1 = wasm_v128_load(tab + 32), hi1 = wasm_v128_load(tab + 48);
        for (int t = 0; t < T; ++t) {
          const v128_t x = wasm_v128_load(w + t * tile_bytes + (k + u) * 16);
          const v128_t i0 = wasm_v128_and(x, m0f);
          const v128_t i1 = wasm_v128_and(wasm_u16x8_shr(x, 4), m0f);
          lo[t] = wasm_i8x16_add(lo[t], wasm_i8x16_add(L::lookup(lo0, i0), L::lookup(lo1, i1)));
          hi[t] = wasm_i8x16_add(hi[t], wasm_i8x16_add(L::lookup(hi0, i0), L::lookup(hi1, i1)));
        }
      }
      for (int t = 0; t < T; ++t) F::flush(lo[t], hi[t], rows0[t], rows8[t]);
    }
    for (int t = 0; t < T; ++t) {
      acc[t][0] = wasm_i32x4_add(acc[t][0], wasm_i32x4_extend_low_i16x8(rows0[t]));
      acc[t][1] = wasm_i32x4_add(acc[t][1], wasm_i32x4_extend_high_i16x8(rows0[t]));
      acc[t][2] = wasm_i32x4_add(acc[t][2], wasm_i32x4_extend_low_i16x8(rows8[t]));
      acc[t][3] = wasm_i32x4_add(acc[t][3], wasm_i32x4_extend_high_i16x8(rows8[t]));
    }
  }
  for (int t = 0; t < T; ++t)
    for (int i = 0; i < 4; ++i) wasm_v128_store(out[t] + 4 * i, acc[t][i]);
}

template <class L, class F, int T>
void lut_gemv(const uint8_t* lut, int padded_cols, float w_scale, const QuantizedActs& acts, int row_begin,
              int row_end, float* out) {
  thread_local std::vector<int8_t> tables;
  tables.resize(static_cast<size_t>(padded_cols) / 2 * kTableBytes);
  const int32_t correction = build_tables(acts.q, padded_cols, tables.data()) - acts.qsum[0];
  const float denom = acts.scale[0] * w_scale;
  const size_t tile_bytes = static_cast<size_t>(padded_cols) * kTileRows / 4;
  auto store = [&](int r, const int32_t* dots) {
    const int n = row_end - r < kTileRows ? row_end - r : kTileRows;
    for (int i = 0; i < n; ++i) out[r + i] = static_cast<float>(dots[i] + correction) / denom;
  };
  int r = row_begin;
  for (; r + T * kTileRows <= row_end; r += T * kTileRows) {
    int32_t dots[T][kTileRows];
    tile_dots<L, F, T>(lut + static_cast<size_t>(r / kTileRows) * tile_bytes, tile_bytes, tables.data(),
                       padded_cols / 4, dots);
    for (int t = 0; t < T; ++t) store(r + t * kTileRows, dots[t]);
  }
  for (; r < row_end; r += kTileRows) {
    int32_t dots[1][kTileRows];
    tile_dots<L, F, 1>(lut + static_cast<size_t>(r / kTileRows) * tile_bytes, tile_bytes, tables.data(),
                       padded_cols / 4, dots);
    store(r, dots[0]);
  }
}

}  // namespace

void lut_repack(const uint8_t* packed, int rows, int padded_cols, uint8_t* dst) {
  const size_t row_bytes = static_cast<size_t>(padded_cols) / 4;
  const int quads = padded_cols / 4;
  for (int r = 0; r < lut_padded_rows(rows); ++r) {
    const uint8_t* row = packed + static_cast<size_t>(r) * row_bytes;
    auto pair = [&](int c) { return r < rows ? code_at(row, c) + 3 * code_at(row, c + 1) : 4; };
    uint8_t* tile = dst + static_cast<size_t>(r / kTileRows) * quads * 16;
    for (int k = 0; k < quads; ++k)
      tile[k * 16 + r % kTileRows] = static_cast<uint8_t>(pair(4 * k) | pair(4 * k + 2) << 4);
  }
}

const LutVariant* lut_variants() {
  static const LutVariant variants[] = {
#if defined(BITMAMBA_WASM_RELAXED)
      {"lut-relaxed", lut_gemv<RelaxedSwizzle, DotFlush, 1>},
      {"lut-relaxed-x2", lut_gemv<RelaxedSwizzle, DotFlush, 2>},
      {"lut-swizzle", lut_gemv<Swizzle, DotFlush, 1>},
#else
      {"lut-swizzle", lut_gemv<Swizzle, ExtendFlush, 1>},
      {"lut-swizzle-x2", lut_gemv<Swizzle, ExtendFlush, 2>},
#endif
      {nullptr, nullptr},
  };
  return variants;
}

}  // namespace bitmamba::kernels::lut
