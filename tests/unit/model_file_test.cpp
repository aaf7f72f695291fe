// One handcrafted corrupt file per failure kind of docs/format.md, each
// expecting its own error naming the tensor and the byte offset.
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/bitmamba.h"
#include "core/model_file.h"

namespace bitmamba {
namespace {

// Builds a valid BIT2 file byte by byte, remembering where each tensor
// starts so a test can corrupt exactly one thing.
struct FileBuilder {
  std::vector<uint8_t> bytes;
  std::vector<std::pair<std::string, size_t>> starts;  // tensor name -> offset of its type field

  void i32(int32_t v) { append(&v, 4); }
  void f32(float v) { append(&v, 4); }
  void append(const void* p, size_t n) {
    const uint8_t* b = static_cast<const uint8_t*>(p);
    bytes.insert(bytes.end(), b, b + n);
  }
  void floats(const std::string& name, std::vector<int32_t> dims, float value) {
    starts.emplace_back(name, bytes.size());
    i32(0);
    i32(static_cast<int32_t>(dims.size()));
    size_t n = 1;
    for (int32_t d : dims) {
      i32(d);
      n *= static_cast<size_t>(d);
    }
    for (size_t i = 0; i < n; ++i) f32(value);
  }
  void ternary(const std::string& name, int32_t rows, int32_t cols) {
    starts.emplace_back(name, bytes.size());
    i32(2);
    i32(rows);
    i32(cols);
    f32(2.0f);
    const size_t n = (static_cast<size_t>(rows) * cols + 3) / 4;
    for (size_t i = 0; i < n; ++i) bytes.push_back(static_cast<uint8_t>(0x24 + (i % 3)));  // codes 0,1,2 only
  }
  size_t start(const std::string& name) const {
    for (const auto& s : starts)
      if (s.first == name) return s.second;
    ADD_FAILURE() << "no tensor " << name;
    return 0;
  }
  void put_i32(size_t at, int32_t v) { std::memcpy(&bytes[at], &v, 4); }
  void put_f32(size_t at, float v) { std::memcpy(&bytes[at], &v, 4); }
};

FileBuilder valid_file(int32_t vocab = 16, int32_t d = 8, int32_t layers = 2, int32_t heads = 2) {
  FileBuilder f;
  const int32_t E = 2 * d;
  f.i32(kBit2Magic);
  f.i32(vocab);
  f.i32(d);
  f.i32(layers);
  f.i32(heads);
  f.floats("embed", {vocab, d}, 0.5f);
  for (int l = 0; l < layers; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    f.floats(p + "in_proj.norm", {d}, 1.0f);
    f.ternary(p + "in_proj", 2 * E + 3 * heads, d);
    f.floats(p + "conv1d.weight", {E, 1, 4}, 0.1f);
    f.floats(p + "conv1d.bias", {E}, 0.0f);
    f.floats(p + "dt_bias", {heads}, -3.0f);
    f.floats(p + "A_log", {heads}, 1.0f);
    f.floats(p + "D", {E}, 1.0f);
    f.floats(p + "out_proj.norm", {E}, 1.0f);
    f.ternary(p + "out_proj", d, E);
  }
  f.floats("norm_f", {d}, 1.0f);
  f.floats("lm_head.norm", {d}, 1.0f);
  f.ternary("lm_head", vocab, d);
  return f;
}

Status parse(const FileBuilder& f) {
  ModelFile m;
  return parse_model_file(f.bytes.data(), f.bytes.size(), &m);
}

// The error must be kBadModel and mention every fragment.
void expect_error(const Status& st, std::initializer_list<std::string> fragments) {
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code, ErrorCode::kBadModel);
  for (const std::string& f : fragments) EXPECT_NE(st.message.find(f), std::string::npos) << st.message;
}

TEST(ModelFile, ValidFileParses) {
  FileBuilder f = valid_file();
  ModelFile m;
  ASSERT_TRUE(parse_model_file(f.bytes.data(), f.bytes.size(), &m).ok());
  EXPECT_EQ(m.vocab_size, 16);
  EXPECT_EQ(m.layers.size(), 2u);
  EXPECT_EQ(m.lm_head.rows, 16);
}

TEST(ModelFile, WrongMagic) {
  FileBuilder f = valid_file();
  f.put_i32(0, 0x46554747);  // "GGUF"
  expect_error(parse(f), {"header", "byte offset 0", "magic"});
}

TEST(ModelFile, EmptyAndTinyFiles) {
  ModelFile m;
  expect_error(parse_model_file(nullptr, 0, &m), {"byte offset 0"});
  FileBuilder f = valid_file();
  expect_error(parse_model_file(f.bytes.data(), 10, &m), {"header", "byte offset 8", "d_model"});
}

TEST(ModelFile, NegativeZeroAndHugeHeaderDims) {
  for (int32_t bad : {-1, 0, std::numeric_limits<int32_t>::max()}) {
    FileBuilder f = valid_file();
    f.put_i32(4, bad);  // vocab_size
    expect_error(parse(f), {"header", "byte offset 4", "vocab_size"});
  }
  FileBuilder f = valid_file();
  f.put_i32(12, -5);  // n_layers
  expect_error(parse(f), {"byte offset 12", "n_layers"});
}

TEST(ModelFile, HeadsMustDivideInnerWidth) {
  FileBuilder f = valid_file();
  f.put_i32(16, 3);  // d_inner 16 is not divisible by 3
  expect_error(parse(f), {"header", "n_heads"});
}

TEST(ModelFile, HostileHeaderDoesNotAllocate) {
  // A header claiming a 2^20 x 2^14 embedding in a 100-byte file fails on
  // the size check, not on an allocation.
  FileBuilder f = valid_file();
  f.put_i32(4, 1 << 20);
  f.put_i32(8, 1 << 14);
  f.bytes.resize(100);
  f.put_i32(20, 0);
  f.put_i32(24, 2);
  f.put_i32(28, 1 << 20);
  f.put_i32(32, 1 << 14);
  expect_error(parse(f), {"embed", "byte offset 36", "truncated"});
}

TEST(ModelFile, FloatShapeMismatch) {
  FileBuilder f = valid_file();
  const size_t at = f.start("layers.1.conv1d.bias");
  f.put_i32(at + 8, 17);  // dims[0] should be 16
  expect_error(parse(f), {"layers.1.conv1d.bias", "byte offset " + std::to_string(at + 8), "expected 16"});
}

TEST(ModelFile, FloatWrongNdim) {
  FileBuilder f = valid_file();
  const size_t at = f.start("embed");
  f.put_i32(at + 4, 3);
  expect_error(parse(f), {"embed", "byte offset " + std::to_string(at + 4), "dims"});
}

TEST(ModelFile, WrongTensorType) {
  FileBuilder f = valid_file();
  const size_t at = f.start("layers.0.in_proj");
  f.put_i32(at, 0);
  expect_error(parse(f), {"layers.0.in_proj", "byte offset " + std::to_string(at), "type 0"});
  FileBuilder g = valid_file();
  const size_t at2 = g.start("norm_f");
  g.put_i32(at2, 2);
  expect_error(parse(g), {"norm_f", "byte offset " + std::to_string(at2), "type 2"});
}

TEST(ModelFile, TernaryShapeMismatch) {
  FileBuilder f = valid_file();
  const size_t at = f.start("layers.0.out_proj");
  f.put_i32(at + 8, 15);  // cols should be E = 16
  expect_error(parse(f), {"layers.0.out_proj", "byte offset " + std::to_string(at + 4), "expected [8, 16]"});
}

TEST(ModelFile, TruncatedTensors) {
  FileBuilder f = valid_file();
  const size_t at = f.start("lm_head");
  FileBuilder cut = f;
  cut.bytes.resize(f.bytes.size() - 1);
  expect_error(parse(cut), {"lm_head", "byte offset " + std::to_string(at + 16), "truncated"});
  FileBuilder cut2 = f;
  const size_t conv = f.start("layers.1.conv1d.weight");
  cut2.bytes.resize(conv + 30);
  expect_error(parse(cut2), {"layers.1.conv1d.weight", "truncated"});
  FileBuilder cut3 = f;
  cut3.bytes.resize(at + 6);
  expect_error(parse(cut3), {"lm_head", "ends inside the tensor header"});
}

TEST(ModelFile, TrailingBytes) {
  FileBuilder f = valid_file();
  const size_t end = f.bytes.size();
  f.bytes.push_back(0);
  expect_error(parse(f), {"byte offset " + std::to_string(end), "1 trailing bytes"});
}

TEST(ModelFile, NanAndInfFloats) {
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
    FileBuilder f = valid_file();
    const size_t at = f.start("layers.1.D") + 12 + 4 * 5;  // sixth value
    f.put_f32(at, bad);
    expect_error(parse(f), {"layers.1.D", "byte offset " + std::to_string(at), "NaN or infinite"});
  }
}

