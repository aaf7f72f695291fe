// WebAssembly SIMD128 kernels, and (built with BITMAMBA_WASM_RELAXED and
// -mrelaxed-simd) the relaxed-SIMD variant. Which one is a property of the
// build: kernels/CMakeLists.txt compiles this file once, for one of them.
//
// Bit-identical to kernels/scalar.cpp: the ternary sums are exact integers in
// any order, and the float code does the operations of kernels.h in the same
// order, lane by lane (wasm has no fused multiply-add outside relaxed SIMD,
// and the relaxed variant uses only the integer dot product).
#include <wasm_simd128.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/mathfn.h"
#include "kernels/scalar_common.h"

namespace bitmamba::kernels {

namespace {

// ---------------------------------------------------------------------------
// Ternary products. A 32-byte block holds 128 codes: field f (bits 2f..2f+1)
// of byte j is column 32f + j, so field f of the two 16-byte halves lines up
// with activations q[32f .. 32f + 31] of the block.

inline int32_t sum_i32x4(v128_t v) {
  return wasm_i32x4_extract_lane(v, 0) + wasm_i32x4_extract_lane(v, 1) + wasm_i32x4_extract_lane(v, 2) +
         wasm_i32x4_extract_lane(v, 3);
}

// Wasm has no prefetch instruction; a byte load stands in for one. With
// kTouchLongRows (rows of more than 1024 columns: 255M out_proj; 1B in_proj
// and out_proj) or kTouchShortRows, a GEMV loads one byte of every cache line
// of the next group of rows while it computes a group: 16 R bytes per
// half-block, the whole next group by the end. Which tables touch which rows
// is measured: see each table's constants.
inline void touch(const uint8_t* p) { (void)*reinterpret_cast<const volatile uint8_t*>(p); }

#if defined(BITMAMBA_WASM_RELAXED)

// Two ways to do the products, both exact: the codes are the 7-bit operand,
// where the relaxed dot products are exact and the same on every engine.
// Which is faster depends on how the engine lowers them: V8 turns the i32
// dot-add into one vpdpbusd where the CPU has AVX-VNNI (Chromium does;
// Node 20's V8 does not, and there it costs three instructions). The build
// carries both; table_wasm_best() times them once and keeps the faster.
//
// The fields without a shift each: with t = v >> 4 in 16-bit lanes (the
// masks keep only bits that stayed in their own byte),
//   v & 0x03: field 0, code x1      v & 0x0C: field 1, code x4
//   t & 0x03: field 2, code x1      t & 0x0C: field 3, code x4
// x1 products go to "lo", x4 ones to "hi"; the total is (4 lo + hi) / 4.
// The activations as the relaxed kernels read them: int8, as given.
struct ActsI8 {
  const int8_t* q[8];  // up to the GEMM's kGemmTokens
  void prepare(const QuantizedActs& acts, int t0, int nt) {
    for (int k = 0; k < nt; ++k) q[k] = acts.q + static_cast<size_t>(t0 + k) * acts.padded_cols;
  }
};

struct Fields {
  v128_t c[4];  // fields 0..3, scaled x1, x4, x1, x4
  Fields(v128_t v, v128_t m03, v128_t m0c) {
    const v128_t t = wasm_u16x8_shr(v, 4);
    c[0] = wasm_v128_and(v, m03);
    c[1] = wasm_v128_and(v, m0c);
    c[2] = wasm_v128_and(t, m03);
    c[3] = wasm_v128_and(t, m0c);
  }
};

// i16x8.relaxed_dot_i8x16_i7x16_s (pmaddubsw on x86), summed in int16.
// Per block (both halves) a hi lane moves by at most 4 pairs * 2 * 8 * 128 =
// 8192, so 4 blocks fit int16 exactly (-32768..32512); then both are
// widened, as 4 lo + hi.
struct PairsI16 {
  static constexpr const char* kIsa = "relaxed";
  // Rows per pass of the GEMV (they share the activation loads), for rows
  // of up to 1024 columns and for longer ones. Streaming two rows of 512
  // bytes or more side by side ran 20-40% slower per weight than four, under
  // Node and in Chromium alike (memory-bound: the kernel's work is the same,
  // and with the rows in cache long rows run faster than short ones).
  static constexpr int kGemvRows = 2;
  static constexpr int kGemvRowsLong = 4;
  // Long rows without the touch streamed 15-25% below their in-cache speed
  // under Node 20 (1 thread: 55-59 against 41-43 us per 255M out_proj); short
  // rows stream at the in-cache speed already, and the touch made them 5-8%
  // slower.
  static constexpr bool kTouchShortRows = false;
  static constexpr bool kTouchLongRows = true;
  using Acts = ActsI8;
  static constexpr int kFlushBlocks = 4;

