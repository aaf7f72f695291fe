// AVX2 kernels: bit-identical to scalar.cpp (see kernels.h for the order of
// every float operation). Built with -mavx2 on this file only; dispatch.cpp
// calls in here only after cpu_has_avx2(). No FMA: each a*b+c is a multiply
// and an add, as in the scalar code.
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "kernels/kernels.h"
#include "kernels/mathfn.h"
#include "kernels/scalar_common.h"
#include "kernels/x86_gemm_driver.h"

namespace bitmamba::kernels {

namespace {

// ---------------------------------------------------------------------------
// Ternary products.
//
// A 32-byte block w holds the codes of 128 columns in four 2-bit fields.
// With t = w >> 4 (a 16-bit shift; the masks keep only bits that stayed in
// their own byte):
//   w & 0x03: columns   0..31, code x1      w & 0x0C: columns 32..63, code x4
//   t & 0x03: columns  64..95, code x1      t & 0x0C: columns 96..127, code x4
// _mm256_maddubs_epi16(codes (unsigned), q (signed)) sums adjacent pairs into
// int16 without saturating: |pair| <= 2 * 8 * 128 = 2048 for the x4 fields.
// The x1 products go to a "lo" accumulator, the x4 ones to "hi"; per block a
// hi lane moves by at most 2 * 2048, so a flush period of 8 blocks fits int16
// exactly (-32768..32512). After a period, lo + hi / 4 (the shift is exact:
// hi is a sum of multiples of 4) is the true sum in int16 lanes, which are
// then reduced or widened to int32 (see dot4_lanes for the bounds).
//
// That is 14 instructions per row and block: a load, a shift, 4 and, 4
// maddubs, 4 add (the first block of a period writes its accumulators
// instead of adding), plus 2 prefetches per block of 4 rows. The inner
// blocks of the GEMV are written in asm because
// GCC 12 spills or copies the 8 accumulators of 4 rows when written with
// intrinsics (21 instead of 14 instructions per row and block, measured with
// callgrind), and decode executes this block 1.6 million times per token.

constexpr int kFlushBlocks = 8;

inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

struct Acc4 {
  __m256i lo0, hi0, lo1, hi1, lo2, hi2, lo3, hi3;
};

// Block K (a literal) of 4 rows at w (rb, rb3: 1 and 3 row strides) against
// the 128 activations of block K at q. The first block of a flush period
// writes the accumulators instead of adding to zeroed ones. Addresses are
// base + literal displacement, so an unrolled period needs no pointer updates.
#define BITMAMBA_QF(K, F) #K "*128+" #F "(%[q])"
#define BITMAMBA_ROW_BLOCK(W, K, LO, HI)        \
  "vmovdqu " W ", %[v]\n\t"                     \
  "vpsrlw $4, %[v], %[t]\n\t"                   \
  "vpand %[m03], %[v], %[p]\n\t"                \
  "vpmaddubsw " BITMAMBA_QF(K, 0) ", %[p], %[p]\n\t" \
  "vpaddw %[p], %[" LO "], %[" LO "]\n\t"       \
  "vpand %[m0c], %[v], %[p]\n\t"                \
  "vpmaddubsw " BITMAMBA_QF(K, 32) ", %[p], %[p]\n\t" \
  "vpaddw %[p], %[" HI "], %[" HI "]\n\t"       \
  "vpand %[m03], %[t], %[p]\n\t"                \
  "vpmaddubsw " BITMAMBA_QF(K, 64) ", %[p], %[p]\n\t" \
  "vpaddw %[p], %[" LO "], %[" LO "]\n\t"       \
  "vpand %[m0c], %[t], %[p]\n\t"                \
  "vpmaddubsw " BITMAMBA_QF(K, 96) ", %[p], %[p]\n\t" \
  "vpaddw %[p], %[" HI "], %[" HI "]\n\t"
#define BITMAMBA_ROW_BLOCK_FIRST(W, K, LO, HI)  \
  "vmovdqu " W ", %[v]\n\t"                     \
  "vpsrlw $4, %[v], %[t]\n\t"                   \
  "vpand %[m03], %[v], %[" LO "]\n\t"           \
  "vpmaddubsw " BITMAMBA_QF(K, 0) ", %[" LO "], %[" LO "]\n\t" \
  "vpand %[m0c], %[v], %[" HI "]\n\t"           \
  "vpmaddubsw " BITMAMBA_QF(K, 32) ", %[" HI "], %[" HI "]\n\t" \
  "vpand %[m03], %[t], %[p]\n\t"                \
  "vpmaddubsw " BITMAMBA_QF(K, 64) ", %[p], %[p]\n\t" \
  "vpaddw %[p], %[" LO "], %[" LO "]\n\t"       \
  "vpand %[m0c], %[t], %[p]\n\t"                \
  "vpmaddubsw " BITMAMBA_QF(K, 96) ", %[p], %[p]\n\t" \
  "vpaddw %[p], %[" HI "], %[" HI "]\n\t"
// The second period of a 16-block row: lo keeps the first period's sum (hi
// already folded into it), hi starts over.
#define BITMAMBA_ROW_BLOCK_HI_FIRST(W, K, LO, HI)  \
  "vmovdqu " W ", %[v]\n\t"                       \
  "vpsrlw $4, %[v], %[t]\n\t"                     \
  "vpand %[m03], %[v], %[p]\n\t"                  \
  "vpmaddubsw " BITMAMBA_QF(K, 0) ", %[p], %[p]\n\t" \
  "vpaddw %[p], %[" LO "], %[" LO "]\n\t"         \
  "vpand %[m0c], %[v], %[" HI "]\n\t"             \
  "vpmaddubsw " BITMAMBA_QF(K, 32) ", %[" HI "], %[" HI "]\n\t" \
  "vpand %[m03], %[t], %[p]\n\t"                  \
  "vpmaddubsw " BITMAMBA_QF(K, 64) ", %[p], %[p]\n\t" \
  "vpaddw %[p], %[" LO "], %[" LO "]\n\t"         \
  "vpand %[m0c], %[t], %[p]\n\t"                  \
  "vpmaddubsw " BITMAMBA_QF(K, 96) ", %[p], %[p]\n\t" \
  "vpaddw %[p], %[" HI "], %[" HI "]\n\t"
// Each block also prefetches two lines (128 bytes: 4 rows x 32 bytes) of
// the group kPrefetchGroups ahead, at pf: the hardware prefetcher alone
// leaves decode ~20% slower here.
#define BITMAMBA_BLOCK4(ROW, K)                                                             \
  "prefetcht0 " #K "*128(%[pf])\n\t"                                                     \
  "prefetcht0 " #K "*128+64(%[pf])\n\t"                                                  \
  ROW(#K "*32(%[w])", K, "lo0", "hi0") ROW(#K "*32(%[w],%[rb])", K, "lo1", "hi1")         \
  ROW(#K "*32(%[w],%[rb],2)", K, "lo2", "hi2") ROW(#K "*32(%[w],%[rb3])", K, "lo3", "hi3")
#define BITMAMBA_ACC4(C) BITMAMBA_ACC4_LH(C, C)
#define BITMAMBA_ACC4_LH(CL, CH)                                                                              \
  [lo0] CL(a.lo0), [hi0] CH(a.hi0), [lo1] CL(a.lo1), [hi1] CH(a.hi1), [lo2] CL(a.lo2), [hi2] CH(a.hi2),      \
      [lo3] CL(a.lo3), [hi3] CH(a.hi3), [v] "=&x"(v), [t] "=&x"(t), [p] "=&x"(p)
#define BITMAMBA_IN4 \
  [w] "r"(w), [rb] "r"(rb), [rb3] "r"(rb3), [q] "r"(q), [pf] "r"(pf), [m03] "x"(m03), [m0c] "x"(m0c)

#define BITMAMBA_BLOCKS_1_TO_7                                                                      \
  BITMAMBA_BLOCK4(BITMAMBA_ROW_BLOCK, 1) BITMAMBA_BLOCK4(BITMAMBA_ROW_BLOCK, 2)                     \
  BITMAMBA_BLOCK4(BITMAMBA_ROW_BLOCK, 3) BITMAMBA_BLOCK4(BITMAMBA_ROW_BLOCK, 4)                     \
  BITMAMBA_BLOCK4(BITMAMBA_ROW_BLOCK, 5) BITMAMBA_BLOCK4(BITMAMBA_ROW_BLOCK, 6)                     \
  BITMAMBA_BLOCK4(BITMAMBA_ROW_BLOCK, 7)

// A whole flush period of 8 blocks.
inline __attribute__((always_inline)) void period4_8(const uint8_t* w, size_t rb, size_t rb3, const int8_t* q,
                                                     const uint8_t* pf, __m256i m03, __m256i m0c, Acc4& a) {
  __m256i v, t, p;
  asm(BITMAMBA_BLOCK4(BITMAMBA_ROW_BLOCK_FIRST, 0) BITMAMBA_BLOCKS_1_TO_7
      : BITMAMBA_ACC4("=&x")
      : BITMAMBA_IN4
      : "memory");
}

// A period that adds to lo and starts hi over (see BITMAMBA_ROW_BLOCK_HI_FIRST).
inline __attribute__((always_inline)) void period4_8_hi_first(const uint8_t* w, size_t rb, size_t rb3,
                                                              const int8_t* q, const uint8_t* pf, __m256i m03,
                                                              __m256i m0c, Acc4& a) {
  __m256i v, t, p;
  asm(BITMAMBA_BLOCK4(BITMAMBA_ROW_BLOCK_HI_FIRST, 0) BITMAMBA_BLOCKS_1_TO_7
      : BITMAMBA_ACC4_LH("+x", "=&x")
      : BITMAMBA_IN4
      : "memory");
}

#undef BITMAMBA_BLOCKS_1_TO_7

// One block, for periods of other lengths.
template <bool kFirst>
inline __attribute__((always_inline)) void block4(const uint8_t* w, size_t rb, size_t rb3, const int8_t* q,
                                                  const uint8_t* pf, __m256i m03, __m256i m0c, Acc4& a) {
  __m256i v, t, p;
  if (kFirst)
    asm(BITMAMBA_BLOCK4(BITMAMBA_ROW_BLOCK_FIRST, 0) : BITMAMBA_ACC4("=&x") : BITMAMBA_IN4 : "memory");
  else
    asm(BITMAMBA_BLOCK4(BITMAMBA_ROW_BLOCK, 0) : BITMAMBA_ACC4("+x") : BITMAMBA_IN4 : "memory");
}

#undef BITMAMBA_IN4
#undef BITMAMBA_ACC4_LH
#undef BITMAMBA_ACC4
#undef BITMAMBA_BLOCK4
#undef BITMAMBA_ROW_BLOCK_HI_FIRST
#undef BITMAMBA_ROW_BLOCK_FIRST
#undef BITMAMBA_ROW_BLOCK
#undef BITMAMBA_QF

// Groups of 4 rows are 4 * row_bytes contiguous bytes; decode prefetches the
// group this many groups ahead (measured: 4 is best of 1..16).
constexpr int kPrefetchGroups = 4;

// sum(lo) + sum(hi) / 4 per row over `n` (1..8) blocks of 4 rows, in 16
// int16 lanes per row: hi / 4 is exact (a sum of multiples of 4), and
// |lo + hi / 4| <= 8 * 1024 + 8 * 1024 = 16384 fits int16.
template <int kN>  // n when known at compile time, else 0
inline __attribute__((always_inline)) void dot4_period(const uint8_t* w, size_t rb, size_t rb3, const int8_t* q,
                                                       const uint8_t* pf, int n, __m256i m03, __m256i m0c,
                                                       __m256i out[4]) {
  Acc4 a;
  if (kN == kFlushBlocks) {
    period4_8(w, rb, rb3, q, pf, m03, m0c, a);
  } else {
    block4<true>(w, rb, rb3, q, pf, m03, m0c, a);
    for (int b = 1; b < n; ++b)
      block4<false>(w + b * kBlockBytes, rb, rb3, q + b * kBlockCols, pf + b * 4 * kBlockBytes, m03, m0c, a);
  }
  out[0] = _mm256_add_epi16(a.lo0, _mm256_srai_epi16(a.hi0, 2));
  out[1] = _mm256_add_epi16(a.lo1, _mm256_srai_epi16(a.hi1, 2));
  out[2] = _mm256_add_epi16(a.lo2, _mm256_srai_epi16(a.hi2, 2));
  out[3] = _mm256_add_epi16(a.lo3, _mm256_srai_epi16(a.hi3, 2));
}

// Per-row partial sums of 4 rows over a whole row of `blocks` blocks
// (kBlocks when known at compile time, else 0), pf where this group's
// prefetch target starts. Rows of one flush period come back as int16 lanes
// (|lane| <= 16384), longer ones as int32 lanes.
template <int kBlocks>
inline __attribute__((always_inline)) void dot4_lanes(const uint8_t* w, size_t rb, size_t rb3, const int8_t* q,
                                                      const uint8_t* pf, int blocks, __m256i m03, __m256i m0c,
                                                      __m256i out[4]) {
  if (kBlocks == kFlushBlocks) {
    dot4_period<kFlushBlocks>(w, rb, rb3, q, pf, kFlushBlocks, m03, m0c, out);
    return;
  }
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i t[4];
  if (kBlocks != 0 && kBlocks % (2 * kFlushBlocks) == 0) {
    // Pairs of periods in the same 8 registers: after the first, hi / 4 is
    // folded into lo (|lo| <= 16384) and hi starts over; after the second,
    // |lo + hi / 4| <= 32768 still fits int16, and the pair is widened.
    constexpr size_t kPeriodBytes = kFlushBlocks * kBlockBytes;
    for (int b0 = 0; b0 < kBlocks; b0 += 2 * kFlushBlocks) {
      const size_t wo = static_cast<size_t>(b0) * kBlockBytes;
      const size_t qo = static_cast<size_t>(b0) * kBlockCols;
      Acc4 a;
      period4_8(w + wo, rb, rb3, q + qo, pf + 4 * wo, m03, m0c, a);
      a.lo0 = _mm256_add_epi16(a.lo0, _mm256_srai_epi16(a.hi0, 2));
      a.lo1 = _mm256_add_epi16(a.lo1, _mm256_srai_epi16(a.hi1, 2));
      a.lo2 = _mm256_add_epi16(a.lo2, _mm256_srai_epi16(a.hi2, 2));
      a.lo3 = _mm256_add_epi16(a.lo3, _mm256_srai_epi16(a.hi3, 2));
      period4_8_hi_first(w + wo + kPeriodBytes, rb, rb3, q + qo + kFlushBlocks * kBlockCols,
                         pf + 4 * (wo + kPeriodBytes), m03, m0c, a);
      t[0] = _mm256_madd_epi16(_mm256_add_epi16(a.lo0, _mm256_srai_epi16(a.hi0, 2)), ones);
      t[1] = _mm256_madd_epi16(_mm256_add_epi16(a.lo1, _mm256_srai_epi16(a.hi1, 2)), ones);
      t[2] = _mm256_madd_epi16(_mm256_add_epi16(a.lo2, _mm256_srai_epi16(a.hi2, 2)), ones);
      t[3] = _mm256_madd_epi16(_mm256_add_epi16(a.lo3, _mm256_srai_epi16(a.hi3, 2)), ones);
      for (int r = 0; r < 4; ++r) out[r] = b0 == 0 ? t[r] : _mm256_add_epi32(out[r], t[r]);
    }
    return;
  }
  if (kBlocks != 0) blocks = kBlocks;
  for (int r = 0; r < 4; ++r) out[r] = _mm256_setzero_si256();
  for (int b0 = 0; b0 < blocks; b0 += kFlushBlocks) {
    const size_t wo = static_cast<size_t>(b0) * kBlockBytes;
    const size_t qo = static_cast<size_t>(b0) * kBlockCols;
    const uint8_t* pfo = pf + 4 * wo;
    if (kBlocks != 0 && kBlocks % kFlushBlocks == 0)
      dot4_period<kFlushBlocks>(w + wo, rb, rb3, q + qo, pfo, kFlushBlocks, m03, m0c, t);
    else
      dot4_period<0>(w + wo, rb, rb3, q + qo, pfo, blocks - b0 < kFlushBlocks ? blocks - b0 : kFlushBlocks, m03, m0c,
                     t);
    for (int r = 0; r < 4; ++r) out[r] = _mm256_add_epi32(out[r], _mm256_madd_epi16(t[r], ones));
  }
}

// Horizontal sums of 4 rows' lanes (int16 for one flush period, else
// int32), as [r0 r1 r2 r3 | r0 r1 r2 r3] partial sums per 128-bit half.
// Reducing each group of 4 before the next keeps one register live instead
// of four (GCC spilled them around the second group's asm).
template <int kBlocks>
inline __m256i reduce4(const __m256i s[4]) {
  if (kBlocks == kFlushBlocks) {
    const __m256i ones = _mm256_set1_epi16(1);  // int16 lanes within +-16384: adjacent pairs fit
    return _mm256_hadd_epi32(_mm256_madd_epi16(_mm256_hadd_epi16(s[0], s[1]), ones),
                             _mm256_madd_epi16(_mm256_hadd_epi16(s[2], s[3]), ones));
  }
  return _mm256_hadd_epi32(_mm256_hadd_epi32(s[0], s[1]), _mm256_hadd_epi32(s[2], s[3]));
}

// The same for one row (the rows left over after groups of 4).
inline int32_t dot1(const uint8_t* w, const int8_t* q, int blocks) {
  const __m256i m03 = _mm256_set1_epi8(0x03);
  const __m256i m0c = _mm256_set1_epi8(0x0c);
  const __m256i ones = _mm256_set1_epi16(1);
  const __m256i fours = _mm256_set1_epi16(4);
  __m256i total = _mm256_setzero_si256();
  for (int b0 = 0; b0 < blocks; b0 += kFlushBlocks) {
    const int b1 = b0 + kFlushBlocks < blocks ? b0 + kFlushBlocks : blocks;
    __m256i lo = _mm256_setzero_si256(), hi = lo;
    for (int b = b0; b < b1; ++b) {
      const int8_t* qb = q + static_cast<size_t>(b) * kBlockCols;
      const __m256i v = load256(w + static_cast<size_t>(b) * kBlockBytes);
      const __m256i t = _mm256_srli_epi16(v, 4);
      lo = _mm256_add_epi16(lo, _mm256_maddubs_epi16(_mm256_and_si256(v, m03), load256(qb)));
      hi = _mm256_add_epi16(hi, _mm256_maddubs_epi16(_mm256_and_si256(v, m0c), load256(qb + 32)));
      lo = _mm256_add_epi16(lo, _mm256_maddubs_epi16(_mm256_and_si256(t, m03), load256(qb + 64)));
      hi = _mm256_add_epi16(hi, _mm256_maddubs_epi16(_mm256_and_si256(t, m0c), load256(qb + 96)));
    }
    total = _mm256_add_epi32(total, _mm256_add_epi32(_mm256_madd_epi16(lo, fours), _mm256_madd_epi16(hi, ones)));
  }
  const __m128i s = _mm_add_epi32(_mm256_castsi256_si128(total), _mm256_extracti128_si256(total, 1));
  const __m128i s2 = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
  return (_mm_cvtsi128_si32(s2) + _mm_extract_epi32(s2, 1)) >> 2;
}

// Rows [r, row_end) in groups of 8 (two asm groups of 4 sharing one
// horizontal sum and one output vector), then one group of 4 if left;
// returns the first row not done.
template <int kBlocks>
int gemv_rows(const uint8_t* packed, size_t row_bytes, int blocks, const int8_t* q, int32_t qsum, float denom, int r,
              int row_end, float* out) {
  const __m256i m03 = _mm256_set1_epi8(0x03);
  const __m256i m0c = _mm256_set1_epi8(0x0c);
  const __m256i vqsum = _mm256_set1_epi32(qsum);
  const __m256 vdenom = _mm256_set1_ps(denom);
  const size_t rb3 = 3 * row_bytes;
  const size_t ahead = kPrefetchGroups * 4 * row_bytes;
  for (; r + 8 <= row_end; r += 8) {
    const uint8_t* w = packed + r * row_bytes;
    const uint8_t* w4 = w + 4 * row_bytes;
    __m256i s[4];
    dot4_lanes<kBlocks>(w, row_bytes, rb3, q, w + ahead, blocks, m03, m0c, s);
    const __m256i a = reduce4<kBlocks>(s);
    dot4_lanes<kBlocks>(w4, row_bytes, rb3, q, w4 + ahead, blocks, m03, m0c, s);
    const __m256i b = reduce4<kBlocks>(s);
    const __m256i dot =
        _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31));
    _mm256_storeu_ps(out + r, _mm256_div_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(dot, vqsum)), vdenom));
  }
  if (r + 4 <= row_end) {
    const uint8_t* w = packed + r * row_bytes;
    __m256i s[4];
    dot4_lanes<kBlocks>(w, row_bytes, rb3, q, w + ahead, blocks, m03, m0c, s);
    const __m256i a = reduce4<kBlocks>(s);
    const __m128i dot = _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
    _mm_storeu_ps(out + r, _mm_div_ps(_mm_cvtepi32_ps(_mm_sub_epi32(dot, _mm256_castsi256_si128(vqsum))),
                                      _mm256_castps256_ps128(vdenom)));
    r += 4;
  }
  return r;
}

