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
// hi lane moves by at most 2 * 2048, so 8 blocks fit int16 exactly
// (-32768..32512). Every 8 blocks both are widened to int32; the hi total is
// divided by 4 (exactly: it is a sum of multiples of 4) at the end.

constexpr int kFlushBlocks = 8;

inline __m256i hsum_prep(__m256i lo, __m256i hi, __m256i ones) {
  return _mm256_add_epi32(_mm256_madd_epi16(lo, ones), _mm256_srai_epi32(_mm256_madd_epi16(hi, ones), 2));
}

// Sums of the 8 int32 lanes of a, b, c, d: {sum a, sum b, sum c, sum d}.
inline __m128i hsum4_epi32(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i ab = _mm256_hadd_epi32(a, b);
  const __m256i cd = _mm256_hadd_epi32(c, d);
  const __m256i abcd = _mm256_hadd_epi32(ab, cd);  // [a b c d | a b c d] partial sums per 128-bit half
  return _mm_add_epi32(_mm256_castsi256_si128(abcd), _mm256_extracti128_si256(abcd, 1));
}

// Dot products of R consecutive rows (row_bytes apart) with one token's q.
// Returns the raw sums of code * q (before the qsum correction) in lanes 0..R-1.
template <int R>
inline __m128i dot_rows(const uint8_t* w, size_t row_bytes, const int8_t* q, int blocks) {
  const __m256i m03 = _mm256_set1_epi8(0x03);
  const __m256i m0c = _mm256_set1_epi8(0x0c);
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i total[4];  // lanes R..3 stay zero
  for (int r = 0; r < 4; ++r) total[r] = _mm256_setzero_si256();
  for (int b0 = 0; b0 < blocks; b0 += kFlushBlocks) {
    const int b1 = b0 + kFlushBlocks < blocks ? b0 + kFlushBlocks : blocks;
    __m256i lo[R], hi[R];
    for (int r = 0; r < R; ++r) lo[r] = hi[r] = _mm256_setzero_si256();
    for (int b = b0; b < b1; ++b) {
      const int8_t* qb = q + static_cast<size_t>(b) * kBlockCols;
      const __m256i q0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qb));
      const __m256i q1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qb + 32));
      const __m256i q2 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qb + 64));
      const __m256i q3 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qb + 96));
      for (int r = 0; r < R; ++r) {
        const __m256i v =
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + r * row_bytes + static_cast<size_t>(b) * kBlockBytes));
        const __m256i t = _mm256_srli_epi16(v, 4);
        lo[r] = _mm256_add_epi16(lo[r], _mm256_maddubs_epi16(_mm256_and_si256(v, m03), q0));
        hi[r] = _mm256_add_epi16(hi[r], _mm256_maddubs_epi16(_mm256_and_si256(v, m0c), q1));
        lo[r] = _mm256_add_epi16(lo[r], _mm256_maddubs_epi16(_mm256_and_si256(t, m03), q2));
        hi[r] = _mm256_add_epi16(hi[r], _mm256_maddubs_epi16(_mm256_and_si256(t, m0c), q3));
      }
    }
    for (int r = 0; r < R; ++r) total[r] = _mm256_add_epi32(total[r], hsum_prep(lo[r], hi[r], ones));
  }
  return hsum4_epi32(total[0], total[1], total[2], total[3]);
}

void ternary_gemv_avx2(const uint8_t* packed, int padded_cols, float w_scale, const QuantizedActs& acts, int row_begin,
                       int row_end, float* out, size_t /*out_stride: one token*/) {
  const size_t row_bytes = static_cast<size_t>(padded_cols) / 4;
  const int blocks = padded_cols / kBlockCols;
  const int8_t* q = acts.q;
  const __m128i qsum = _mm_set1_epi32(acts.qsum[0]);
  const __m128 denom = _mm_set1_ps(acts.scale[0] * w_scale);
  int r = row_begin;
  for (; r + 4 <= row_end; r += 4) {
    const __m128i dot = _mm_sub_epi32(dot_rows<4>(packed + r * row_bytes, row_bytes, q, blocks), qsum);
    _mm_storeu_ps(out + r, _mm_div_ps(_mm_cvtepi32_ps(dot), denom));
  }
  for (; r < row_end; ++r) {
    const __m128i dot = _mm_sub_epi32(dot_rows<1>(packed + r * row_bytes, row_bytes, q, blocks), qsum);
    _mm_store_ss(out + r, _mm_div_ss(_mm_cvtepi32_ps(dot), denom));
  }
}