  static v128_t dot(v128_t codes, v128_t q) {
    return (v128_t)__builtin_wasm_relaxed_dot_i8x16_i7x16_s_i16x8((__i8x16)q, (__i8x16)codes);
  }

  // sum_c code[r][c] * q_k[c] for R rows (row_bytes apart) and NT tokens.
  template <int R, int NT, bool kTouch>
  static void row_dots(const uint8_t* w, size_t row_bytes, const int8_t* const* q, int blocks, int32_t out[R][NT],
                       const uint8_t* ahead) {
    const v128_t m03 = wasm_i8x16_splat(0x03), m0c = wasm_i8x16_splat(0x0c);
    const v128_t ones = wasm_i16x8_splat(1), fours = wasm_i16x8_splat(4);
    v128_t total[R][NT];
    for (int r = 0; r < R; ++r)
      for (int k = 0; k < NT; ++k) total[r][k] = wasm_i32x4_splat(0);
    for (int b0 = 0; b0 < blocks; b0 += kFlushBlocks) {
      const int b1 = b0 + kFlushBlocks < blocks ? b0 + kFlushBlocks : blocks;
      v128_t lo[R][NT], hi[R][NT];
      for (int r = 0; r < R; ++r)
        for (int k = 0; k < NT; ++k) lo[r][k] = hi[r][k] = wasm_i16x8_splat(0);
      // One 16-byte half-block per iteration, not unrolled: with everything of
      // a block in flight, V8's register allocator spilled a third of the
      // accumulators and activations to the stack (1.3x slower).
#pragma clang loop unroll(disable)
      for (int hb = 2 * b0; hb < 2 * b1; ++hb) {
        const int b = hb >> 1, h = hb & 1;
        if (kTouch) touch(ahead + hb * 16 * R);
        for (int r = 0; r < R; ++r) {
          const Fields f(wasm_v128_load(w + r * row_bytes + hb * 16), m03, m0c);
          for (int k = 0; k < NT; ++k) {
            const int8_t* x = q[k] + b * kBlockCols + 16 * h;
            lo[r][k] = wasm_i16x8_add(lo[r][k], dot(f.c[0], wasm_v128_load(x)));
            hi[r][k] = wasm_i16x8_add(hi[r][k], dot(f.c[1], wasm_v128_load(x + 32)));
            lo[r][k] = wasm_i16x8_add(lo[r][k], dot(f.c[2], wasm_v128_load(x + 64)));
            hi[r][k] = wasm_i16x8_add(hi[r][k], dot(f.c[3], wasm_v128_load(x + 96)));
          }
        }
      }
      for (int r = 0; r < R; ++r)
        for (int k = 0; k < NT; ++k)
          total[r][k] = wasm_i32x4_add(total[r][k], wasm_i32x4_add(wasm_i32x4_dot_i16x8(lo[r][k], fours),
                                                                   wasm_i32x4_dot_i16x8(hi[r][k], ones)));
    }
    for (int r = 0; r < R; ++r)
      for (int k = 0; k < NT; ++k) out[r][k] = sum_i32x4(total[r][k]) >> 2;
  }

  // The GEMM's register block (see gemm_block): one int16 sum per row and
  // token, 1 row x 8 tokens (2 x 4 and 2 x 8 ran as fast or slower, under
  // Node and in Chromium). A lane moves by at most 4 fields * 2 * 2 * 128 = 2048 per
  // half-block, so 16 half-blocks fit int16 exactly (-32768..32512).
  static constexpr int kGemmRows = 1;
  static constexpr int kGemmTokens = 8;
  static constexpr int kGemmFlushHalfBlocks = 16;
  static v128_t gemm_zero() { return wasm_i16x8_splat(0); }
  static v128_t gemm_add(v128_t acc, v128_t codes, v128_t q) { return wasm_i16x8_add(acc, dot(codes, q)); }
  static v128_t gemm_flush(v128_t total, v128_t acc) {
    return wasm_i32x4_add(total, wasm_i32x4_dot_i16x8(acc, wasm_i16x8_splat(1)));
  }
};

// i32x4.relaxed_dot_i8x16_i7x16_add_s: four products and the accumulator in
// one instruction where the engine has VNNI; int32 sums need no flushing.
struct DotAddI32 {
  static constexpr const char* kIsa = "relaxed-dot-add";
  // Each sum is a chain of dependent dot-adds (vpdpbusd: 5 cycles, 2 a
  // cycle), so the GEMV keeps one chain per field and row: 8 in flight for 2
  // rows. Against two chains per row (x1 and x4 fields) and 2 / 4 rows, in
  // Chromium at 1 thread, this ran 12-13% faster on the 255M in_proj and
  // lm_head and 20-30% on the longer rows, but only with the touch ahead on
  // every row; without it, short rows ran 20% slower than before.
  static constexpr int kGemvRows = 2;
  static constexpr int kGemvRowsLong = 2;
  static constexpr bool kTouchShortRows = true;
  static constexpr bool kTouchLongRows = true;
  using Acts = ActsI8;