void ternary_gemv_avx2(const uint8_t* packed, int padded_cols, float w_scale, const QuantizedActs& acts, int row_begin,
                       int row_end, float* out, size_t /*out_stride: one token*/) {
  const size_t row_bytes = static_cast<size_t>(padded_cols) / 4;
  const int blocks = padded_cols / kBlockCols;
  const int8_t* q = acts.q;
  const int32_t qsum = acts.qsum[0];
  const float denom = acts.scale[0] * w_scale;
  // The model's shapes (1024 and 2048 columns, 4096 for the 1B out_proj)
  // get fully unrolled flush periods.
  int r;
  if (blocks == 8)
    r = gemv_rows<8>(packed, row_bytes, blocks, q, qsum, denom, row_begin, row_end, out);
  else if (blocks == 16)
    r = gemv_rows<16>(packed, row_bytes, blocks, q, qsum, denom, row_begin, row_end, out);
  else if (blocks == 32)
    r = gemv_rows<32>(packed, row_bytes, blocks, q, qsum, denom, row_begin, row_end, out);
  else
    r = gemv_rows<0>(packed, row_bytes, blocks, q, qsum, denom, row_begin, row_end, out);
  for (; r < row_end; ++r)
    out[r] = static_cast<float>(dot1(packed + r * row_bytes, q, blocks) - qsum) / denom;
}

