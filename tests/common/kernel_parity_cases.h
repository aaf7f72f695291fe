// Kernel parity, the part both harnesses share: run the scalar table and an
// optimised one on the same inputs and compare what they wrote, bit for bit.
// Included by tests/unit/kernel_parity_test.cpp (gtest, the native tables)
// and tests/wasm/kernel_parity.cpp (a Node program built by Emscripten,
// without gtest). Each draws its inputs from its own generator and reports
// a difference its own way, so this header has neither: a comparison
// returns what differs first, as text, and "" when nothing does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/kernels.h"

namespace bitmamba::kernels::parity {

inline bool same_bits(const void* a, const void* b, size_t bytes) { return std::memcmp(a, b, bytes) == 0; }

// Index of the first float whose bits differ; n if none.
inline size_t first_diff(const float* a, const float* b, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) return i;
  return n;
}

// Ternary weights in the kernel layout: on-disk codes code(i) (0..2, for
// weight i of [rows, cols] row-major, called in order), packed 4 per byte,
// then repacked.
template <class CodeFn>
std::vector<uint8_t> pack_codes(int rows, int cols, CodeFn code) {
  const uint64_t n = static_cast<uint64_t>(rows) * static_cast<uint64_t>(cols);
  std::vector<uint8_t> disk((n + 3) / 4, 0);
  for (uint64_t i = 0; i < n; ++i) disk[i / 4] |= static_cast<uint8_t>(code(i) << (2 * (i % 4)));
  std::vector<uint8_t> packed(static_cast<size_t>(rows) * ternary_row_bytes(cols));
  std::vector<uint8_t> scratch(ternary_row_bytes(cols));
  ternary_repack(disk.data(), rows, cols, packed.data(), scratch.data());
  return packed;
}

// One ternary product: acts against rows [row_begin, row_end) of `packed`,
// outputs `stride` floats apart per token.
struct MatmulCase {
  const uint8_t* packed;
  int padded_cols;
  float w_scale;
  QuantizedActs acts;
  int row_begin;
  int row_end;
  size_t stride;
};

// ref's and opt's GEMM (GEMV if !gemm; acts.tokens must be 1) on c, each
// into [tokens, stride] floats prefilled with -7: outputs outside the row
// range must keep it.
inline std::string matmul_diff(const Table& ref, const Table& opt, bool gemm, const MatmulCase& c) {
  const size_t n = c.stride * static_cast<size_t>(c.acts.tokens);
  std::vector<float> want(n, -7.0f), got(n, -7.0f);
  (gemm ? ref.ternary_gemm : ref.ternary_gemv)(c.packed, c.padded_cols, c.w_scale, c.acts, c.row_begin, c.row_end,
                                               want.data(), c.stride);
  (gemm ? opt.ternary_gemm : opt.ternary_gemv)(c.packed, c.padded_cols, c.w_scale, c.acts, c.row_begin, c.row_end,
                                               got.data(), c.stride);
  const size_t at = first_diff(want.data(), got.data(), n);
  return at == n ? std::string() : "first difference at " + std::to_string(at);
}

// rmsnorm_quantize of x, g (n values) into `padded` bytes prefilled with 99:
// the padding past n must come back zeroed.
inline std::string rmsnorm_quantize_diff(const Table& ref, const Table& opt, const float* x, const float* g, int n,
                                         int padded) {
  std::vector<int8_t> qr(static_cast<size_t>(padded), 99), qo(static_cast<size_t>(padded), 99);
  float sr = 0, so = 0;
  int32_t cr = 0, co = 0;
  ref.rmsnorm_quantize(x, g, n, padded, qr.data(), &sr, &cr);
  opt.rmsnorm_quantize(x, g, n, padded, qo.data(), &so, &co);
  std::ostringstream d;
  d.precision(9);
  if (!same_bits(&sr, &so, sizeof(float))) {
    d << "scale " << sr << " vs " << so;
  } else if (cr != co) {
    d << "qsum " << cr << " vs " << co;
  } else {
    for (int i = 0; i < padded; ++i)
      if (qr[i] != qo[i]) {
        d << "q differs at " << i << ": " << int{qr[i]} << " vs " << int{qo[i]};
        break;
      }
  }
  return d.str();
}