// GEMM: one row at a time against a group of up to 8 tokens, so each
// 32-byte block is decoded once into four code vectors (0..2, x1) and used
// for every token of the group. Per token and block an int16 lane moves by at
// most 4 * 512, so 16 blocks fit int16 exactly before widening.
constexpr int kGemmTokens = 8;
constexpr int kGemmFlushBlocks = 16;
constexpr int kGemmRowTile = 16;  // rows whose weights stay in L1 across the token groups

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
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + static_cast<size_t>(b) * kBlockBytes));
      const __m256i c0 = _mm256_and_si256(v, m03);
      const __m256i c1 = _mm256_and_si256(_mm256_srli_epi16(v, 2), m03);
      const __m256i c2 = _mm256_and_si256(_mm256_srli_epi16(v, 4), m03);
      const __m256i c3 = _mm256_and_si256(_mm256_srli_epi16(v, 6), m03);
      const int8_t* qb = q + static_cast<size_t>(b) * kBlockCols;
      for (int t = 0; t < NT; ++t) {
        const int8_t* qt = qb + t * q_stride;
        const __m256i p0 = _mm256_maddubs_epi16(c0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qt)));
        const __m256i p1 = _mm256_maddubs_epi16(c1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qt + 32)));
        const __m256i p2 = _mm256_maddubs_epi16(c2, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qt + 64)));
        const __m256i p3 = _mm256_maddubs_epi16(c3, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qt + 96)));
        acc[t] = _mm256_add_epi16(acc[t], _mm256_add_epi16(_mm256_add_epi16(p0, p1), _mm256_add_epi16(p2, p3)));
      }
    }
    for (int t = 0; t < NT; ++t) total[t] = _mm256_add_epi32(total[t], _mm256_madd_epi16(acc[t], ones));
  }
  // 8 horizontal sums at once: lane t of the result is the sum of total[t].
  const __m256i h01 = _mm256_hadd_epi32(total[0], total[1]);
  const __m256i h23 = _mm256_hadd_epi32(total[2], total[3]);
  const __m256i h45 = _mm256_hadd_epi32(total[4], total[5]);
  const __m256i h67 = _mm256_hadd_epi32(total[6], total[7]);
  const __m256i h0123 = _mm256_hadd_epi32(h01, h23);
  const __m256i h4567 = _mm256_hadd_epi32(h45, h67);
  const __m256i sums = _mm256_add_epi32(_mm256_permute2x128_si256(h0123, h4567, 0x20),
                                        _mm256_permute2x128_si256(h0123, h4567, 0x31));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dots), sums);
}

using GemmRowFn = void (*)(const uint8_t*, const int8_t*, size_t, int, int32_t*);
constexpr GemmRowFn kGemmRow[kGemmTokens + 1] = {nullptr,        gemm_row<1>, gemm_row<2>, gemm_row<3>, gemm_row<4>,
                                                 gemm_row<5>,    gemm_row<6>, gemm_row<7>, gemm_row<8>};

void ternary_gemm_avx2(const uint8_t* packed, int padded_cols, float w_scale, const QuantizedActs& acts, int row_begin,
                       int row_end, float* out, size_t out_stride) {
  const size_t row_bytes = static_cast<size_t>(padded_cols) / 4;
  const int blocks = padded_cols / kBlockCols;
  const size_t q_stride = static_cast<size_t>(acts.padded_cols);
  for (int tile = row_begin; tile < row_end; tile += kGemmRowTile) {
    const int tile_end = tile + kGemmRowTile < row_end ? tile + kGemmRowTile : row_end;
    for (int t0 = 0; t0 < acts.tokens; t0 += kGemmTokens) {
      const int nt = acts.tokens - t0 < kGemmTokens ? acts.tokens - t0 : kGemmTokens;
      float denom[kGemmTokens];
      for (int t = 0; t < nt; ++t) denom[t] = acts.scale[t0 + t] * w_scale;
      const int8_t* q = acts.q + static_cast<size_t>(t0) * q_stride;
      for (int r = tile; r < tile_end; ++r) {
        alignas(32) int32_t dots[kGemmTokens];
        kGemmRow[nt](packed + r * row_bytes, q, q_stride, blocks, dots);
        for (int t = 0; t < nt; ++t)
          out[(t0 + t) * out_stride + r] = static_cast<float>(dots[t] - acts.qsum[t0 + t]) / denom[t];
      }
    }
  }
}

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

