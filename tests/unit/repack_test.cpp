// ternary_repack against the layout of kernels.h, element by element, in
// place and out of place, for block-aligned and ragged column counts.
#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/kernels.h"

namespace bitmamba::kernels {

// repack.cpp's portable block permutation (what a CPU without AVX2 and the
// plain wasm build use for 128-aligned rows); declared here to test it
// natively too.
void ternary_repack_blocks_portable(const uint8_t* src, size_t blocks, uint8_t* dst);

namespace {

std::vector<uint8_t> random_disk(std::mt19937& rng, int rows, int cols, std::vector<int>* codes) {
  const uint64_t n = static_cast<uint64_t>(rows) * static_cast<uint64_t>(cols);
  std::vector<uint8_t> disk((n + 3) / 4, 0);
  codes->resize(n);
  for (uint64_t i = 0; i < n; ++i) {
    (*codes)[i] = static_cast<int>(rng() % 3);
    disk[i / 4] |= static_cast<uint8_t>((*codes)[i] << (2 * (i % 4)));
  }
  return disk;
}

// Code of (row, col) in the kernel layout.
int kernel_code(const uint8_t* packed, int cols, int row, int col) {
  const uint8_t byte =
      packed[static_cast<size_t>(row) * ternary_row_bytes(cols) + (col / kBlockCols) * kBlockBytes + col % kBlockBytes];
  return (byte >> (2 * ((col % kBlockCols) / kBlockBytes))) & 3;
}

void expect_layout(const uint8_t* packed, const std::vector<int>& codes, int rows, int cols) {
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < ternary_padded_cols(cols); ++c) {
      const int want = c < cols ? codes[static_cast<size_t>(r) * cols + c] : 1;  // padding: w = 0
      ASSERT_EQ(kernel_code(packed, cols, r, c), want) << "rows " << rows << " cols " << cols << " at " << r << ", " << c;
    }
  }
}

TEST(Repack, OutOfPlaceMatchesTheLayout) {
  std::mt19937 rng(11);
  for (int cols : {1, 3, 4, 100, 127, 128, 129, 256, 384, 1000, 1024, 2048}) {
    for (int rows : {1, 2, 7}) {
      std::vector<int> codes;
      const std::vector<uint8_t> disk = random_disk(rng, rows, cols, &codes);
      std::vector<uint8_t> packed(static_cast<size_t>(rows) * ternary_row_bytes(cols), 0xee);
      std::vector<uint8_t> scratch(ternary_row_bytes(cols));
      ternary_repack(disk.data(), rows, cols, packed.data(), scratch.data());
      expect_layout(packed.data(), codes, rows, cols);
    }
  }
}

TEST(Repack, InPlaceWhenColumnsAreWholeBlocks) {
  std::mt19937 rng(12);
  for (int cols : {128, 256, 1024, 2048, 4096}) {
    const int rows = 5;
    std::vector<int> codes;
    std::vector<uint8_t> bytes = random_disk(rng, rows, cols, &codes);
    std::vector<uint8_t> scratch(ternary_row_bytes(cols));
    ternary_repack(bytes.data(), rows, cols, bytes.data(), scratch.data());
    expect_layout(bytes.data(), codes, rows, cols);
  }
}

TEST(Repack, PortableBlocksMatchTheLayout) {
  std::mt19937 rng(13);
  const int rows = 9, cols = 1024;
  std::vector<int> codes;
  std::vector<uint8_t> bytes = random_disk(rng, rows, cols, &codes);
  ternary_repack_blocks_portable(bytes.data(), static_cast<size_t>(rows) * cols / kBlockCols, bytes.data());
  expect_layout(bytes.data(), codes, rows, cols);
}

}  // namespace
}  // namespace bitmamba::kernels
