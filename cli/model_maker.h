// Synthetic BIT2 models: the real shapes with random weights, for tests and
// benchmarks (the real checkpoints cannot be downloaded on build machines).
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"

namespace bitmamba::cli {

struct ModelShape {
  int32_t vocab = 0;
  int32_t d_model = 0;
  int32_t layers = 0;
  int32_t heads = 0;
};

// "tiny" (GPT-2 vocab, d_model 128, 2 layers, 4 heads: the offline demo
// model), "255m", "1b". False if unknown.
bool model_preset(const std::string& name, ModelShape* shape);

// Writes a model whose bytes depend only on shape and seed. Weights keep
// activations O(1): embeddings ~N(0,1); ternary codes ~31% zeros, as
// round(w / mean|w|) clamped of w ~ N(0, 1/cols), scale = 1 / mean|w|;
// norms 1; A_log = log U(1,16); dt_bias = softplus^-1(U(0.001, 0.1)); D = 1;
// conv weights N(0, 0.5^2), conv bias 0.
Status make_model(const ModelShape& shape, uint64_t seed, const std::string& path);

}  // namespace bitmamba::cli