// 8 horizontal sums at once: lane k of the result is the sum of vector k.
inline __m256i hsum8_epi32(__m256i t0, __m256i t1, __m256i t2, __m256i t3, __m256i t4, __m256i t5, __m256i t6,
                           __m256i t7) {
  const __m256i h0123 = _mm256_hadd_epi32(_mm256_hadd_epi32(t0, t1), _mm256_hadd_epi32(t2, t3));
  const __m256i h4567 = _mm256_hadd_epi32(_mm256_hadd_epi32(t4, t5), _mm256_hadd_epi32(t6, t7));
  return _mm256_add_epi32(_mm256_permute2x128_si256(h0123, h4567, 0x20),
                          _mm256_permute2x128_si256(h0123, h4567, 0x31));
}

// GEMM: one row at a time against a group of 8 tokens, so each 32-byte block
// is decoded once into four code vectors (0..2, x1) and used for every token
// of the group. Per token and block an int16 lane moves by at most 4 * 512,
// so 16 blocks fit int16 exactly before widening. The 8-token block is asm
// for the same reason as the GEMV's (8 accumulators, 4 codes, 2 temporaries
// and the mask fill the 16 registers; GCC spills); fewer tokens (the end of a
// prompt) use intrinsics.
constexpr int kGemmTokens = 8;
constexpr int kGemmFlushBlocks = 16;
constexpr int kGemmRowTile = 16;  // rows whose outputs are staged before going to `out`

