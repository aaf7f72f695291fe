// The BIT2 file format (docs/format.md): one bounds-checked parser over
// (pointer, size) for every platform. Native passes a memory map, wasm the
// heap buffer the download was streamed into.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace bitmamba {

constexpr int32_t kBit2Magic = 0x42495432;

// Limits that keep every size computation far from overflow and reject
// hostile headers before anything is allocated.
constexpr int32_t kMaxVocab = 1 << 20;
constexpr int32_t kMaxDModel = 1 << 14;
constexpr int32_t kMaxLayers = 1 << 10;

struct FloatTensorRef {
  uint64_t offset = 0;  // of the first float in the file
  uint64_t count = 0;
};

struct TernaryTensorRef {
  uint64_t offset = 0;  // of the packed codes in the file
  int32_t rows = 0;
  int32_t cols = 0;
  float scale = 0;
};

// How the embedding is stored. Every BIT2 file has float32; the compact
// forms that `bitmamba convert --embed` writes (docs/format.md) keep it as
// IEEE half or as int8 with one float32 scale per row, and only the
// embedding may use them.
enum class EmbedType : int32_t { kFloat32 = 0, kFloat16 = 1, kInt8Rows = 3 };

struct EmbedRef {
  EmbedType type = EmbedType::kFloat32;
  uint64_t start = 0;          // of the tensor's type field
  uint64_t offset = 0;         // of the values: float32, half or int8, [vocab, d_model]
  uint64_t scales_offset = 0;  // kInt8Rows: [vocab] float32, value = q * scale
  uint64_t end = 0;            // one past the tensor
};

struct LayerRefs {
  FloatTensorRef in_norm;
  TernaryTensorRef in_proj;  // [2E + 3H, d_model]
  FloatTensorRef conv_w;     // [E, 1, 4]
  FloatTensorRef conv_b;     // [E]
  FloatTensorRef dt_bias;    // [H]
  FloatTensorRef A_log;      // [H]
  FloatTensorRef D;          // [E]
  FloatTensorRef out_norm;   // [E]
  TernaryTensorRef out_proj; // [d_model, E]
};

struct ModelFile {
  int32_t vocab_size = 0;
  int32_t d_model = 0;
  int32_t n_layers = 0;
  int32_t n_heads = 0;
  EmbedRef embed;  // [vocab, d_model]
  std::vector<LayerRefs> layers;
  FloatTensorRef norm_f;
  FloatTensorRef lm_norm;
  TernaryTensorRef lm_head;  // [vocab, d_model]
};

// Packed bytes of a ternary tensor on disk: ceil(rows * cols / 4).
uint64_t ternary_disk_bytes(int32_t rows, int32_t cols);

// Validates everything docs/format.md names (magic, shapes, types, sizes,
// NaN/Inf, scales, code 3, trailing bytes) without writing to `data`.
// Errors are kBadModel with a message naming the tensor and byte offset.
Status parse_model_file(const uint8_t* data, size_t size, ModelFile* out);

}  // namespace bitmamba
