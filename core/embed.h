// The embedding table in whichever form the file stores it (EmbedType):
// one row is read per token, so the compact forms are decoded on lookup and
// never expanded in memory.
#pragma once

#include <cstdint>

#include "core/model_file.h"

namespace bitmamba {

struct EmbedTable {
  EmbedType type = EmbedType::kFloat32;
  const uint8_t* values = nullptr;  // [vocab, cols] float32, half or int8
  const uint8_t* scales = nullptr;  // kInt8Rows: [vocab] float32
  int cols = 0;
};

EmbedTable embed_table(const uint8_t* file, const EmbedRef& ref, int32_t d_model);

// out[0..cols) = row `token` as float32. token is in range (checked by the caller).
void embed_row(const EmbedTable& table, int32_t token, float* out);

// The compact encodings `bitmamba convert --embed` writes, one row at a time.
// Half: round to nearest even; false if a value is beyond the half range
// (|x| > 65504 after rounding), whose index goes to *bad_col.
bool encode_half_row(const float* row, int cols, uint16_t* out, int* bad_col);
// Int8 rows: scale = max|x| / 127 (0 for an all-zero row), q = x / scale
// rounded to nearest even, so that q * scale decodes the row.
float int8_row_scale(const float* row, int cols);
void encode_int8_row(const float* row, int cols, float scale, int8_t* out);

}  // namespace bitmamba