  static v128_t dot_add(v128_t codes, v128_t q, v128_t acc) {
    return (v128_t)__builtin_wasm_relaxed_dot_i8x16_i7x16_add_s_i32x4((__i8x16)q, (__i8x16)codes, (__i32x4)acc);
  }

  template <int R, int NT, bool kTouch>
  static void row_dots(const uint8_t* w, size_t row_bytes, const int8_t* const* q, int blocks, int32_t out[R][NT],
                       const uint8_t* ahead) {
    const v128_t m03 = wasm_i8x16_splat(0x03), m0c = wasm_i8x16_splat(0x0c);
    v128_t acc[R][NT][4];  // per field: scaled x1, x4, x1, x4
    for (int r = 0; r < R; ++r)
      for (int k = 0; k < NT; ++k)
        for (int f = 0; f < 4; ++f) acc[r][k][f] = wasm_i32x4_splat(0);
#pragma clang loop unroll(disable)
    for (int hb = 0; hb < 2 * blocks; ++hb) {
      const int b = hb >> 1, h = hb & 1;
      if (kTouch) touch(ahead + hb * 16 * R);
      for (int r = 0; r < R; ++r) {
        const Fields f(wasm_v128_load(w + r * row_bytes + hb * 16), m03, m0c);
        for (int k = 0; k < NT; ++k) {
          const int8_t* x = q[k] + b * kBlockCols + 16 * h;
          for (int i = 0; i < 4; ++i) acc[r][k][i] = dot_add(f.c[i], wasm_v128_load(x + 32 * i), acc[r][k][i]);
        }
      }
    }
    for (int r = 0; r < R; ++r)
      for (int k = 0; k < NT; ++k) {
        const int32_t lo = sum_i32x4(wasm_i32x4_add(acc[r][k][0], acc[r][k][2]));
        const int32_t hi = sum_i32x4(wasm_i32x4_add(acc[r][k][1], acc[r][k][3]));
        out[r][k] = (4 * lo + hi) >> 2;
      }
  }

