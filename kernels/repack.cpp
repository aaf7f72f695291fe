// On-disk ternary layout -> the kernel layout of kernels.h.
#include <cstring>

#include "kernels/kernels.h"

namespace bitmamba::kernels {

#if defined(BITMAMBA_HAVE_AVX2)
bool cpu_has_avx2();
void ternary_repack_blocks_avx2(const uint8_t* src, size_t blocks, uint8_t* dst);  // avx2.cpp
#endif

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

}  // namespace

// Whole 128-column blocks, in place allowed: a block's 32 bytes hold the same
// 128 columns in both layouts, so each block is permuted within itself.
//
// Disk word f (bytes 8f..8f+7) holds columns 32f..32f+31; byte b of it holds
// columns 32f + 4b + i in field i. The kernel layout wants column 32f + j in
// output byte j, field f, with j = 4b + i. Two delta swaps between the words
// exchange the field index i with the word index f (a 4x4 transpose of 2-bit
// fields); then byte b of word i goes to output byte 4b + i.
void ternary_repack_blocks_portable(const uint8_t* src, size_t blocks, uint8_t* dst) {
  for (size_t k = 0; k < blocks; ++k, src += kBlockBytes, dst += kBlockBytes) {
    uint64_t w[4] = {load_u64(src), load_u64(src + 8), load_u64(src + 16), load_u64(src + 24)};
    for (int pair = 0; pair < 2; ++pair) {  // f0 <-> i0: words (0,1), (2,3)
      uint64_t& a = w[2 * pair];
      uint64_t& b = w[2 * pair + 1];
      const uint64_t t = ((a >> 2) ^ b) & 0x3333333333333333ull;
      b ^= t;
      a ^= t << 2;
    }
    for (int pair = 0; pair < 2; ++pair) {  // f1 <-> i1: words (0,2), (1,3)
      uint64_t& a = w[pair];
      uint64_t& b = w[pair + 2];
      const uint64_t t = ((a >> 4) ^ b) & 0x0f0f0f0f0f0f0f0full;
      b ^= t;
      a ^= t << 4;
    }
    for (int i = 0; i < 4; ++i)
      for (int b = 0; b < 8; ++b) dst[4 * b + i] = static_cast<uint8_t>(w[i] >> (8 * b));
  }
}

void ternary_repack(const uint8_t* src, int rows, int cols, uint8_t* dst, uint8_t* row_scratch) {
  if (cols % kBlockCols == 0) {
    // Rows are whole blocks and both layouts have the same size: one pass
    // over all blocks of the tensor, each permuted within itself.
    const size_t blocks = static_cast<size_t>(rows) * static_cast<size_t>(cols / kBlockCols);
#if defined(BITMAMBA_HAVE_AVX2)
    if (cpu_has_avx2()) {
      ternary_repack_blocks_avx2(src, blocks, dst);
      return;
    }
#endif
    ternary_repack_blocks_portable(src, blocks, dst);
    return;
  }
  const size_t row_bytes = ternary_row_bytes(cols);
  for (int r = 0; r < rows; ++r) {
    // Row r's source bytes are never after row r's destination bytes, and a
    // row is read completely (into scratch) before it is written.
    const uint64_t first = static_cast<uint64_t>(r) * static_cast<uint64_t>(cols);
    pack_row_generic(src, first, cols, row_scratch);
    std::memcpy(dst + r * row_bytes, row_scratch, row_bytes);
  }
}

}  // namespace bitmamba::kernels
