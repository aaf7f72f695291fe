// On-disk ternary layout -> the kernel layout of kernels.h.
#include <cstring>

#include "kernels/kernels.h"

namespace bitmamba::kernels {

namespace {

// Code of flat weight index i in the on-disk layout (4 per byte, low bits first).
inline uint8_t disk_code(const uint8_t* src, uint64_t i) { return (src[i >> 2] >> ((i & 3) * 2)) & 3; }

// Packs one row whose codes start at flat index `first` into `out`
// (ternary_row_bytes(cols) bytes).
void pack_row_generic(const uint8_t* src, uint64_t first, int cols, uint8_t* out) {
  const int padded = ternary_padded_cols(cols);
  for (int block = 0; block < padded / kBlockCols; ++block) {
    for (int j = 0; j < kBlockBytes; ++j) {
      uint8_t byte = 0;
      for (int field = 0; field < 4; ++field) {
        const int col = block * kBlockCols + field * kBlockBytes + j;
        const uint8_t code = col < cols ? disk_code(src, first + static_cast<uint64_t>(col)) : 1;
        byte |= static_cast<uint8_t>(code << (field * 2));
      }
      out[block * kBlockBytes + j] = byte;
    }
  }
}

uint64_t load_u64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// Whole 128-column blocks of a byte-aligned row. Source bytes 8k..8k+7 hold
// columns 32k..32k+31, four per byte; so after shifting by 2f and masking,
// byte b of word k holds column 32k + 4b + f, which belongs in output byte
// 4b + f at field k.
void pack_row_blocks(const uint8_t* src, int blocks, uint8_t* out) {
  constexpr uint64_t kLow2 = 0x0303030303030303ull;
  for (int block = 0; block < blocks; ++block, src += kBlockBytes, out += kBlockBytes) {
    const uint64_t w0 = load_u64(src), w1 = load_u64(src + 8), w2 = load_u64(src + 16), w3 = load_u64(src + 24);
    for (int f = 0; f < 4; ++f) {
      const int shift = 2 * f;
      const uint64_t packed = ((w0 >> shift) & kLow2) | (((w1 >> shift) & kLow2) << 2) |
                              (((w2 >> shift) & kLow2) << 4) | (((w3 >> shift) & kLow2) << 6);
      for (int b = 0; b < 8; ++b) out[4 * b + f] = static_cast<uint8_t>(packed >> (8 * b));
    }
  }
}

}  // namespace

void ternary_repack(const uint8_t* src, int rows, int cols, uint8_t* dst, uint8_t* row_scratch) {
  const size_t row_bytes = ternary_row_bytes(cols);
  for (int r = 0; r < rows; ++r) {
    // Row r's source bytes are never after row r's destination bytes, and a
    // row is read completely (into scratch) before it is written, so dst may
    // alias src when the layouts have the same size.
    const uint64_t first = static_cast<uint64_t>(r) * static_cast<uint64_t>(cols);
    if (cols % kBlockCols == 0)
      pack_row_blocks(src + first / 4, cols / kBlockCols, row_scratch);
    else
      pack_row_generic(src, first, cols, row_scratch);
    std::memcpy(dst + r * row_bytes, row_scratch, row_bytes);
  }
}

}  // namespace bitmamba::kernels