  // The GEMM's register block (see gemm_block): int32 sums, never flushed,
  // 3 rows x 8 tokens. Each sum is a chain of dependent dot-adds, and in
  // Chromium (VNNI) more chains in flight beat the spills they cost: 2 x 8
  // ran 1.6-1.8x the old 1 x 2, 2 x 4 only 1.2x, 1 x 12 and 4 x 4 in between.
  // Then 3 x 8 ran 3-6% faster than 2 x 8 on the 255M in_proj and out_proj,
  // and 2 x 12, 2 x 16, 3 x 12, 3 x 16, 4 x 8 and 4 x 12 within -5..+4% of it
  // (the kernel bench's GEMM section, two runs).
  static constexpr int kGemmRows = 3;
  static constexpr int kGemmTokens = 8;
  static constexpr int kGemmFlushHalfBlocks = 1 << 30;
  static v128_t gemm_zero() { return wasm_i32x4_splat(0); }
  static v128_t gemm_add(v128_t acc, v128_t codes, v128_t q) { return dot_add(codes, q, acc); }
  static v128_t gemm_flush(v128_t total, v128_t acc) { return wasm_i32x4_add(total, acc); }
};

// GEMM: R rows against NT tokens per pass over the rows' codes, so each
// activation load serves R rows and each code vector NT tokens. The fields
// are taken one at a time, (v >> 2f) & 3 (a 16-bit shift; the mask drops the
// bits that crossed from the other byte), so that only R code vectors are
// live besides the R * NT sums (V8 allocates 15 vector registers on x64).
template <class K, int R, int NT>
void gemm_block(const uint8_t* w, size_t row_bytes, const int8_t* const* q, int blocks, int32_t out[R][NT]) {
  const v128_t m03 = wasm_i8x16_splat(0x03);
  v128_t total[R][NT];
  for (int r = 0; r < R; ++r)
    for (int k = 0; k < NT; ++k) total[r][k] = wasm_i32x4_splat(0);
  const int half_blocks = 2 * blocks;
  for (int hb0 = 0; hb0 < half_blocks; hb0 += K::kGemmFlushHalfBlocks) {
    const int hb1 = half_blocks - hb0 > K::kGemmFlushHalfBlocks ? hb0 + K::kGemmFlushHalfBlocks : half_blocks;
    v128_t acc[R][NT];
    for (int r = 0; r < R; ++r)
      for (int k = 0; k < NT; ++k) acc[r][k] = K::gemm_zero();
#pragma clang loop unroll(disable)
    for (int hb = hb0; hb < hb1; ++hb) {
      const int x_offset = (hb >> 1) * kBlockCols + 16 * (hb & 1);
      v128_t v[R];
      for (int r = 0; r < R; ++r) v[r] = wasm_v128_load(w + r * row_bytes + hb * 16);
      for (int f = 0; f < 4; ++f) {
        v128_t c[R];
        for (int r = 0; r < R; ++r) c[r] = wasm_v128_and(f == 0 ? v[r] : wasm_u16x8_shr(v[r], 2 * f), m03);
        for (int k = 0; k < NT; ++k) {
          const v128_t x = wasm_v128_load(q[k] + x_offset + 32 * f);
          for (int r = 0; r < R; ++r) acc[r][k] = K::gemm_add(acc[r][k], c[r], x);
        }
      }
    }
    for (int r = 0; r < R; ++r)
      for (int k = 0; k < NT; ++k) total[r][k] = K::gemm_flush(total[r][k], acc[r][k]);
  }
  for (int r = 0; r < R; ++r)
    for (int k = 0; k < NT; ++k) out[r][k] = sum_i32x4(total[r][k]);
}

// The GEMM as matmul_tokens sees a table: gemm_block for row_dots.
template <class K>
struct Gemm {
  using Acts = typename K::Acts;
  template <int R, int NT, bool kTouch>
  static void row_dots(const uint8_t* w, size_t row_bytes, const int8_t* const* q, int blocks, int32_t out[R][NT],
                       const uint8_t*) {
    static_assert(!kTouch, "the GEMM reads its rows many times over; nothing to touch ahead");
    gemm_block<K, R, NT>(w, row_bytes, q, blocks, out);
  }
};

#else

// SIMD128 has no 8-bit multiply-add, so the activations are widened to int16
// once per call and i32x4.dot_i16x8_s (pairs of int16 products) does the
// work. An int16 lane of the codes holds bytes 2i (low) and 2i+1 (high), so
// the activations of (block b, field f, half h) are stored as 8 int16 of the
// even columns, then 8 of the odd ones. With s = v, v >> 8, v >> 4, v >> 12
// (16-bit shifts), masks 3 and 12 select, in the low byte of each lane,
//   s & 3  : field 0 or 2 of the even or odd byte, code x1
//   s & 12 : field 1 or 3 of the even or odd byte, code x4
// x1 products go to "lo", x4 ones to "hi" (int32); the sum is (4 lo + hi) / 4.
inline const int16_t* widened(const int8_t* q, int padded_cols, int16_t* out) {
  for (int c = 0; c < padded_cols; c += 16) {
    const v128_t x = wasm_v128_load(q + c);
    wasm_v128_store(out + c, wasm_i16x8_shr(wasm_i16x8_shl(x, 8), 8));  // even bytes, sign-extended
    wasm_v128_store(out + c + 8, wasm_i16x8_shr(x, 8));                 // odd bytes
  }
  return out;
}

// The activations as the kernel reads them: widened per call into a buffer
// of this thread's (it grows once, to the widest layer).
struct ActsI16 {
  const int16_t* q[2];
  void prepare(const QuantizedActs& acts, int t0, int nt) {
    thread_local std::vector<int16_t> buffer;
    const size_t cols = static_cast<size_t>(acts.padded_cols);
    if (buffer.size() < 2 * cols) buffer.resize(2 * cols);
    for (int k = 0; k < nt; ++k)
      q[k] = widened(acts.q + static_cast<size_t>(t0 + k) * cols, acts.padded_cols, buffer.data() + k * cols);
  }
};

struct WidenedI16 {
  static constexpr const char* kIsa = "simd128";
  static constexpr int kGemvRows = 3;  // rows per pass of the GEMV: they share the activation loads
  static constexpr int kGemvRowsLong = 3;
  // Off: touching ahead made no difference that stood out of the noise.
  static constexpr bool kTouchShortRows = false;
  static constexpr bool kTouchLongRows = false;
  using Acts = ActsI16;