struct Acc8 {
  __m256i a0, a1, a2, a3, a4, a5, a6, a7;
};

// Token k's 4 products with the block's codes c0..c3, added into accumulator A.
// Q is the address of the token's 128 activations, "+32", "+64", "+96" appended.
#define BITMAMBA_TOKEN_BLOCK(Q0, Q1, Q2, Q3, A)       \
  "vpmaddubsw " Q0 ", %[c0], %[p]\n\t"                \
  "vpmaddubsw " Q1 ", %[c1], %[s]\n\t"                \
  "vpaddw %[s], %[p], %[p]\n\t"                       \
  "vpmaddubsw " Q2 ", %[c2], %[s]\n\t"                \
  "vpaddw %[s], %[p], %[p]\n\t"                       \
  "vpmaddubsw " Q3 ", %[c3], %[s]\n\t"                \
  "vpaddw %[s], %[p], %[p]\n\t"                       \
  "vpaddw %[p], %[" A "], %[" A "]\n\t"
#define BITMAMBA_Q(BASE, INDEX, OFF) #OFF "(%[" BASE "]" INDEX ")"
#define BITMAMBA_TOKEN(BASE, INDEX, A)                                                                      \
  BITMAMBA_TOKEN_BLOCK(BITMAMBA_Q(BASE, INDEX, 0), BITMAMBA_Q(BASE, INDEX, 32), BITMAMBA_Q(BASE, INDEX, 64), \
                       BITMAMBA_Q(BASE, INDEX, 96), A)

