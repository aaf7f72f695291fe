// The kernel seam: every hot loop of the model goes through this table.
//
// The table is filled with the scalar reference first, then overridden by
// what the CPU (native) or the build (wasm) supports. Every implementation
// must give bit-identical results to the scalar one on the same inputs:
// integer sums are exact, and float operations follow the order written
// down here (the build disables FMA contraction).
//
// Kernels never include core headers; the core never includes intrinsics.
#pragma once

#include <cstddef>
#include <cstdint>

namespace bitmamba::kernels {

// Repacked ternary layout, the same for every ISA.
// A row is ceil(cols / 128) blocks of 32 bytes. Byte j (0..31) of block b
// holds the codes (w + 1, in 0..2) of columns 128b + j, 128b + 32 + j,
// 128b + 64 + j and 128b + 96 + j in bits 0-1, 2-3, 4-5 and 6-7. So the four
// 2-bit fields of a 32-byte block line up with four contiguous 32-column
// chunks of the activations. Columns past `cols` hold code 1 (w = 0).
constexpr int kBlockCols = 128;
constexpr int kBlockBytes = 32;

inline int ternary_padded_cols(int cols) { return (cols + kBlockCols - 1) / kBlockCols * kBlockCols; }
inline size_t ternary_row_bytes(int cols) { return static_cast<size_t>(ternary_padded_cols(cols)) / 4; }

// Activations quantised for one BitLinear over T tokens. q rows are
// `padded_cols` long and zero past `cols`, so kernels never need a column tail.
struct QuantizedActs {
  const int8_t* q;      // [T, padded_cols]
  const float* scale;   // [T]  s = 127 / max(max|n|, 1e-5)
  const int32_t* qsum;  // [T]  sum of q: the correction for codes being w + 1
  int tokens;
  int padded_cols;
};

// out[t * out_stride + r] = (float)(sum_c code[r][c] * q[t][c] - qsum[t]) / (scale[t] * w_scale)
// for rows r in [row_begin, row_end). `packed` points at row 0.
using TernaryMatmulFn = void (*)(const uint8_t* packed, int padded_cols, float w_scale,
                                 const QuantizedActs& acts, int row_begin, int row_end,
                                 float* out, size_t out_stride);

// BitLinear's input side for one token: n = RMSNorm(x; g), then q = int8(n * s).
//   sumsq: 8 interleaved partial sums, lane k adds x[i]*x[i] for i % 8 == k in
//          increasing i; total = l0 + l1 + ... + l7 added left to right.
//   inv   = 1 / sqrt(total / n + 1e-6)
//   n[i]  = (x[i] * inv) * g[i]
//   s     = 127 / max(max|n|, 1e-5)
//   q[i]  = clamp(roundf(n[i] * s), -128, 127)   (half away from zero)
// q is written up to padded_cols (zeros past n); *scale = s; *qsum = sum q.
using RmsnormQuantizeFn = void (*)(const float* x, const float* g, int n, int padded_cols,
                                   int8_t* q, float* scale, int32_t* qsum);

// Plain RMSNorm with the same arithmetic as above: out[i] = (x[i] * inv) * g[i].
using RmsnormFn = void (*)(const float* x, const float* g, int n, float* out);

// One token of the causal depthwise conv and the SSM recurrence for channels
// [0, channels). Per-head scalars (B, C, d = softplus(dt + dt_bias),
// g = exp(-exp(A_log) * d)) are computed by the core; channel c is in head
// c / head_dim. Per channel, in this order:
//   a  = (((bias + w0*s0) + w1*s1) + w2*s2) + w3*xin
//   s0, s1, s2 = s1, s2, xin
//   u  = a / (1 + exp(-a))                       (exp = exp_f32 of mathfn.h)
//   S  = S*g + (u*B)*d
//   y  = (S*C + u*D) * (z / (1 + exp(-z)))
struct ConvSsmArgs {
  int channels;
  int head_dim;
  const float* z;           // [channels]
  const float* xin;         // [channels]
  const float* conv_w;      // [4, channels]: tap k of channel c at k * channels + c
  const float* conv_b;      // [channels]
  const float* D;           // [channels]
  const float* head_B;      // [channels / head_dim]
  const float* head_C;      // [channels / head_dim]
  const float* head_d;      // [channels / head_dim]
  const float* head_g;      // [channels / head_dim]
  float* conv_state;        // [3, channels]: s0, s1, s2 planes
  float* ssm_state;         // [channels]
  float* y;                 // [channels]
};
using ConvSsmStepFn = void (*)(const ConvSsmArgs& args);

struct Table {
  // "scalar", "avx2", "avx512" (AVX-512 VNNI products), "simd128", "relaxed"
  // (relaxed SIMD, int16 sums) or "relaxed-dot-add" (relaxed SIMD, int32 dot-add)
  const char* isa;
  TernaryMatmulFn ternary_gemv;  // called with acts.tokens == 1
  TernaryMatmulFn ternary_gemm;  // any acts.tokens >= 1
  RmsnormQuantizeFn rmsnorm_quantize;
  RmsnormFn rmsnorm;
  ConvSsmStepFn conv_ssm_step;
};

// The scalar reference table.
const Table& table_scalar();
// The best table this CPU / build supports. `force_isa` (may be null) picks
// a specific one by name for tests and benchmarks; returns null if unknown
// or unsupported here.
const Table& table_best();
const Table* table_by_name(const char* isa);

// The fastest of `tables` (null-terminated) at ternary_gemv on this machine
// and JS engine, timed on a small synthetic matrix; a table must be 3%
// faster than those listed before it to be picked over them. For a
// build that carries several tables whose speed depends on how the engine
// compiles them: they all give the same results bit for bit, so the choice
// changes speed only.
// Built into the wasm builds only (native CPUs are dispatched by feature).
const Table& fastest_table(const Table* const* tables);

// Repack one ternary tensor from the on-disk layout (rows * cols codes,
// 4 per byte, first weight in the low bits, rows contiguous) into the layout
// above. `dst` has rows * ternary_row_bytes(cols) bytes. When cols % 128 == 0
// and cols % 4 == 0 the two layouts have the same size and dst may equal src
// (each row is permuted within itself through `row_scratch`, which holds
// ternary_row_bytes(cols) bytes).
void ternary_repack(const uint8_t* src, int rows, int cols, uint8_t* dst, uint8_t* row_scratch);

}  // namespace bitmamba::kernels