  template <int R, int NT, bool kTouch>
  static void row_dots(const uint8_t* w, size_t row_bytes, const int16_t* const* q, int blocks, int32_t out[R][NT],
                       const uint8_t* ahead) {
    const v128_t m3 = wasm_i16x8_splat(3), m12 = wasm_i16x8_splat(12);
    v128_t lo[R][NT], hi[R][NT];
    for (int r = 0; r < R; ++r)
      for (int k = 0; k < NT; ++k) lo[r][k] = hi[r][k] = wasm_i32x4_splat(0);
    // One 16-byte half-block per iteration, not unrolled, so that V8's
    // register allocator need not spill (as in the relaxed kernel).
#pragma clang loop unroll(disable)
    for (int hb = 0; hb < 2 * blocks; ++hb) {
      const int b = hb >> 1, h = hb & 1;
      if (kTouch) touch(ahead + hb * 16 * R);
      for (int r = 0; r < R; ++r) {
        const v128_t v = wasm_v128_load(w + r * row_bytes + hb * 16);
        // [fields 0,1 | 2,3][even | odd byte]
        const v128_t s[2][2] = {{v, wasm_u16x8_shr(v, 8)}, {wasm_u16x8_shr(v, 4), wasm_u16x8_shr(v, 12)}};
        for (int k = 0; k < NT; ++k) {
          const int16_t* x = q[k] + b * kBlockCols + 16 * h;
          for (int p = 0; p < 2; ++p) {
            for (int odd = 0; odd < 2; ++odd) {
              const v128_t c = s[p][odd];
              const int16_t* xf = x + 2 * p * kBlockBytes + 8 * odd;  // field 2p, then 2p + 1
              lo[r][k] = wasm_i32x4_add(lo[r][k], wasm_i32x4_dot_i16x8(wasm_v128_and(c, m3), wasm_v128_load(xf)));
              hi[r][k] = wasm_i32x4_add(hi[r][k],
                                        wasm_i32x4_dot_i16x8(wasm_v128_and(c, m12), wasm_v128_load(xf + kBlockBytes)));
            }
          }
        }
      }
    }
    for (int r = 0; r < R; ++r)
      for (int k = 0; k < NT; ++k) out[r][k] = (4 * sum_i32x4(lo[r][k]) + sum_i32x4(hi[r][k])) >> 2;
  }
};

#endif

// Tokens [t0, t0 + NT) of rows [row_begin, row_end), R rows at a time.
// kTouch: touch the next group of rows while computing one (see touch()).
template <class K, int R, int NT, bool kTouch = false>
void matmul_tokens(const uint8_t* packed, int padded_cols, float w_scale, const QuantizedActs& acts, int t0,
                   int row_begin, int row_end, float* out, size_t out_stride) {
  const size_t row_bytes = static_cast<size_t>(padded_cols) / 4;
  const int blocks = padded_cols / kBlockCols;
  typename K::Acts q;
  static_assert(NT <= static_cast<int>(sizeof(q.q) / sizeof(q.q[0])), "more tokens than the activations hold");
  q.prepare(acts, t0, NT);
  float denom[NT];
  for (int k = 0; k < NT; ++k) denom[k] = acts.scale[t0 + k] * w_scale;
  auto store = [&](int r, const int32_t* dot) {
    for (int k = 0; k < NT; ++k)
      out[(t0 + k) * out_stride + r] = static_cast<float>(dot[k] - acts.qsum[t0 + k]) / denom[k];
  };
  int r = row_begin;
  for (; r + R <= row_end; r += R) {
    int32_t dot[R][NT];
    const uint8_t* rows = packed + r * row_bytes;
    const uint8_t* next = r + 2 * R <= row_end ? rows + R * row_bytes : rows;  // never past the last row
    K::template row_dots<R, NT, kTouch>(rows, row_bytes, q.q, blocks, dot, next);
    for (int i = 0; i < R; ++i) store(r + i, dot[i]);
  }
  for (; r < row_end; ++r) {
    int32_t dot[1][NT];
    K::template row_dots<1, NT, false>(packed + r * row_bytes, row_bytes, q.q, blocks, dot, nullptr);
    store(r, dot[0]);
  }
}

template <class K>
void ternary_gemv_wasm(const uint8_t* packed, int padded_cols, float w_scale, const QuantizedActs& acts,
                       int row_begin, int row_end, float* out, size_t out_stride) {
  for (int t = 0; t < acts.tokens; ++t) {
    if (padded_cols > 1024)
      matmul_tokens<K, K::kGemvRowsLong, 1, K::kTouchLongRows>(packed, padded_cols, w_scale, acts, t, row_begin,
                                                                row_end, out, out_stride);
    else
      matmul_tokens<K, K::kGemvRows, 1, K::kTouchShortRows>(packed, padded_cols, w_scale, acts, t, row_begin, row_end,
                                                            out, out_stride);
  }
}

#if defined(BITMAMBA_WASM_RELAXED)

// Token groups outermost, so a group's activations (K::kGemmTokens *
// padded_cols bytes) stay in L1 while the rows stream past; the last group
// of a chunk may be smaller.
template <class K, int NT>
void gemm_group(const uint8_t* packed, int padded_cols, float w_scale, const QuantizedActs& acts, int t0,
                int nt, int row_begin, int row_end, float* out, size_t out_stride) {
  if constexpr (NT > 1) {
    if (nt < NT) return gemm_group<K, NT - 1>(packed, padded_cols, w_scale, acts, t0, nt, row_begin, row_end, out,
                                              out_stride);
  }
  matmul_tokens<Gemm<K>, K::kGemmRows, NT>(packed, padded_cols, w_scale, acts, t0, row_begin, row_end, out, out_stride);
}

template <class K>
void ternary_gemm_wasm(const uint8_t* packed, int padded_cols, float w_scale, const QuantizedActs& acts,
                       int row_begin, int row_end, float* out, size_t out_stride) {
  for (int t = 0; t < acts.tokens; t += K::kGemmTokens) {
    const int nt = acts.tokens - t < K::kGemmTokens ? acts.tokens - t : K::kGemmTokens;
    gemm_group<K, K::kGemmTokens>(packed, padded_cols, w_scale, acts, t, nt, row_begin, row_end, out, out_stride);
  }
}

#else

// Two tokens per pass over the rows: the codes are unpacked once for both
// (more tokens per pass ran slower: their accumulators no longer fit the
// registers).
template <class K>
void ternary_gemm_wasm(const uint8_t* packed, int padded_cols, float w_scale, const QuantizedActs& acts,
                       int row_begin, int row_end, float* out, size_t out_stride) {
  int t = 0;
  for (; t + 2 <= acts.tokens; t += 2)
    matmul_tokens<K, 1, 2>(packed, padded_cols, w_scale, acts, t, row_begin, row_end, out, out_stride);
  if (t < acts.tokens) matmul_tokens<K, 1, 1>(packed, padded_cols, w_scale, acts, t, row_begin, row_end, out, out_stride);
}

#endif

// ---------------------------------------------------------------------------
// Norms and activation quantisation.

// kernels.h: 8 interleaved partial sums; lanes 0-3 in one vector, 4-7 in the other.
float sum_squares_wasm(const float* x, int n) {
  v128_t lo = wasm_f32x4_splat(0.0f), hi = wasm_f32x4_splat(0.0f);
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    const v128_t a = wasm_v128_load(x + i), b = wasm_v128_load(x + i + 4);
    lo = wasm_f32x4_add(lo, wasm_f32x4_mul(a, a));
    hi = wasm_f32x4_add(hi, wasm_f32x4_mul(b, b));
  }
  float lanes[8];
  wasm_v128_store(lanes, lo);
  wasm_v128_store(lanes + 4, hi);
  return sum_squares_tail(x, i, n, lanes);
}

// roundf (half away from zero), then clamp to [-128, 127]: r = trunc(v), and
// one more step away from zero when |v - r| >= 0.5. v - trunc(v) is exact.
inline v128_t quantize_round_f32x4(v128_t v) {
  const v128_t r = wasm_f32x4_trunc(v);
  const v128_t frac = wasm_f32x4_abs(wasm_f32x4_sub(v, r));
  const v128_t sign_one = wasm_v128_or(wasm_v128_and(v, wasm_i32x4_splat(INT32_MIN)), wasm_f32x4_splat(1.0f));
  const v128_t step = wasm_v128_and(wasm_f32x4_ge(frac, wasm_f32x4_splat(0.5f)), sign_one);
  v128_t out = wasm_f32x4_add(r, step);
  out = wasm_f32x4_pmin(wasm_f32x4_splat(127.0f), out);   // v > 127 ? 127 : v
  out = wasm_f32x4_pmax(wasm_f32x4_splat(-128.0f), out);  // v < -128 ? -128 : v
  return wasm_i32x4_trunc_sat_f32x4(out);
}

void rmsnorm_quantize_wasm(const float* x, const float* g, int n, int padded_cols, int8_t* q, float* scale,
                           int32_t* qsum) {
  const float inv = rms_inverse(sum_squares_wasm(x, n), n);
  const v128_t vinv = wasm_f32x4_splat(inv);
  v128_t vmax = wasm_f32x4_splat(0.0f);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    const v128_t v = wasm_f32x4_abs(wasm_f32x4_mul(wasm_f32x4_mul(wasm_v128_load(x + i), vinv), wasm_v128_load(g + i)));
    vmax = wasm_f32x4_pmax(vmax, v);  // v > max ? v : max
  }
  float lanes[4];
  wasm_v128_store(lanes, vmax);
  float max_abs = 0.0f;
  for (float v : lanes) max_abs = v > max_abs ? v : max_abs;
  for (; i < n; ++i) {
    const float v = std::fabs((x[i] * inv) * g[i]);
    max_abs = v > max_abs ? v : max_abs;
  }
  const float s = 127.0f / (max_abs > 1e-5f ? max_abs : 1e-5f);
  const v128_t vs = wasm_f32x4_splat(s);