inline __attribute__((always_inline)) void block8(const uint8_t* w, const int8_t* q, const int8_t* q4, size_t qs,
                                                  size_t qs3, __m256i m03, Acc8& a) {
  __m256i c0, c1, c2, c3, p, s;
  asm("vmovdqu %[w], %[c3]\n\t"
      "vpand %[m03], %[c3], %[c0]\n\t"
      "vpsrlw $2, %[c3], %[c1]\n\t"
      "vpand %[m03], %[c1], %[c1]\n\t"
      "vpsrlw $4, %[c3], %[c2]\n\t"
      "vpand %[m03], %[c2], %[c2]\n\t"
      "vpsrlw $6, %[c3], %[c3]\n\t"
      "vpand %[m03], %[c3], %[c3]\n\t"
      BITMAMBA_TOKEN("q", "", "a0") BITMAMBA_TOKEN("q", ",%[qs],1", "a1") BITMAMBA_TOKEN("q", ",%[qs],2", "a2")
      BITMAMBA_TOKEN("q", ",%[qs3],1", "a3") BITMAMBA_TOKEN("q4", "", "a4") BITMAMBA_TOKEN("q4", ",%[qs],1", "a5")
      BITMAMBA_TOKEN("q4", ",%[qs],2", "a6") BITMAMBA_TOKEN("q4", ",%[qs3],1", "a7")
      : [a0] "+x"(a.a0), [a1] "+x"(a.a1), [a2] "+x"(a.a2), [a3] "+x"(a.a3), [a4] "+x"(a.a4), [a5] "+x"(a.a5),
        [a6] "+x"(a.a6), [a7] "+x"(a.a7), [c0] "=&x"(c0), [c1] "=&x"(c1), [c2] "=&x"(c2), [c3] "=&x"(c3),
        [p] "=&x"(p), [s] "=&x"(s)
      : [w] "m"(*reinterpret_cast<const __m256i*>(w)), [q] "r"(q), [q4] "r"(q4), [qs] "r"(qs), [qs3] "r"(qs3),
        [m03] "x"(m03)
      : "memory");
}

#undef BITMAMBA_TOKEN
#undef BITMAMBA_Q
#undef BITMAMBA_TOKEN_BLOCK


