// AVX-512 ternary products with VNNI (vpdpbusd: unsigned codes x signed
// activations, four products per int32 lane, accumulated exactly). The
// other kernels of this table are the AVX2 ones. Built with AVX-512 flags
// on this file only; dispatch.cpp calls in here only after
// cpu_has_avx512vnni().
//
// A 32-byte block is broadcast to both halves of a zmm. Masked with
// 0x03 | 0x0C (per half), it holds the codes of columns 0..31 (x1) and
// 32..63 (x4) and lines up with the 64 activations q[0..63] of the block;
// masked with 0x30 | 0xC0, columns 64..127 (x16, x64) and q[64..127]. So a
// block costs a broadcast, two ands and two vpdpbusd per row, with no shifts,
// and the activations are read in their natural order. Each int32 lane keeps
// one scale for the whole row; the lanes are scaled down (exactly: every
// product in them is a multiple of the scale) before the horizontal sum.
// GCC 12's avx512fintrin.h builds some intrinsics on _mm512_undefined_*()
// and then warns about it when they are inlined; nothing here reads an
// undefined lane.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include "kernels/kernels.h"
#include "kernels/x86_gemm_driver.h"

namespace bitmamba::kernels {

const Table& table_avx2();

namespace {

inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline __m512i load512(const void* p) { return _mm512_loadu_si512(p); }
inline __m512i broadcast_block(const uint8_t* w) { return _mm512_broadcast_i64x4(load256(w)); }

// Lanes 0..7 of a x1 | x4 accumulator and of a x16 | x64 one, scaled down to
// x1 and added: 16 int32 lanes whose sum is the row's sum of code * q.
inline __m512i unscale(__m512i acc01, __m512i acc23) {
  const __m512i s01 = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2);
  const __m512i s23 = _mm512_setr_epi32(4, 4, 4, 4, 4, 4, 4, 4, 6, 6, 6, 6, 6, 6, 6, 6);
  return _mm512_add_epi32(_mm512_srav_epi32(acc01, s01), _mm512_srav_epi32(acc23, s23));
}

inline __m256i fold(__m512i x) {
  return _mm256_add_epi32(_mm512_castsi512_si256(x), _mm512_extracti64x4_epi64(x, 1));
}

// 8 horizontal sums at once: lane t of the result is the sum of t's lanes.
inline __m256i hsum8_epi32(__m256i t0, __m256i t1, __m256i t2, __m256i t3, __m256i t4, __m256i t5, __m256i t6,
                           __m256i t7) {
  const __m256i h0123 = _mm256_hadd_epi32(_mm256_hadd_epi32(t0, t1), _mm256_hadd_epi32(t2, t3));
  const __m256i h4567 = _mm256_hadd_epi32(_mm256_hadd_epi32(t4, t5), _mm256_hadd_epi32(t6, t7));
  return _mm256_add_epi32(_mm256_permute2x128_si256(h0123, h4567, 0x20),
                          _mm256_permute2x128_si256(h0123, h4567, 0x31));
}

struct Acc4x2 {
  __m512i a0, b0, a1, b1, a2, b2, a3, b3;  // x1|x4 and x16|x64 per row
};

// One block of 4 rows (w, w + rb, w + 2 rb, w + rb3) against q01 = q[0..63]
// and q23 = q[64..127] of the block. In asm: GCC 12 copies the tied vpdpbusd
// accumulators around when written with intrinsics (a register move per
// vpdpbusd). Two of these make a group of 8 rows (asm takes 30 operands).
#define BITMAMBA_ROW(W, A, B)                    \
  "vbroadcasti64x4 " W ", %[v]\n\t"              \
  "vpandd %[m01], %[v], %[p]\n\t"                \
  "vpdpbusd %[q01], %[p], %[" A "]\n\t"          \
  "vpandd %[m23], %[v], %[p]\n\t"                \
  "vpdpbusd %[q23], %[p], %[" B "]\n\t"

inline __attribute__((always_inline)) void block4(const uint8_t* w, size_t rb, size_t rb3, const int8_t* q,
                                                  const uint8_t* pf, __m512i m01, __m512i m23, Acc4x2& a) {
  __m512i v, p;
  asm("prefetcht0 (%[pf])\n\t"
      "prefetcht0 64(%[pf])\n\t"
      BITMAMBA_ROW("(%[w])", "a0", "b0") BITMAMBA_ROW("(%[w],%[rb],1)", "a1", "b1")
          BITMAMBA_ROW("(%[w],%[rb],2)", "a2", "b2") BITMAMBA_ROW("(%[w],%[rb3],1)", "a3", "b3")
      : [a0] "+v"(a.a0), [b0] "+v"(a.b0), [a1] "+v"(a.a1), [b1] "+v"(a.b1), [a2] "+v"(a.a2), [b2] "+v"(a.b2),
        [a3] "+v"(a.a3), [b3] "+v"(a.b3), [v] "=&v"(v), [p] "=&v"(p)
      : [w] "r"(w), [rb] "r"(rb), [rb3] "r"(rb3), [pf] "r"(pf), [q01] "m"(*reinterpret_cast<const __m512i*>(q)),
        [q23] "m"(*reinterpret_cast<const __m512i*>(q + 64)), [m01] "v"(m01), [m23] "v"(m23)
      : "memory");
}

#undef BITMAMBA_ROW

inline __m512i mask01() {
  return _mm512_setr_epi64(0x0303030303030303ll, 0x0303030303030303ll, 0x0303030303030303ll, 0x0303030303030303ll,
                           0x0c0c0c0c0c0c0c0cll, 0x0c0c0c0c0c0c0c0cll, 0x0c0c0c0c0c0c0c0cll, 0x0c0c0c0c0c0c0c0cll);
}
inline __m512i mask23() {
  const long long c0 = static_cast<long long>(0xc0c0c0c0c0c0c0c0ull);
  return _mm512_setr_epi64(0x3030303030303030ll, 0x3030303030303030ll, 0x3030303030303030ll, 0x3030303030303030ll,
                           c0, c0, c0, c0);
}

// Groups of 8 rows are 8 * row_bytes contiguous bytes; decode prefetches
// the group this many groups ahead, 4 lines per block (measured best of
// 1..16; decode ~50% faster than with the hardware prefetcher alone here).
constexpr int kPrefetchGroups = 4;

// Sums of code * q of 8 rows, row_bytes apart, in lanes 0..7.
inline __m256i dot8(const uint8_t* w, size_t rb, const int8_t* q, int blocks) {
  const __m512i m01 = mask01(), m23 = mask23();
  const __m512i z = _mm512_setzero_si512();
  Acc4x2 a{z, z, z, z, z, z, z, z}, c{z, z, z, z, z, z, z, z};
  const size_t rb3 = 3 * rb;
  const uint8_t* w4 = w + 4 * rb;
  const uint8_t* pf = w + kPrefetchGroups * 8 * rb;
  for (int b = 0; b < blocks; ++b) {
    const size_t wo = static_cast<size_t>(b) * kBlockBytes;
    const int8_t* qb = q + static_cast<size_t>(b) * kBlockCols;
    block4(w + wo, rb, rb3, qb, pf + 8 * wo, m01, m23, a);
    block4(w4 + wo, rb, rb3, qb, pf + 8 * wo + 128, m01, m23, c);
  }
  return hsum8_epi32(fold(unscale(a.a0, a.b0)), fold(unscale(a.a1, a.b1)), fold(unscale(a.a2, a.b2)),
                     fold(unscale(a.a3, a.b3)), fold(unscale(c.a0, c.b0)), fold(unscale(c.a1, c.b1)),
                     fold(unscale(c.a2, c.b2)), fold(unscale(c.a3, c.b3)));
}

// The same for one row (the rows left over after groups of 8), in lane 0.
inline __m256i dot1(const uint8_t* w, const int8_t* q, int blocks) {
  const __m512i m01 = mask01(), m23 = mask23();
  __m512i a = _mm512_setzero_si512(), b = a;
  for (int k = 0; k < blocks; ++k) {
    const __m512i v = broadcast_block(w + static_cast<size_t>(k) * kBlockBytes);
    a = _mm512_dpbusd_epi32(a, _mm512_and_si512(v, m01), load512(q + static_cast<size_t>(k) * kBlockCols));
    b = _mm512_dpbusd_epi32(b, _mm512_and_si512(v, m23), load512(q + static_cast<size_t>(k) * kBlockCols + 64));
  }
  const __m256i zero = _mm256_setzero_si256();
  return hsum8_epi32(fold(unscale(a, b)), zero, zero, zero, zero, zero, zero, zero);
}

void ternary_gemv_avx512(const uint8_t* packed, int padded_cols, float w_scale, const QuantizedActs& acts,
                         int row_begin, int row_end, float* out, size_t /*out_stride: one token*/) {
  const size_t row_bytes = static_cast<size_t>(padded_cols) / 4;
  const int blocks = padded_cols / kBlockCols;
  const __m256i qsum = _mm256_set1_epi32(acts.qsum[0]);
  const float denom = acts.scale[0] * w_scale;
  const __m256 vdenom = _mm256_set1_ps(denom);
  int r = row_begin;
  for (; r + 8 <= row_end; r += 8) {
    const __m256i dot = _mm256_sub_epi32(dot8(packed + r * row_bytes, row_bytes, acts.q, blocks), qsum);
    _mm256_storeu_ps(out + r, _mm256_div_ps(_mm256_cvtepi32_ps(dot), vdenom));
  }
  for (; r < row_end; ++r) {
    const __m256i dot = _mm256_sub_epi32(dot1(packed + r * row_bytes, acts.q, blocks), qsum);
    _mm_store_ss(out + r, _mm_div_ss(_mm_cvtepi32_ps(_mm256_castsi256_si128(dot)), _mm256_castps256_ps128(vdenom)));
  }
}

// GEMM: one row against up to 16 tokens. The block's codes are shifted to x1
// (vpsrlvw by 0 | 2 and 4 | 6, then & 3) once, and each token adds two
// vpdpbusd into its own accumulator. 16 tokens use asm for the same reason
// as the GEMV (two statements of 8: asm takes 30 operands).
constexpr int kGemmTokens = 16;
constexpr int kGemmRowTile = 16;  // rows whose outputs are staged before going to `out`

struct Acc8 {
  __m512i t0, t1, t2, t3, t4, t5, t6, t7;
};

// All eight c01 products first, then the c23 ones: the two products a token
// adds per block are eight instructions apart rather than dependent
// neighbours.
#define BITMAMBA_C01(ADDR, T) "vpdpbusd " ADDR ", %[c01], %[" T "]\n\t"
#define BITMAMBA_C23(ADDR, T) "vpdpbusd 64" ADDR ", %[c23], %[" T "]\n\t"
#define BITMAMBA_TOKENS8(OP)                                                                     \
  OP("(%[q])", "t0") OP("(%[q],%[qs],1)", "t1") OP("(%[q],%[qs],2)", "t2") OP("(%[q],%[qs3],1)", "t3") \
      OP("(%[q],%[qs],4)", "t4") OP("(%[q],%[qs5],1)", "t5") OP("(%[q],%[qs3],2)", "t6") OP("(%[q],%[qs7],1)", "t7")

// Tokens q + k * qs, k = 0..7, of one block.
inline __attribute__((always_inline)) void tokens8(const int8_t* q, size_t qs, size_t qs3, size_t qs5, size_t qs7,
                                                   __m512i c01, __m512i c23, Acc8& a) {
  asm(BITMAMBA_TOKENS8(BITMAMBA_C01) BITMAMBA_TOKENS8(BITMAMBA_C23)
      : [t0] "+v"(a.t0), [t1] "+v"(a.t1), [t2] "+v"(a.t2), [t3] "+v"(a.t3), [t4] "+v"(a.t4), [t5] "+v"(a.t5),
        [t6] "+v"(a.t6), [t7] "+v"(a.t7)
      : [q] "r"(q), [qs] "r"(qs), [qs3] "r"(qs3), [qs5] "r"(qs5), [qs7] "r"(qs7), [c01] "v"(c01), [c23] "v"(c23)
      : "memory");
}

#undef BITMAMBA_TOKENS8
#undef BITMAMBA_C23
#undef BITMAMBA_C01
void gemm_row16(const uint8_t* w, const int8_t* q, size_t q_stride, int blocks, int32_t dots[kGemmTokens]) {
  const __m512i m3 = _mm512_set1_epi8(0x03);
  const __m512i s01 = _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1);
  const __m512i s23 = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(6), 1);
  const __m512i z = _mm512_setzero_si512();
  Acc8 a{z, z, z, z, z, z, z, z}, c{z, z, z, z, z, z, z, z};
  const size_t qs = q_stride, qs3 = 3 * qs, qs5 = 5 * qs, qs7 = 7 * qs;
  const int8_t* q8 = q + 8 * qs;
  // The next block's codes are decoded before this block's products are
  // issued, so their load and shifts overlap the products.
  __m512i v = broadcast_block(w);
  __m512i c01 = _mm512_and_si512(_mm512_srlv_epi16(v, s01), m3);
  __m512i c23 = _mm512_and_si512(_mm512_srlv_epi16(v, s23), m3);
  for (int b = 0; b < blocks; ++b) {
    const __m512i n = broadcast_block(w + static_cast<size_t>(b + 1 < blocks ? b + 1 : b) * kBlockBytes);
    const __m512i n01 = _mm512_and_si512(_mm512_srlv_epi16(n, s01), m3);
    const __m512i n23 = _mm512_and_si512(_mm512_srlv_epi16(n, s23), m3);
    const size_t qo = static_cast<size_t>(b) * kBlockCols;
    tokens8(q + qo, qs, qs3, qs5, qs7, c01, c23, a);
    tokens8(q8 + qo, qs, qs3, qs5, qs7, c01, c23, c);
    c01 = n01;
    c23 = n23;
  }
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dots), hsum8_epi32(fold(a.t0), fold(a.t1), fold(a.t2), fold(a.t3),
                                                                     fold(a.t4), fold(a.t5), fold(a.t6), fold(a.t7)));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dots + 8), hsum8_epi32(fold(c.t0), fold(c.t1), fold(c.t2), fold(c.t3),
                                                                         fold(c.t4), fold(c.t5), fold(c.t6), fold(c.t7)));
}

