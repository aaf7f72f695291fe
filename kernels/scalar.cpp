// The scalar reference kernels: the definition every other ISA must match
// bit for bit. Written for clarity, on the same repacked layout.
#include <cmath>

#include "kernels/kernels.h"
#include "kernels/mathfn.h"
#include "kernels/scalar_common.h"

namespace bitmamba::kernels {

namespace {

int32_t ternary_dot_scalar(const uint8_t* row, const int8_t* q, int padded_cols) {
  int32_t acc = 0;
  for (int block = 0; block < padded_cols / kBlockCols; ++block) {
    const uint8_t* w = row + block * kBlockBytes;
    const int8_t* x = q + block * kBlockCols;
    for (int j = 0; j < kBlockBytes; ++j) {
      for (int field = 0; field < 4; ++field) {
        const int code = (w[j] >> (2 * field)) & 3;
        acc += code * x[field * kBlockBytes + j];
      }
    }
  }
  return acc;
}

void ternary_matmul_scalar(const uint8_t* packed, int padded_cols, float w_scale, const QuantizedActs& acts,
                           int row_begin, int row_end, float* out, size_t out_stride) {
  const size_t row_bytes = static_cast<size_t>(padded_cols) / 4;
  for (int t = 0; t < acts.tokens; ++t) {
    const int8_t* q = acts.q + static_cast<size_t>(t) * acts.padded_cols;
    const float denom = acts.scale[t] * w_scale;
    for (int r = row_begin; r < row_end; ++r) {
      const int32_t dot = ternary_dot_scalar(packed + r * row_bytes, q, padded_cols) - acts.qsum[t];
      out[t * out_stride + r] = static_cast<float>(dot) / denom;
    }
  }
}

void rmsnorm_quantize_scalar(const float* x, const float* g, int n, int padded_cols, int8_t* q, float* scale,
                             int32_t* qsum) {
  const float inv = rms_inverse(sum_squares_scalar(x, n), n);
  float max_abs = 0.0f;
  for (int i = 0; i < n; ++i) {
    const float v = std::fabs((x[i] * inv) * g[i]);
    max_abs = v > max_abs ? v : max_abs;
  }
  const float s = 127.0f / (max_abs > 1e-5f ? max_abs : 1e-5f);
  int32_t sum = 0;
  for (int i = 0; i < n; ++i) {
    q[i] = quantize_round(((x[i] * inv) * g[i]) * s);
    sum += q[i];
  }
  for (int i = n; i < padded_cols; ++i) q[i] = 0;
  *scale = s;
  *qsum = sum;
}

void rmsnorm_scalar(const float* x, const float* g, int n, float* out) {
  const float inv = rms_inverse(sum_squares_scalar(x, n), n);
  for (int i = 0; i < n; ++i) out[i] = (x[i] * inv) * g[i];
}

void conv_ssm_step_scalar(const ConvSsmArgs& a) {
  const int E = a.channels;
  float* s0 = a.conv_state;
  float* s1 = a.conv_state + E;
  float* s2 = a.conv_state + 2 * E;
  for (int c = 0; c < E; ++c) {
    const int h = c / a.head_dim;
    const float xin = a.xin[c];
    const float conv = (((a.conv_b[c] + a.conv_w[c] * s0[c]) + a.conv_w[E + c] * s1[c]) + a.conv_w[2 * E + c] * s2[c]) +
                       a.conv_w[3 * E + c] * xin;
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

const Table& table_scalar() {
  static const Table table = {
      "scalar", ternary_matmul_scalar, ternary_matmul_scalar, rmsnorm_quantize_scalar, rmsnorm_scalar,
      conv_ssm_step_scalar,
  };
  return table;
}

}  // namespace bitmamba::kernels