void gemm_row8(const uint8_t* w, const int8_t* q, size_t q_stride, int blocks, int32_t dots[kGemmTokens]) {
  const __m256i m03 = _mm256_set1_epi8(0x03);
  const __m256i ones = _mm256_set1_epi16(1);
  const int8_t* q4 = q + 4 * q_stride;
  const size_t qs3 = 3 * q_stride;
  __m256i t0 = _mm256_setzero_si256(), t1 = t0, t2 = t0, t3 = t0, t4 = t0, t5 = t0, t6 = t0, t7 = t0;
  for (int b0 = 0; b0 < blocks; b0 += kGemmFlushBlocks) {
    const int b1 = b0 + kGemmFlushBlocks < blocks ? b0 + kGemmFlushBlocks : blocks;
    const __m256i zero = _mm256_setzero_si256();
    Acc8 a{zero, zero, zero, zero, zero, zero, zero, zero};
    for (int b = b0; b < b1; ++b) {
      const size_t qo = static_cast<size_t>(b) * kBlockCols;
      block8(w + static_cast<size_t>(b) * kBlockBytes, q + qo, q4 + qo, q_stride, qs3, m03, a);
    }
    t0 = _mm256_add_epi32(t0, _mm256_madd_epi16(a.a0, ones));
    t1 = _mm256_add_epi32(t1, _mm256_madd_epi16(a.a1, ones));
    t2 = _mm256_add_epi32(t2, _mm256_madd_epi16(a.a2, ones));
    t3 = _mm256_add_epi32(t3, _mm256_madd_epi16(a.a3, ones));
    t4 = _mm256_add_epi32(t4, _mm256_madd_epi16(a.a4, ones));
    t5 = _mm256_add_epi32(t5, _mm256_madd_epi16(a.a5, ones));
    t6 = _mm256_add_epi32(t6, _mm256_madd_epi16(a.a6, ones));
    t7 = _mm256_add_epi32(t7, _mm256_madd_epi16(a.a7, ones));
  }
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dots), hsum8_epi32(t0, t1, t2, t3, t4, t5, t6, t7));
}

// Fewer than 8 tokens, with intrinsics.
template <int NT>
void gemm_row(const uint8_t* w, const int8_t* q, size_t q_stride, int blocks, int32_t dots[kGemmTokens]) {
  const __m256i m03 = _mm256_set1_epi8(0x03);
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i total[kGemmTokens];
  for (int t = 0; t < kGemmTokens; ++t) total[t] = _mm256_setzero_si256();
  for (int b0 = 0; b0 < blocks; b0 += kGemmFlushBlocks) {
    const int b1 = b0 + kGemmFlushBlocks < blocks ? b0 + kGemmFlushBlocks : blocks;
    __m256i acc[NT];
    for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_si256();
    for (int b = b0; b < b1; ++b) {
      const __m256i v = load256(w + static_cast<size_t>(b) * kBlockBytes);
      const __m256i c0 = _mm256_and_si256(v, m03);
      const __m256i c1 = _mm256_and_si256(_mm256_srli_epi16(v, 2), m03);
      const __m256i c2 = _mm256_and_si256(_mm256_srli_epi16(v, 4), m03);
      const __m256i c3 = _mm256_and_si256(_mm256_srli_epi16(v, 6), m03);
      const int8_t* qb = q + static_cast<size_t>(b) * kBlockCols;
      for (int t = 0; t < NT; ++t) {
        const int8_t* qt = qb + t * q_stride;
        const __m256i p0 = _mm256_maddubs_epi16(c0, load256(qt));
        const __m256i p1 = _mm256_maddubs_epi16(c1, load256(qt + 32));
        const __m256i p2 = _mm256_maddubs_epi16(c2, load256(qt + 64));
        const __m256i p3 = _mm256_maddubs_epi16(c3, load256(qt + 96));
        acc[t] = _mm256_add_epi16(acc[t], _mm256_add_epi16(_mm256_add_epi16(p0, p1), _mm256_add_epi16(p2, p3)));
      }
    }
    for (int t = 0; t < NT; ++t) total[t] = _mm256_add_epi32(total[t], _mm256_madd_epi16(acc[t], ones));
  }
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dots), hsum8_epi32(total[0], total[1], total[2], total[3], total[4],
                                                                     total[5], total[6], total[7]));
}

constexpr GemmRowFn kGemmRow[kGemmTokens + 1] = {nullptr,     gemm_row<1>, gemm_row<2>, gemm_row<3>, gemm_row<4>,
                                                 gemm_row<5>, gemm_row<6>, gemm_row<7>, gemm_row8};

// The loop over token groups and row tiles is shared with avx512.cpp (x86_gemm_driver.h).
constexpr TernaryMatmulFn ternary_gemm_avx2 = ternary_gemm_driver<kGemmTokens, kGemmRowTile, kGemmRow>;

// ---------------------------------------------------------------------------
// Norms and activation quantisation.

// Sum of squares in 8 interleaved lanes (lane k: i % 8 == k), then the
// scalar tail and left-to-right lane combination of scalar_common.h.
inline float sum_squares_avx2(const float* x, int n) {
  __m256 acc = _mm256_setzero_ps();
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    acc = _mm256_add_ps(acc, _mm256_mul_ps(v, v));
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, acc);
  return sum_squares_tail(x, i, n, lanes);
}

inline float hmax_ps(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

// roundf (half away from zero): t = trunc(v), then d = v - t (exact, |d| < 1)
// and trunc(2 d) is -1, 0 or +1 exactly when |d| >= 1/2 pushes v to the next
// integer away from zero.
inline __m256 round_half_away(__m256 v) {
  const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m256 d = _mm256_sub_ps(v, t);
  return _mm256_add_ps(t, _mm256_round_ps(_mm256_add_ps(d, d), _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC));
}

inline __m256i quantize8(const float* x, const float* g, __m256 inv, __m256 s) {
  const __m256 n = _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x), inv), _mm256_loadu_ps(g));
  __m256 r = round_half_away(_mm256_mul_ps(n, s));
  r = _mm256_min_ps(r, _mm256_set1_ps(127.0f));
  r = _mm256_max_ps(r, _mm256_set1_ps(-128.0f));
  return _mm256_cvttps_epi32(r);
}