  v128_t vsum = wasm_i32x4_splat(0);
  i = 0;
  for (; i + 16 <= n; i += 16) {
    v128_t r[4];
    for (int k = 0; k < 4; ++k) {
      const v128_t n_k = wasm_f32x4_mul(wasm_f32x4_mul(wasm_v128_load(x + i + 4 * k), vinv), wasm_v128_load(g + i + 4 * k));
      r[k] = quantize_round_f32x4(wasm_f32x4_mul(n_k, vs));
      vsum = wasm_i32x4_add(vsum, r[k]);
    }
    const v128_t h0 = wasm_i16x8_narrow_i32x4(r[0], r[1]);
    const v128_t h1 = wasm_i16x8_narrow_i32x4(r[2], r[3]);
    wasm_v128_store(q + i, wasm_i8x16_narrow_i16x8(h0, h1));
  }
  int32_t sum = sum_i32x4(vsum);
  for (; i < n; ++i) {
    q[i] = quantize_round(((x[i] * inv) * g[i]) * s);
    sum += q[i];
  }
  if (padded_cols > n) std::memset(q + n, 0, static_cast<size_t>(padded_cols - n));
  *scale = s;
  *qsum = sum;
}

void rmsnorm_wasm(const float* x, const float* g, int n, float* out) {
  const float inv = rms_inverse(sum_squares_wasm(x, n), n);
  const v128_t vinv = wasm_f32x4_splat(inv);
  int i = 0;
  for (; i + 4 <= n; i += 4)
    wasm_v128_store(out + i, wasm_f32x4_mul(wasm_f32x4_mul(wasm_v128_load(x + i), vinv), wasm_v128_load(g + i)));
  for (; i < n; ++i) out[i] = (x[i] * inv) * g[i];
}

