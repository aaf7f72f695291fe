// The compact embedding forms (EmbedType): half conversion, the parser's
// checks, and that a compact model computes exactly what a float32 model
// holding the decoded rows computes. The compact files are built here from
// a make-model file, not by `bitmamba convert`.
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/bitmamba.h"
#include "core/half.h"
#include "core/model_file.h"
#include "tests/unit/test_models.h"

namespace bitmamba {
namespace {

constexpr int kVocab = 64, kD = 16;

float f32_of(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

TEST(Half, EveryFiniteHalfRoundTrips) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0) continue;  // NaN payloads
    EXPECT_EQ(float_to_half(half_to_float(static_cast<uint16_t>(h))), h) << std::hex << h;
  }
  EXPECT_EQ(half_to_float(0x3c00), 1.0f);
  EXPECT_EQ(half_to_float(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(half_to_float(0xfbff), -65504.0f);
}

TEST(Half, RoundsToNearestEven) {
  EXPECT_EQ(float_to_half(1.0f + std::ldexp(1.0f, -11)), 0x3c00);      // tie -> even (1.0)
  EXPECT_EQ(float_to_half(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);  // tie -> even (up)
  EXPECT_EQ(float_to_half(f32_of(0x3f801001)), 0x3c01);                // just above a tie
  EXPECT_EQ(float_to_half(65519.0f), 0x7bff);
  EXPECT_EQ(float_to_half(65520.0f), 0x7c00);  // the tie above 65504 rounds to Inf
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -25)), 0x0000);       // subnormal tie -> even (0)
  EXPECT_EQ(float_to_half(3 * std::ldexp(1.0f, -26)), 0x0001);
  EXPECT_EQ(float_to_half(3 * std::ldexp(1.0f, -25)), 0x0002);   // subnormal tie -> even (2)
  EXPECT_EQ(float_to_half(-0.0f), 0x8000);
}

// A float32 model file and its embedding's bytes.
struct Source {
  std::vector<uint8_t> bytes;
  size_t embed_start = 20;  // the embedding is the first tensor
  size_t embed_values = 20 + 16;
  size_t embed_end = 20 + 16 + 4 * kVocab * kD;
  float value(int r, int c) const {
    float f;
    std::memcpy(&f, &bytes[embed_values + 4 * (static_cast<size_t>(r) * kD + c)], 4);
    return f;
  }
};

Source source() {
  Source s;
  s.bytes = testing::read_file(testing::model_path(kVocab, kD, 2, 2, 21));
  return s;
}

void append_i32(std::vector<uint8_t>* out, int32_t v) {
  const uint8_t* p = reinterpret_cast<const uint8_t*>(&v);
  out->insert(out->end(), p, p + 4);
}

// The source with its embedding replaced by `tensor` (type, ndim, dims, payload).
std::vector<uint8_t> with_embedding(const Source& s, const std::vector<uint8_t>& tensor) {
  std::vector<uint8_t> out(s.bytes.begin(), s.bytes.begin() + static_cast<long>(s.embed_start));
  out.insert(out.end(), tensor.begin(), tensor.end());
  out.insert(out.end(), s.bytes.begin() + static_cast<long>(s.embed_end), s.bytes.end());
  return out;
}

std::vector<uint8_t> head(EmbedType type) {
  std::vector<uint8_t> t;
  append_i32(&t, static_cast<int32_t>(type));
  append_i32(&t, 2);
  append_i32(&t, kVocab);
  append_i32(&t, kD);
  return t;
}

// Half embedding, and the float32 file holding exactly its decoded values.
void half_pair(const Source& s, std::vector<uint8_t>* compact, std::vector<uint8_t>* decoded) {
  std::vector<uint8_t> t = head(EmbedType::kFloat16), f = head(EmbedType::kFloat32);
  for (int r = 0; r < kVocab; ++r)
    for (int c = 0; c < kD; ++c) {
      const uint16_t h = float_to_half(s.value(r, c));
      const float back = half_to_float(h);
      t.insert(t.end(), reinterpret_cast<const uint8_t*>(&h), reinterpret_cast<const uint8_t*>(&h) + 2);
      f.insert(f.end(), reinterpret_cast<const uint8_t*>(&back), reinterpret_cast<const uint8_t*>(&back) + 4);
    }
  *compact = with_embedding(s, t);
  *decoded = with_embedding(s, f);
}