void rmsnorm_quantize_avx2(const float* x, const float* g, int n, int padded_cols, int8_t* q, float* scale,
                           int32_t* qsum) {
  const float inv_s = rms_inverse(sum_squares_avx2(x, n), n);
  const __m256 inv = _mm256_set1_ps(inv_s);
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 vmax = _mm256_setzero_ps();
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), inv), _mm256_loadu_ps(g + i));
    vmax = _mm256_max_ps(vmax, _mm256_and_ps(v, abs_mask));
  }
  float max_abs = hmax_ps(vmax);
  for (; i < n; ++i) {
    const float v = std::fabs((x[i] * inv_s) * g[i]);
    max_abs = v > max_abs ? v : max_abs;
  }
  const float s_s = 127.0f / (max_abs > 1e-5f ? max_abs : 1e-5f);
  const __m256 s = _mm256_set1_ps(s_s);
  __m256i vsum = _mm256_setzero_si256();
  i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i a = quantize8(x + i, g + i, inv, s);
    const __m256i b = quantize8(x + i + 8, g + i + 8, inv, s);
    const __m256i c = quantize8(x + i + 16, g + i + 16, inv, s);
    const __m256i d = quantize8(x + i + 24, g + i + 24, inv, s);
    vsum = _mm256_add_epi32(vsum, _mm256_add_epi32(_mm256_add_epi32(a, b), _mm256_add_epi32(c, d)));
    // packs interleave the 128-bit halves; the permute puts the bytes back in order.
    const __m256i ab = _mm256_packs_epi32(a, b);
    const __m256i cd = _mm256_packs_epi32(c, d);
    const __m256i abcd = _mm256_packs_epi16(ab, cd);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + i),
                        _mm256_permutevar8x32_epi32(abcd, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
  }
  alignas(32) int32_t lanes[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), vsum);
  int32_t sum = 0;
  for (int k = 0; k < 8; ++k) sum += lanes[k];
  for (; i < n; ++i) {
    q[i] = quantize_round(((x[i] * inv_s) * g[i]) * s_s);
    sum += q[i];
  }
  if (padded_cols > n) std::memset(q + n, 0, static_cast<size_t>(padded_cols - n));
  *scale = s_s;
  *qsum = sum;
}

void rmsnorm_avx2(const float* x, const float* g, int n, float* out) {
  const float inv_s = rms_inverse(sum_squares_avx2(x, n), n);
  const __m256 inv = _mm256_set1_ps(inv_s);
  int i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), inv), _mm256_loadu_ps(g + i)));
  for (; i < n; ++i) out[i] = (x[i] * inv_s) * g[i];
}

// ---------------------------------------------------------------------------
// Conv + SSM step.

// exp_f32 of mathfn.h, lane by lane, operation for operation.
inline __m256 exp_avx2(__m256 x) {
  using namespace mathfn;
  x = _mm256_max_ps(x, _mm256_set1_ps(kExpLo));
  x = _mm256_min_ps(x, _mm256_set1_ps(kExpHi));
  const __m256 magic = _mm256_set1_ps(kRoundMagic);
  const __m256 t = _mm256_add_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)), magic);
  const __m256 n = _mm256_sub_ps(t, magic);
  __m256 r = _mm256_sub_ps(x, _mm256_mul_ps(n, _mm256_set1_ps(kLn2Hi)));
  r = _mm256_sub_ps(r, _mm256_mul_ps(n, _mm256_set1_ps(kLn2Lo)));
  __m256 p = _mm256_set1_ps(kExpP0);
  p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(kExpP1));
  p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(kExpP2));
  p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(kExpP3));
  p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(kExpP4));
  p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(kExpP5));
  const __m256 e =
      _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(p, _mm256_mul_ps(r, r)), r), _mm256_set1_ps(1.0f));
  // k + 127 with k = bits(t) - bits(magic), as one integer subtraction.
  const __m256i k127 =
      _mm256_sub_epi32(_mm256_castps_si256(t), _mm256_set1_epi32(static_cast<int>(bits_from_float(kRoundMagic)) - 127));
  const __m256 scale = _mm256_castsi256_ps(_mm256_slli_epi32(k127, 23));
  return _mm256_mul_ps(e, scale);
}

inline __m256 silu_avx2(__m256 x) {
  const __m256 neg = _mm256_xor_ps(x, _mm256_set1_ps(-0.0f));
  return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), exp_avx2(neg)));
}

// 8 channels starting at c, all in one head (B, C, d, g broadcast).
struct ConvSsmPtrs {
  const float *z, *xin, *w0, *w1, *w2, *w3, *bias, *D;
  float *s0, *s1, *s2, *ssm, *y;
};

inline __attribute__((always_inline)) void conv_ssm8(const ConvSsmPtrs& p, int c, __m256 hB, __m256 hC, __m256 hd,
                                                     __m256 hg) {
  const __m256 xin = _mm256_loadu_ps(p.xin + c);
  const __m256 v0 = _mm256_loadu_ps(p.s0 + c);
  const __m256 v1 = _mm256_loadu_ps(p.s1 + c);
  const __m256 v2 = _mm256_loadu_ps(p.s2 + c);
  __m256 conv = _mm256_add_ps(_mm256_loadu_ps(p.bias + c), _mm256_mul_ps(_mm256_loadu_ps(p.w0 + c), v0));
  conv = _mm256_add_ps(conv, _mm256_mul_ps(_mm256_loadu_ps(p.w1 + c), v1));
  conv = _mm256_add_ps(conv, _mm256_mul_ps(_mm256_loadu_ps(p.w2 + c), v2));
  conv = _mm256_add_ps(conv, _mm256_mul_ps(_mm256_loadu_ps(p.w3 + c), xin));
  _mm256_storeu_ps(p.s0 + c, v1);
  _mm256_storeu_ps(p.s1 + c, v2);
  _mm256_storeu_ps(p.s2 + c, xin);
  const __m256 u = silu_avx2(conv);
  const __m256 S =
      _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(p.ssm + c), hg), _mm256_mul_ps(_mm256_mul_ps(u, hB), hd));
  _mm256_storeu_ps(p.ssm + c, S);
  const __m256 y = _mm256_mul_ps(_mm256_add_ps(_mm256_mul_ps(S, hC), _mm256_mul_ps(u, _mm256_loadu_ps(p.D + c))),
                                 silu_avx2(_mm256_loadu_ps(p.z + c)));
  _mm256_storeu_ps(p.y + c, y);
}