// ---------------------------------------------------------------------------
// Conv + SSM step.

// exp_f32 of mathfn.h, lane by lane: the same operations in the same order.
inline v128_t exp_f32x4(v128_t x) {
  using namespace mathfn;
  const v128_t lo = wasm_f32x4_splat(kExpLo), hi = wasm_f32x4_splat(kExpHi);
  x = wasm_v128_bitselect(lo, x, wasm_f32x4_lt(x, lo));  // x < lo ? lo : x
  x = wasm_v128_bitselect(hi, x, wasm_f32x4_gt(x, hi));  // x > hi ? hi : x
  const v128_t magic = wasm_f32x4_splat(kRoundMagic);
  const v128_t t = wasm_f32x4_add(wasm_f32x4_mul(x, wasm_f32x4_splat(kLog2e)), magic);
  const v128_t n = wasm_f32x4_sub(t, magic);
  v128_t r = wasm_f32x4_sub(x, wasm_f32x4_mul(n, wasm_f32x4_splat(kLn2Hi)));
  r = wasm_f32x4_sub(r, wasm_f32x4_mul(n, wasm_f32x4_splat(kLn2Lo)));
  v128_t p = wasm_f32x4_splat(kExpP0);
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(kExpP1));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(kExpP2));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(kExpP3));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(kExpP4));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(kExpP5));
  const v128_t e = wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(p, wasm_f32x4_mul(r, r)), r), wasm_f32x4_splat(1.0f));
  const v128_t k = wasm_i32x4_sub(t, magic);  // the integer in t's low mantissa bits
  const v128_t two_k = wasm_i32x4_shl(wasm_i32x4_add(k, wasm_i32x4_splat(127)), 23);
  return wasm_f32x4_mul(e, two_k);
}