// roundf (half away from zero): truncate, then step away from zero when the
// dropped fraction (exact: v - trunc(v)) is at least one half.
inline __m256 round_half_away(__m256 v) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m256 frac = _mm256_andnot_ps(sign, _mm256_sub_ps(v, t));
  const __m256 step = _mm256_or_ps(_mm256_and_ps(v, sign), _mm256_set1_ps(1.0f));
  return _mm256_add_ps(t, _mm256_and_ps(_mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ), step));
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
  const __m256i k = _mm256_sub_epi32(_mm256_castps_si256(t), _mm256_set1_epi32(static_cast<int>(bits_from_float(kRoundMagic))));
  const __m256 scale = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k, _mm256_set1_epi32(127)), 23));
  return _mm256_mul_ps(e, scale);
}

inline __m256 silu_avx2(__m256 x) {
  const __m256 neg = _mm256_xor_ps(x, _mm256_set1_ps(-0.0f));
  return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), exp_avx2(neg)));
}

void conv_ssm_step_avx2(const ConvSsmArgs& a) {
  const int E = a.channels;
  float* s0 = a.conv_state;
  float* s1 = a.conv_state + E;
  float* s2 = a.conv_state + 2 * E;
  const float* w0 = a.conv_w;
  const float* w1 = a.conv_w + E;
  const float* w2 = a.conv_w + 2 * E;
  const float* w3 = a.conv_w + 3 * E;
  const bool uniform = a.head_dim % 8 == 0;  // 8 channels share one head
  int c = 0;
  for (; c + 8 <= E; c += 8) {
    __m256 hB, hC, hd, hg;
    if (uniform) {
      const int h = c / a.head_dim;
      hB = _mm256_set1_ps(a.head_B[h]);
      hC = _mm256_set1_ps(a.head_C[h]);
      hd = _mm256_set1_ps(a.head_d[h]);
      hg = _mm256_set1_ps(a.head_g[h]);
    } else {
      alignas(32) float b[8], cc[8], d[8], g[8];
      for (int k = 0; k < 8; ++k) {
        const int h = (c + k) / a.head_dim;
        b[k] = a.head_B[h];
        cc[k] = a.head_C[h];
        d[k] = a.head_d[h];
        g[k] = a.head_g[h];
      }
      hB = _mm256_load_ps(b);
      hC = _mm256_load_ps(cc);
      hd = _mm256_load_ps(d);
      hg = _mm256_load_ps(g);
    }
    const __m256 xin = _mm256_loadu_ps(a.xin + c);
    const __m256 v0 = _mm256_loadu_ps(s0 + c);
    const __m256 v1 = _mm256_loadu_ps(s1 + c);
    const __m256 v2 = _mm256_loadu_ps(s2 + c);
    __m256 conv = _mm256_add_ps(_mm256_loadu_ps(a.conv_b + c), _mm256_mul_ps(_mm256_loadu_ps(w0 + c), v0));
    conv = _mm256_add_ps(conv, _mm256_mul_ps(_mm256_loadu_ps(w1 + c), v1));
    conv = _mm256_add_ps(conv, _mm256_mul_ps(_mm256_loadu_ps(w2 + c), v2));
    conv = _mm256_add_ps(conv, _mm256_mul_ps(_mm256_loadu_ps(w3 + c), xin));
    _mm256_storeu_ps(s0 + c, v1);
    _mm256_storeu_ps(s1 + c, v2);
    _mm256_storeu_ps(s2 + c, xin);
    const __m256 u = silu_avx2(conv);
    const __m256 S = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(a.ssm_state + c), hg),
                                   _mm256_mul_ps(_mm256_mul_ps(u, hB), hd));
    _mm256_storeu_ps(a.ssm_state + c, S);
    const __m256 y = _mm256_mul_ps(_mm256_add_ps(_mm256_mul_ps(S, hC), _mm256_mul_ps(u, _mm256_loadu_ps(a.D + c))),
                                   silu_avx2(_mm256_loadu_ps(a.z + c)));
    _mm256_storeu_ps(a.y + c, y);
  }
  for (; c < E; ++c) {
    const int h = c / a.head_dim;
    const float xin = a.xin[c];
    const float conv = (((a.conv_b[c] + w0[c] * s0[c]) + w1[c] * s1[c]) + w2[c] * s2[c]) + w3[c] * xin;
    s0[c] = s1[c];
    s1[c] = s2[c];
    s2[c] = xin;
    const float u = silu_f32(conv);
    const float S = a.ssm_state[c] * a.head_g[h] + (u * a.head_B[h]) * a.head_d[h];
    a.ssm_state[c] = S;
    a.y[c] = (S * a.head_C[h] + u * a.D[c]) * silu_f32(a.z[c]);
  }
}

}  // namespace

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