TEST(ModelFile, BadScales) {
  for (float bad : {0.0f, -1.0f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    FileBuilder f = valid_file();
    const size_t at = f.start("layers.0.in_proj");
    f.put_f32(at + 12, bad);
    expect_error(parse(f), {"layers.0.in_proj", "byte offset " + std::to_string(at + 12), "scale"});
  }
}

TEST(ModelFile, PackedCode3) {
  FileBuilder f = valid_file();
  const size_t at = f.start("layers.1.in_proj") + 16 + 13;
  f.bytes[at] = 0x1c;  // fields 1, 3, 1, 0: code 3 in the second field
  expect_error(parse(f), {"layers.1.in_proj", "byte offset " + std::to_string(at), "code 3"});
}

TEST(ModelFile, Code3InUnusedTailBitsIsIgnored) {
  // vocab 15 x d 8 = 120 codes: whole bytes. d = 6 needs heads dividing 12;
  // lm_head 15 x 6 = 90 codes = 22.5 bytes: the last byte's high half is padding.
  FileBuilder f = valid_file(15, 6, 1, 2);
  f.bytes.back() = static_cast<uint8_t>((f.bytes.back() & 0x0f) | 0xf0);
  ModelFile m;
  EXPECT_TRUE(parse_model_file(f.bytes.data(), f.bytes.size(), &m).ok());
}

TEST(ModelFile, LoadReportsErrorsAndLeavesValidationToParser) {
  FileBuilder f = valid_file();
  f.put_i32(0, 1);
  std::unique_ptr<Model> model;
  Status st = Model::load(f.bytes.data(), f.bytes.size(), {}, &model);
  EXPECT_EQ(st.code, ErrorCode::kBadModel);
  EXPECT_EQ(model, nullptr);
}

TEST(ModelFile, LoadRejectsBadOptions) {
  FileBuilder f = valid_file();
  std::unique_ptr<Model> model;
  LoadOptions o;
  o.threads = 0;
  EXPECT_EQ(Model::load(f.bytes.data(), f.bytes.size(), o, &model).code, ErrorCode::kInvalidArgument);
  o.threads = 1;
  o.isa = "no-such-isa";
  EXPECT_EQ(Model::load(f.bytes.data(), f.bytes.size(), o, &model).code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace bitmamba