inline v128_t silu_f32x4(v128_t x) {
  return wasm_f32x4_div(x, wasm_f32x4_add(wasm_f32x4_splat(1.0f), exp_f32x4(wasm_f32x4_neg(x))));
}

// One channel, exactly as conv_ssm_step_scalar.
inline void conv_ssm_channel(const ConvSsmArgs& a, int c, float B, float C, float d, float g) {
  const int E = a.channels;
  float* s0 = a.conv_state;
  float* s1 = a.conv_state + E;
  float* s2 = a.conv_state + 2 * E;
  const float xin = a.xin[c];
  const float conv =
      (((a.conv_b[c] + a.conv_w[c] * s0[c]) + a.conv_w[E + c] * s1[c]) + a.conv_w[2 * E + c] * s2[c]) +
      a.conv_w[3 * E + c] * xin;
  s0[c] = s1[c];
  s1[c] = s2[c];
  s2[c] = xin;
  const float u = silu_f32(conv);
  const float S = a.ssm_state[c] * g + (u * B) * d;
  a.ssm_state[c] = S;
  a.y[c] = (S * C + u * a.D[c]) * silu_f32(a.z[c]);
}

void conv_ssm_step_wasm(const ConvSsmArgs& a) {
  const int E = a.channels;
  float* s0 = a.conv_state;
  float* s1 = a.conv_state + E;
  float* s2 = a.conv_state + 2 * E;
  const float* w0 = a.conv_w;
  const float* w1 = a.conv_w + E;
  const float* w2 = a.conv_w + 2 * E;
  const float* w3 = a.conv_w + 3 * E;
  for (int h = 0; h * a.head_dim < E; ++h) {
    const int begin = h * a.head_dim;
    const int end = begin + a.head_dim < E ? begin + a.head_dim : E;
    const v128_t B = wasm_f32x4_splat(a.head_B[h]), C = wasm_f32x4_splat(a.head_C[h]);
    const v128_t d = wasm_f32x4_splat(a.head_d[h]), g = wasm_f32x4_splat(a.head_g[h]);
    int c = begin;
    for (; c + 4 <= end; c += 4) {
      const v128_t xin = wasm_v128_load(a.xin + c);
      const v128_t v0 = wasm_v128_load(s0 + c), v1 = wasm_v128_load(s1 + c), v2 = wasm_v128_load(s2 + c);
      v128_t conv = wasm_f32x4_add(wasm_v128_load(a.conv_b + c), wasm_f32x4_mul(wasm_v128_load(w0 + c), v0));
      conv = wasm_f32x4_add(conv, wasm_f32x4_mul(wasm_v128_load(w1 + c), v1));
      conv = wasm_f32x4_add(conv, wasm_f32x4_mul(wasm_v128_load(w2 + c), v2));
      conv = wasm_f32x4_add(conv, wasm_f32x4_mul(wasm_v128_load(w3 + c), xin));
      wasm_v128_store(s0 + c, v1);
      wasm_v128_store(s1 + c, v2);
      wasm_v128_store(s2 + c, xin);
      const v128_t u = silu_f32x4(conv);
      const v128_t S = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(a.ssm_state + c), g),
                                      wasm_f32x4_mul(wasm_f32x4_mul(u, B), d));
      wasm_v128_store(a.ssm_state + c, S);
      const v128_t y = wasm_f32x4_add(wasm_f32x4_mul(S, C), wasm_f32x4_mul(u, wasm_v128_load(a.D + c)));
      wasm_v128_store(a.y + c, wasm_f32x4_mul(y, silu_f32x4(wasm_v128_load(a.z + c))));
    }
    for (; c < end; ++c) conv_ssm_channel(a, c, a.head_B[h], a.head_C[h], a.head_d[h], a.head_g[h]);
  }
}

template <class K>
const Table& table_of() {
  static const Table table = {
      K::kIsa, ternary_gemv_wasm<K>, ternary_gemm_wasm<K>, rmsnorm_quantize_wasm, rmsnorm_wasm, conv_ssm_step_wasm,
  };
  return table;
}

}  // namespace

const Table* const* wasm_tables() {
#if defined(BITMAMBA_WASM_RELAXED)
  // Dot-add first: fewer instructions per weight where the engine has it natively.
  static const Table* const tables[] = {&table_of<DotAddI32>(), &table_of<PairsI16>(), nullptr};
#else
  static const Table* const tables[] = {&table_of<WidenedI16>(), nullptr};
#endif
  return tables;
}

const Table& table_wasm_best() {
  static const Table& best = fastest_table(wasm_tables());
  return best;
}

}  // namespace bitmamba::kernels