// Fewer than 16 tokens, with intrinsics.
template <int NT>
void gemm_row(const uint8_t* w, const int8_t* q, size_t q_stride, int blocks, int32_t dots[kGemmTokens]) {
  const __m512i m3 = _mm512_set1_epi8(0x03);
  const __m512i s01 = _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1);
  const __m512i s23 = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(6), 1);
  __m512i acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_si512();
  for (int b = 0; b < blocks; ++b) {
    const __m512i v = broadcast_block(w + static_cast<size_t>(b) * kBlockBytes);
    const __m512i c01 = _mm512_and_si512(_mm512_srlv_epi16(v, s01), m3);
    const __m512i c23 = _mm512_and_si512(_mm512_srlv_epi16(v, s23), m3);
    const int8_t* qb = q + static_cast<size_t>(b) * kBlockCols;
    for (int t = 0; t < NT; ++t) {
      acc[t] = _mm512_dpbusd_epi32(acc[t], c01, load512(qb + t * q_stride));
      acc[t] = _mm512_dpbusd_epi32(acc[t], c23, load512(qb + t * q_stride + 64));
    }
  }
  __m256i s[kGemmTokens];
  for (int t = 0; t < kGemmTokens; ++t) s[t] = t < NT ? fold(acc[t < NT ? t : 0]) : _mm256_setzero_si256();
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dots), hsum8_epi32(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dots + 8),
                      NT > 8 ? hsum8_epi32(s[8], s[9], s[10], s[11], s[12], s[13], s[14], s[15])
                             : _mm256_setzero_si256());
}

constexpr GemmRowFn kGemmRow[kGemmTokens + 1] = {
    nullptr,      gemm_row<1>,  gemm_row<2>,  gemm_row<3>,  gemm_row<4>,  gemm_row<5>,
    gemm_row<6>,  gemm_row<7>,  gemm_row<8>,  gemm_row<9>,  gemm_row<10>, gemm_row<11>,
    gemm_row<12>, gemm_row<13>, gemm_row<14>, gemm_row<15>, gemm_row16};

// The loop over token groups and row tiles is shared with avx2.cpp (x86_gemm_driver.h).
constexpr TernaryMatmulFn ternary_gemm_avx512 = ternary_gemm_driver<kGemmTokens, kGemmRowTile, kGemmRow>;

}  // namespace

bool cpu_has_avx512vnni() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("avx512f") &&
                          __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                          __builtin_cpu_supports("avx512vnni");
  return has;
}

const Table& table_avx512() {
  static const Table table = [] {
    Table t = table_avx2();
    t.isa = "avx512";
    t.ternary_gemv = ternary_gemv_avx512;
    t.ternary_gemm = ternary_gemm_avx512;
    return t;
  }();
  return table;
}

}  // namespace bitmamba::kernels