// Int8 rows (scale max|x| / 127), and the float32 file holding q * scale.
void int8_pair(const Source& s, std::vector<uint8_t>* compact, std::vector<uint8_t>* decoded) {
  std::vector<uint8_t> scales, q, f = head(EmbedType::kFloat32);
  for (int r = 0; r < kVocab; ++r) {
    float max_abs = 0;
    for (int c = 0; c < kD; ++c) max_abs = std::fmax(max_abs, std::fabs(s.value(r, c)));
    const float scale = max_abs / 127.0f;
    scales.insert(scales.end(), reinterpret_cast<const uint8_t*>(&scale), reinterpret_cast<const uint8_t*>(&scale) + 4);
    for (int c = 0; c < kD; ++c) {
      const int8_t v = static_cast<int8_t>(std::lround(s.value(r, c) / scale));
      const float back = static_cast<float>(v) * scale;
      q.push_back(static_cast<uint8_t>(v));
      f.insert(f.end(), reinterpret_cast<const uint8_t*>(&back), reinterpret_cast<const uint8_t*>(&back) + 4);
    }
  }
  std::vector<uint8_t> t = head(EmbedType::kInt8Rows);
  t.insert(t.end(), scales.begin(), scales.end());
  t.insert(t.end(), q.begin(), q.end());
  *compact = with_embedding(s, t);
  *decoded = with_embedding(s, f);
}

std::vector<float> logits_of(std::vector<uint8_t> bytes) {
  std::unique_ptr<Model> model;
  Status st = Model::load(bytes.data(), bytes.size(), LoadOptions{}, &model);
  EXPECT_TRUE(st.ok()) << st.message;
  if (!st.ok()) return {};
  Session session(*model);
  std::vector<float> all;
  for (int32_t t : {0, 63, 5, 5, 17}) {
    EXPECT_TRUE(session.feed(&t, 1).ok());
    all.insert(all.end(), session.logits(), session.logits() + kVocab);
  }
  return all;
}

TEST(CompactEmbed, HalfModelComputesItsDecodedRows) {
  std::vector<uint8_t> compact, decoded;
  half_pair(source(), &compact, &decoded);
  ModelFile m;
  ASSERT_TRUE(parse_model_file(compact.data(), compact.size(), &m).ok());
  EXPECT_EQ(m.embed.type, EmbedType::kFloat16);
  EXPECT_EQ(compact.size() + 2 * kVocab * kD, decoded.size());
  EXPECT_EQ(logits_of(compact), logits_of(decoded));
}

TEST(CompactEmbed, Int8ModelComputesItsDecodedRows) {
  std::vector<uint8_t> compact, decoded;
  int8_pair(source(), &compact, &decoded);
  ModelFile m;
  ASSERT_TRUE(parse_model_file(compact.data(), compact.size(), &m).ok());
  EXPECT_EQ(m.embed.type, EmbedType::kInt8Rows);
  EXPECT_EQ(m.embed.offset - m.embed.scales_offset, 4u * kVocab);
  EXPECT_EQ(logits_of(compact), logits_of(decoded));
}

void expect_error(const std::vector<uint8_t>& bytes, const std::vector<std::string>& parts) {
  ModelFile m;
  const Status st = parse_model_file(bytes.data(), bytes.size(), &m);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code, ErrorCode::kBadModel);
  for (const std::string& p : parts) EXPECT_NE(st.message.find(p), std::string::npos) << st.message << " lacks " << p;
}

TEST(CompactEmbed, UnknownTypeTag) {
  std::vector<uint8_t> bytes = source().bytes;
  const int32_t seven = 7;
  std::memcpy(&bytes[20], &seven, 4);
  expect_error(bytes, {"embed", "byte offset 20", "found type 7"});
}

TEST(CompactEmbed, NonFiniteHalf) {
  std::vector<uint8_t> compact, decoded;
  half_pair(source(), &compact, &decoded);
  const size_t at = 36 + 2 * (3 * kD + 4);
  compact[at] = 0x00;
  compact[at + 1] = 0x7e;  // a NaN half
  expect_error(compact, {"embed", "byte offset " + std::to_string(at), "NaN or infinite half"});
}

TEST(CompactEmbed, BadRowScales) {
  std::vector<uint8_t> compact, decoded;
  int8_pair(source(), &compact, &decoded);
  for (float bad : {-1.0f, NAN, INFINITY}) {
    std::vector<uint8_t> b = compact;
    std::memcpy(&b[36 + 4 * 9], &bad, 4);
    expect_error(b, {"embed", "byte offset " + std::to_string(36 + 4 * 9), "row scale"});
  }
}

TEST(CompactEmbed, Truncated) {
  std::vector<uint8_t> compact, decoded;
  int8_pair(source(), &compact, &decoded);
  compact.resize(36 + 4 * kVocab + 10);
  expect_error(compact, {"embed", "truncated"});
  half_pair(source(), &compact, &decoded);
  compact.resize(30);
  expect_error(compact, {"embed", "dims"});
}

TEST(CompactEmbed, OnlyTheEmbeddingMayBeCompact) {
  std::vector<uint8_t> bytes = source().bytes;
  const size_t norm = 20 + 16 + 4 * kVocab * kD;  // layers.0.in_proj.norm
  const int32_t half = static_cast<int32_t>(EmbedType::kFloat16);
  std::memcpy(&bytes[norm], &half, 4);
  expect_error(bytes, {"layers.0.in_proj.norm", "type 1"});
}

}  // namespace
}  // namespace bitmamba
