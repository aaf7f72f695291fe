// The BitLinear shapes of the 255M and 1B presets (in_proj, out_proj,
// lm_head), shared by the native kernels_bench and the wasm kernel-bench so
// that their GB/s figures describe the same matrices.
#pragma once

namespace bitmamba::kernels::bench {

struct Shape {
  const char* name;
  int rows;
  int cols;
};

constexpr Shape kShapes[] = {
    {"255m_in_proj", 4144, 1024}, {"255m_out_proj", 1024, 2048}, {"255m_lm_head", 50257, 1024},
    {"1b_in_proj", 8288, 2048},   {"1b_out_proj", 2048, 4096},   {"1b_lm_head", 50257, 2048},
};

}  // namespace bitmamba::kernels::bench