// rmsnorm of x, g (n values) into n + 1 floats prefilled with -3: the one
// past the end must keep it.
inline std::string rmsnorm_diff(const Table& ref, const Table& opt, const float* x, const float* g, int n) {
  const size_t size = static_cast<size_t>(n) + 1;
  std::vector<float> want(size, -3.0f), got(size, -3.0f);
  ref.rmsnorm(x, g, n, want.data());
  opt.rmsnorm(x, g, n, got.data());
  const size_t at = first_diff(want.data(), got.data(), size);
  return at == size ? std::string() : "first difference at " + std::to_string(at);
}

// The inputs of conv_ssm_step that a step only reads, for `heads` heads of
// head_dim channels, zero-filled: each harness draws them its own way.
struct ConvSsmInputs {
  int channels, head_dim;
  std::vector<float> z, xin, conv_w, conv_b, D;       // [channels]; conv_w [4, channels]
  std::vector<float> head_B, head_C, head_d, head_g;  // [heads]

  ConvSsmInputs(int heads, int head_dim_)
      : channels(heads * head_dim_),
        head_dim(head_dim_),
        z(static_cast<size_t>(channels)),
        xin(static_cast<size_t>(channels)),
        conv_w(4 * static_cast<size_t>(channels)),
        conv_b(static_cast<size_t>(channels)),
        D(static_cast<size_t>(channels)),
        head_B(static_cast<size_t>(heads)),
        head_C(static_cast<size_t>(heads)),
        head_d(static_cast<size_t>(heads)),
        head_g(static_cast<size_t>(heads)) {}

  // The state and y pointers are left null.
  ConvSsmArgs args() const {
    ConvSsmArgs a{};
    a.channels = channels;
    a.head_dim = head_dim;
    a.z = z.data();
    a.xin = xin.data();
    a.conv_w = conv_w.data();
    a.conv_b = conv_b.data();
    a.D = D.data();
    a.head_B = head_B.data();
    a.head_C = head_C.data();
    a.head_d = head_d.data();
    a.head_g = head_g.data();
    return a;
  }
};

// `steps` tokens of conv_ssm_step from the same states, conv [3, channels]
// and ssm [channels]; y, conv and ssm are compared after each step. Each
// table gets its own copies of the states and its own y (channels + 1
// floats prefilled with -5, the last must keep it).
inline std::string conv_ssm_diff(const Table& ref, const Table& opt, const ConvSsmInputs& in,
                                 const std::vector<float>& conv, const std::vector<float>& ssm, int steps) {
  ConvSsmArgs a = in.args();
  const size_t channels = static_cast<size_t>(a.channels);
  std::vector<float> conv_ref = conv, ssm_ref = ssm, y_ref(channels + 1, -5.0f);
  std::vector<float> conv_opt = conv, ssm_opt = ssm, y_opt(channels + 1, -5.0f);
  ConvSsmArgs b = a;
  a.conv_state = conv_ref.data();
  a.ssm_state = ssm_ref.data();
  a.y = y_ref.data();
  b.conv_state = conv_opt.data();
  b.ssm_state = ssm_opt.data();
  b.y = y_opt.data();
  for (int step = 0; step < steps; ++step) {
    ref.conv_ssm_step(a);
    opt.conv_ssm_step(b);
    const std::string at = "step " + std::to_string(step) + ": ";
    size_t i = first_diff(y_ref.data(), y_opt.data(), y_ref.size());
    if (i != y_ref.size()) return at + "y differs at " + std::to_string(i);
    i = first_diff(conv_ref.data(), conv_opt.data(), conv_ref.size());
    if (i != conv_ref.size()) return at + "conv state differs at " + std::to_string(i);
    i = first_diff(ssm_ref.data(), ssm_opt.data(), ssm_ref.size());
    if (i != ssm_ref.size()) return at + "ssm state differs at " + std::to_string(i);
  }
  return std::string();
}

}  // namespace bitmamba::kernels::parity
