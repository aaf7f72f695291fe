#include "core/embed.h"

#include <cmath>
#include <cstring>

#include "core/half.h"

namespace bitmamba {

EmbedTable embed_table(const uint8_t* file, const EmbedRef& ref, int32_t d_model) {
  EmbedTable t;
  t.type = ref.type;
  t.values = file + ref.offset;
  t.scales = ref.type == EmbedType::kInt8Rows ? file + ref.scales_offset : nullptr;
  t.cols = d_model;
  return t;
}

// Loads go through memcpy: a compact table may sit at any alignment.
void embed_row(const EmbedTable& t, int32_t token, float* out) {
  const size_t row = static_cast<size_t>(token) * static_cast<size_t>(t.cols);
  switch (t.type) {
    case EmbedType::kFloat32:
      std::memcpy(out, t.values + 4 * row, 4 * static_cast<size_t>(t.cols));
      return;
    case EmbedType::kFloat16:
      for (int i = 0; i < t.cols; ++i) {
        uint16_t h;
        std::memcpy(&h, t.values + 2 * (row + static_cast<size_t>(i)), 2);
        out[i] = half_to_float(h);
      }
      return;
    case EmbedType::kInt8Rows: {
      float scale;
      std::memcpy(&scale, t.scales + 4 * static_cast<size_t>(token), 4);
      const int8_t* q = reinterpret_cast<const int8_t*>(t.values + row);
      for (int i = 0; i < t.cols; ++i) out[i] = static_cast<float>(q[i]) * scale;
      return;
    }
  }
}

bool encode_half_row(const float* row, int cols, uint16_t* out, int* bad_col) {
  for (int i = 0; i < cols; ++i) {
    out[i] = float_to_half(row[i]);
    if ((out[i] & 0x7c00u) == 0x7c00u) {
      *bad_col = i;
      return false;
    }
  }
  return true;
}

float int8_row_scale(const float* row, int cols) {
  float max_abs = 0;
  for (int i = 0; i < cols; ++i) max_abs = std::fmax(max_abs, std::fabs(row[i]));
  return max_abs / 127.0f;
}

void encode_int8_row(const float* row, int cols, float scale, int8_t* out) {
  for (int i = 0; i < cols; ++i) {
    // nearbyint rounds half to even in the default mode; the clamp only
    // catches the last ulp of x / scale above 127.
    const float q = scale == 0 ? 0.0f : std::nearbyint(row[i] / scale);
    out[i] = static_cast<int8_t>(std::fmin(127.0f, std::fmax(-127.0f, q)));
  }
}

}  // namespace bitmamba