void conv_ssm_step_avx2(const ConvSsmArgs& a) {
  const int E = a.channels;
  const int P = a.head_dim;
  // Local copies: stores through y and the states could otherwise alias the
  // argument struct, and every pointer would be reloaded per iteration.
  ConvSsmPtrs p;
  p.z = a.z;
  p.xin = a.xin;
  p.w0 = a.conv_w;
  p.w1 = a.conv_w + E;
  p.w2 = a.conv_w + 2 * E;
  p.w3 = a.conv_w + 3 * E;
  p.bias = a.conv_b;
  p.D = a.D;
  p.s0 = a.conv_state;
  p.s1 = a.conv_state + E;
  p.s2 = a.conv_state + 2 * E;
  p.ssm = a.ssm_state;
  p.y = a.y;
  int c = 0;
  if (P % 8 == 0) {
    // Head by head (c = h * P at the top): its scalars broadcast once.
    const int vec_end = E & ~7;
    for (int h = 0; c < vec_end; ++h) {
      const __m256 hB = _mm256_set1_ps(a.head_B[h]);
      const __m256 hC = _mm256_set1_ps(a.head_C[h]);
      const __m256 hd = _mm256_set1_ps(a.head_d[h]);
      const __m256 hg = _mm256_set1_ps(a.head_g[h]);
      const int end = c + P < vec_end ? c + P : vec_end;
      for (; c < end; c += 8) conv_ssm8(p, c, hB, hC, hd, hg);
    }
  } else {
    // 8 channels may span two heads: per-lane head scalars.
    for (; c + 8 <= E; c += 8) {
      alignas(32) float b[8], cc[8], d[8], g[8];
      for (int k = 0; k < 8; ++k) {
        const int h = (c + k) / P;
        b[k] = a.head_B[h];
        cc[k] = a.head_C[h];
        d[k] = a.head_d[h];
        g[k] = a.head_g[h];
      }
      conv_ssm8(p, c, _mm256_load_ps(b), _mm256_load_ps(cc), _mm256_load_ps(d), _mm256_load_ps(g));
    }
  }
  for (; c < E; ++c) {
    const int h = c / P;
    const float xin = p.xin[c];
    const float conv = (((p.bias[c] + p.w0[c] * p.s0[c]) + p.w1[c] * p.s1[c]) + p.w2[c] * p.s2[c]) + p.w3[c] * xin;
    p.s0[c] = p.s1[c];
    p.s1[c] = p.s2[c];
    p.s2[c] = xin;
    const float u = silu_f32(conv);
    const float S = p.ssm[c] * a.head_g[h] + (u * a.head_B[h]) * a.head_d[h];
    p.ssm[c] = S;
    p.y[c] = (S * a.head_C[h] + u * p.D[c]) * silu_f32(p.z[c]);
  }
}

// ---------------------------------------------------------------------------
// Repack (repack.cpp's block permutation, 18 instructions per block).
//
// vpermd puts disk dwords 0,2,4,6 in lane 0 and 1,3,5,7 in lane 1: then lane
// L, dword f holds disk word f's bytes 4L..4L+3, i.e. 2-bit element (f, bl, i)
// at bit 32f + 8bl + 2i (columns 32f + 16L + 4bl + i). Two delta swaps
// exchange f and i (f0<->i0 within qwords, f1<->i1 across them), then a
// pshufb sends byte 4i + bl to 4bl + i: output byte 16L + 4bl + i, field f.
void repack_blocks_avx2_impl(const uint8_t* src, size_t blocks, uint8_t* dst) {
  const __m256i perm = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
  const __m256i m1 = _mm256_set1_epi64x(0x00000000ccccccccll);  // f0 = 0, i0 = 1
  const __m256i m2 = _mm256_setr_epi64x(static_cast<long long>(0xf0f0f0f0f0f0f0f0ull), 0,
                                        static_cast<long long>(0xf0f0f0f0f0f0f0f0ull), 0);  // f1 = 0, i1 = 1
  const __m256i bytes = _mm256_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15,  //
                                         0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  for (size_t k = 0; k < blocks; ++k) {
    __m256i x = _mm256_permutevar8x32_epi32(load256(src + k * kBlockBytes), perm);
    __m256i t = _mm256_and_si256(_mm256_xor_si256(x, _mm256_srli_epi64(x, 30)), m1);
    x = _mm256_xor_si256(x, _mm256_xor_si256(t, _mm256_slli_epi64(t, 30)));
    t = _mm256_and_si256(_mm256_xor_si256(x, _mm256_slli_epi64(_mm256_bsrli_epi128(x, 8), 4)), m2);
    x = _mm256_xor_si256(x, _mm256_xor_si256(t, _mm256_bslli_epi128(_mm256_srli_epi64(t, 4), 8)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + k * kBlockBytes), _mm256_shuffle_epi8(x, bytes));
  }
}

}  // namespace

void ternary_repack_blocks_avx2(const uint8_t* src, size_t blocks, uint8_t* dst) {
  repack_blocks_avx2_impl(src, blocks, dst);
}

bool cpu_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
}

const Table& table_avx2() {
  static const Table table = {
      "avx2", ternary_gemv_avx2, ternary_gemm_avx2, rmsnorm_quantize_avx2, rmsnorm_avx2, conv_ssm_step_avx2,
  };
  return table;
}

}  // namespace bitmamba::kernels
