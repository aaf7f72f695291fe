// In-memory model: pointers into the caller's (repacked) file bytes plus the
// few small tensors the kernels want in another layout. Private to core/.
#pragma once

#include <memory>
#include <vector>

#include "core/bitmamba.h"
#include "core/embed.h"
#include "kernels/kernels.h"
#include "kernels/threadpool.h"

namespace bitmamba {

struct TernaryWeights {
  const uint8_t* packed = nullptr;  // [rows, padded_cols / 4] in the kernels.h layout
  int rows = 0;
  int cols = 0;
  int padded_cols = 0;
  float scale = 0;
};

struct LayerWeights {
  const float* in_norm;      // [d_model]
  TernaryWeights in_proj;    // [2E + 3H, d_model]
  std::vector<float> conv_w; // [H, 4, P]: per head, tap-major (the kernel's [4, channels] for one head)
  const float* conv_b;       // [E]
  const float* dt_bias;      // [H]
  std::vector<float> neg_A;  // [H]: -exp(A_log), computed once at load
  const float* D;            // [E]
  const float* out_norm;     // [E]
  TernaryWeights out_proj;   // [d_model, E]
};

struct Model::Impl {
  const kernels::Table* kernels = nullptr;
  std::unique_ptr<ThreadPool> pool;
  EmbedTable embed;  // [vocab, d_model]
  std::vector<LayerWeights> layers;
  const float* norm_f = nullptr;
  const float* lm_norm = nullptr;
  TernaryWeights lm_head;
  int max_padded_cols = 0;  // widest BitLinear input, for the session's q buffer
  // Copies made where the file's bytes could not be used in place:
  // misaligned floats, ternary rows whose padded layout is larger.
  std::vector<std::vector<float>> owned_floats;
  std::vector<std::vector<uint8_t>> owned_bytes;
};

}  // namespace bitmamba
