#include "core/model_file.h"

#include <cstdio>
#include <cstring>
#include <initializer_list>

namespace bitmamba {

namespace {

constexpr int32_t kTypeFloat = 0;
constexpr int32_t kTypeHalf = static_cast<int32_t>(EmbedType::kFloat16);
constexpr int32_t kTypeTernary = 2;
constexpr int32_t kTypeInt8Rows = static_cast<int32_t>(EmbedType::kInt8Rows);

// A cursor over [data, data + size) whose every read checks what is left.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  uint64_t offset() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }

  // Reads a little-endian int32 (every supported target is little-endian).
  bool read_i32(int32_t* v) {
    if (remaining() < 4) return false;
    std::memcpy(v, data_ + pos_, 4);
    pos_ += 4;
    return true;
  }
  bool peek_i32(int32_t* v) const {
    if (remaining() < 4) return false;
    std::memcpy(v, data_ + pos_, 4);
    return true;
  }
  bool read_f32(float* v) {
    if (remaining() < 4) return false;
    std::memcpy(v, data_ + pos_, 4);
    pos_ += 4;
    return true;
  }
  void skip(uint64_t n) { pos_ += n; }  // caller checked remaining()
  const uint8_t* at(uint64_t offset) const { return data_ + offset; }

 private:
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

Status error_at(const std::string& tensor, uint64_t offset, const std::string& what) {
  return make_error(ErrorCode::kBadModel,
                    "tensor '" + tensor + "' at byte offset " + std::to_string(offset) + ": " + what);
}

bool is_finite_bits(uint32_t bits) { return (bits & 0x7f800000u) != 0x7f800000u; }

// The scans below cover every byte of the file once (the embedding alone is
// 200 MB for the published models), so each looks at a whole chunk with a
// branch-free loop the compiler vectorises, and finds the exact offset only
// in a chunk that failed.
constexpr uint64_t kScanChunk = 4096;

// Whether some float among the n at p has an all-ones exponent (NaN or Inf):
// (bits & exponent) + one exponent unit reaches bit 31 only for those.
bool chunk_has_non_finite(const uint8_t* p, uint64_t n) {
  uint32_t acc = 0;
  for (uint64_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, p + 4 * i, 4);
    acc |= (bits & 0x7f800000u) + 0x00800000u;
  }
  return (acc & 0x80000000u) != 0;
}

// First non-finite float in [offset, offset + 4 * count), or UINT64_MAX.
uint64_t find_non_finite(const uint8_t* base, uint64_t offset, uint64_t count) {
  for (uint64_t start = 0; start < count; start += kScanChunk) {
    const uint64_t n = count - start < kScanChunk ? count - start : kScanChunk;
    const uint8_t* p = base + offset + 4 * start;
    if (!chunk_has_non_finite(p, n)) continue;
    for (uint64_t i = 0; i < n; ++i) {
      uint32_t bits;
      std::memcpy(&bits, p + 4 * i, 4);
      if (!is_finite_bits(bits)) return offset + 4 * (start + i);
    }
  }
  return UINT64_MAX;
}

// First half (binary16) with an all-ones exponent in [offset, offset + 2 * count),
// or UINT64_MAX. One row of the embedding is read per token, so no chunking.
uint64_t find_non_finite_half(const uint8_t* base, uint64_t offset, uint64_t count) {
  for (uint64_t i = 0; i < count; ++i) {
    uint16_t h;
    std::memcpy(&h, base + offset + 2 * i, 2);
    if ((h & 0x7c00u) == 0x7c00u) return offset + 2 * i;
  }
  return UINT64_MAX;
}

// Whether one of the 4 * n_words * 8 2-bit fields at p is 3 (both bits set).
bool chunk_has_code3(const uint8_t* p, uint64_t n_words) {
  uint64_t acc = 0;
  for (uint64_t i = 0; i < n_words; ++i) {
    uint64_t w;
    std::memcpy(&w, p + 8 * i, 8);
    acc |= w & (w >> 1);
  }
  return (acc & 0x5555555555555555ull) != 0;
}

// First byte holding code 3 among the first `codes` 2-bit fields, or UINT64_MAX.
uint64_t find_code3(const uint8_t* base, uint64_t offset, uint64_t codes) {
  const uint8_t* p = base + offset;
  const uint64_t full_bytes = codes / 4;
  uint64_t i = 0;
  for (; i + 8 * kScanChunk <= full_bytes; i += 8 * kScanChunk)
    if (chunk_has_code3(p + i, kScanChunk)) break;  // the byte loop below finds it
  for (; i < full_bytes; ++i) {
    const uint8_t b = p[i];
    if ((b & (b >> 1) & 0x55) != 0) return offset + i;
  }
  const uint64_t tail = codes % 4;
  if (tail != 0) {
    const uint8_t b = p[full_bytes];
    for (uint64_t f = 0; f < tail; ++f)
      if (((b >> (2 * f)) & 3) == 3) return offset + full_bytes;
  }
  return UINT64_MAX;
}

class Parser {
 public:
  Parser(const uint8_t* data, size_t size) : r_(data, size) {}

  Status header(ModelFile* m) {
    int32_t magic = 0;
    if (!r_.read_i32(&magic)) return error_at("header", 0, "file too short for the magic number");
    if (magic != kBit2Magic) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "bad magic 0x%08x (expected 0x%08x, \"BIT2\")", static_cast<unsigned>(magic),
                    static_cast<unsigned>(kBit2Magic));
      return error_at("header", 0, buf);
    }
    struct Field {
      const char* name;
      int32_t* value;
      int32_t max;
    } fields[] = {{"vocab_size", &m->vocab_size, kMaxVocab},
                  {"d_model", &m->d_model, kMaxDModel},
                  {"n_layers", &m->n_layers, kMaxLayers},
                  {"n_heads", &m->n_heads, kMaxDModel}};
    for (const Field& f : fields) {
      const uint64_t at = r_.offset();
      if (!r_.read_i32(f.value)) return error_at("header", at, std::string("file ends before ") + f.name);
      if (*f.value <= 0 || *f.value > f.max)
        return error_at("header", at,
                        std::string(f.name) + " = " + std::to_string(*f.value) + " is outside 1.." + std::to_string(f.max));
    }
    if ((2 * m->d_model) % m->n_heads != 0)
      return error_at("header", 16,
                      "d_inner = " + std::to_string(2 * m->d_model) + " is not divisible by n_heads = " +
                          std::to_string(m->n_heads));
    return Status::Ok();
  }

  Status float_tensor(const std::string& name, std::initializer_list<int32_t> shape, FloatTensorRef* out) {
    uint64_t count = 0;
    Status st = tensor_head(name, kTypeFloat, "a float tensor", shape, &count);
    if (!st.ok()) return st;
    const uint64_t data_at = r_.offset();
    if (!(st = take(name, count, 4, "data")).ok()) return st;
    const uint64_t bad = find_non_finite(r_.at(0), data_at, count);
    if (bad != UINT64_MAX) return error_at(name, bad, "NaN or infinite value");
    r_.skip(count * 4);
    out->offset = data_at;
    out->count = count;
    return Status::Ok();
  }

  // The embedding in any of its forms (EmbedType).
  Status embed_tensor(int32_t vocab, int32_t d_model, EmbedRef* out) {
    const std::string name = "embed";
    out->start = r_.offset();
    int32_t type = kTypeFloat;
    if (!r_.peek_i32(&type)) return error_at(name, out->start, "file ends inside the tensor header");
    if (type != kTypeFloat && type != kTypeHalf && type != kTypeInt8Rows)
      return error_at(name, out->start,
                      "expected a float tensor (type 0, or the compact 1 = half, 3 = int8 rows), found type " +
                          std::to_string(type));
    out->type = static_cast<EmbedType>(type);
    Status st;
    if (type == kTypeHalf || type == kTypeInt8Rows) {
      const char* what = type == kTypeHalf ? "a half tensor" : "an int8-rows tensor";
      uint64_t count = 0;
      if (!(st = tensor_head(name, type, what, {vocab, d_model}, &count)).ok()) return st;
      if (type == kTypeInt8Rows) {
        out->scales_offset = r_.offset();
        if (!(st = take(name, static_cast<uint64_t>(vocab), 4, "row scales")).ok()) return st;
        if (!(st = check_row_scales(name, out->scales_offset, static_cast<uint64_t>(vocab))).ok()) return st;
        r_.skip(static_cast<uint64_t>(vocab) * 4);
      }
      out->offset = r_.offset();
      const uint64_t width = type == kTypeHalf ? 2 : 1;
      if (!(st = take(name, count, width, "data")).ok()) return st;
      if (type == kTypeHalf) {
        const uint64_t bad = find_non_finite_half(r_.at(0), out->offset, count);
        if (bad != UINT64_MAX) return error_at(name, bad, "NaN or infinite half value");
      }
      r_.skip(count * width);
    } else {
      FloatTensorRef f;
      if (!(st = float_tensor(name, {vocab, d_model}, &f)).ok()) return st;
      out->offset = f.offset;
    }
    out->end = r_.offset();
    return Status::Ok();
  }

  Status ternary_tensor(const std::string& name, int32_t rows, int32_t cols, TernaryTensorRef* out) {
    const uint64_t start = r_.offset();
    int32_t type = 0, file_rows = 0, file_cols = 0;
    float scale = 0;
    if (!r_.read_i32(&type)) return error_at(name, start, "file ends inside the tensor header");
    if (type != kTypeTernary)
      return error_at(name, start, "expected a ternary tensor (type 2), found type " + std::to_string(type));
    if (!r_.read_i32(&file_rows) || !r_.read_i32(&file_cols) || !r_.read_f32(&scale))
      return error_at(name, start, "file ends inside the tensor header");
    if (file_rows != rows || file_cols != cols)
      return error_at(name, start + 4,
                      "shape [" + std::to_string(file_rows) + ", " + std::to_string(file_cols) + "], expected [" +
                          std::to_string(rows) + ", " + std::to_string(cols) + "] from the header");
    if (!(scale > 0.0f) || !is_finite_bits(bits_of(scale)))
      return error_at(name, start + 12, "scale " + std::to_string(scale) + " is not a positive finite number");
    const uint64_t data_at = r_.offset();
    const uint64_t bytes = ternary_disk_bytes(rows, cols);
    if (bytes > r_.remaining())
      return error_at(name, data_at,
                      "truncated: needs " + std::to_string(bytes) + " bytes of packed weights, " +
                          std::to_string(r_.remaining()) + " left in the file");
    const uint64_t bad = find_code3(r_.at(0), data_at, static_cast<uint64_t>(rows) * static_cast<uint64_t>(cols));
    if (bad != UINT64_MAX) return error_at(name, bad, "packed code 3 (only 0, 1, 2 encode -1, 0, +1)");
    r_.skip(bytes);
    out->offset = data_at;
    out->rows = rows;
    out->cols = cols;
    out->scale = scale;
    return Status::Ok();
  }

  // Reads a non-ternary tensor's type, ndim and dims, checking them against
  // `type` and `shape`; count gets the number of values.
  Status tensor_head(const std::string& name, int32_t expected_type, const char* what,
                     std::initializer_list<int32_t> shape, uint64_t* count) {
    const uint64_t start = r_.offset();
    int32_t type = 0, ndim = 0;
    if (!r_.read_i32(&type) || !r_.read_i32(&ndim)) return error_at(name, start, "file ends inside the tensor header");
    if (type != expected_type)
      return error_at(name, start,
                      "expected " + std::string(what) + " (type " + std::to_string(expected_type) + "), found type " +
                          std::to_string(type));
    if (ndim != static_cast<int32_t>(shape.size()))
      return error_at(name, start + 4,
                      "expected " + std::to_string(shape.size()) + " dims, found " + std::to_string(ndim));
    *count = 1;
    int index = 0;
    for (int32_t expected : shape) {
      const uint64_t at = r_.offset();
      int32_t dim = 0;
      if (!r_.read_i32(&dim)) return error_at(name, at, "file ends inside the dims");
      if (dim != expected)
        return error_at(name, at,
                        "dim " + std::to_string(index) + " is " + std::to_string(dim) + ", expected " +
                            std::to_string(expected) + " from the header");
      *count *= static_cast<uint64_t>(expected);  // each <= 2^20: no overflow for <= 3 dims
      ++index;
    }
    return Status::Ok();
  }

  // Whether count values of width bytes remain; the error names `what`.
  Status take(const std::string& name, uint64_t count, uint64_t width, const char* what) {
    if (count > r_.remaining() / width)
      return error_at(name, r_.offset(),
                      "truncated: needs " + std::to_string(count * width) + " bytes of " + what + ", " +
                          std::to_string(r_.remaining()) + " left in the file");
    return Status::Ok();
  }

  // Row scales of an int8 embedding: finite and >= 0 (0 for an all-zero row).
  Status check_row_scales(const std::string& name, uint64_t offset, uint64_t rows) {
    for (uint64_t i = 0; i < rows; ++i) {
      float s;
      std::memcpy(&s, r_.at(offset + 4 * i), 4);
      if (!(s >= 0.0f) || !is_finite_bits(bits_of(s)))
        return error_at(name, offset + 4 * i, "row scale " + std::to_string(s) + " is not a finite number >= 0");
    }
    return Status::Ok();
  }

  Status end() {
    if (r_.remaining() != 0)
      return error_at("end of file", r_.offset(), std::to_string(r_.remaining()) + " trailing bytes after lm_head");
    return Status::Ok();
  }

 private:
  static uint32_t bits_of(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
  }
  Reader r_;
};

}  // namespace

uint64_t ternary_disk_bytes(int32_t rows, int32_t cols) {
  return (static_cast<uint64_t>(rows) * static_cast<uint64_t>(cols) + 3) / 4;
}

Status parse_model_file(const uint8_t* data, size_t size, ModelFile* out) {
  ModelFile m;
  Parser p(data, size);
  Status st = p.header(&m);
  if (!st.ok()) return st;
  const int32_t V = m.vocab_size, D = m.d_model, E = 2 * m.d_model, H = m.n_heads;
  if (!(st = p.embed_tensor(V, D, &m.embed)).ok()) return st;
  m.layers.resize(static_cast<size_t>(m.n_layers));
  for (int32_t l = 0; l < m.n_layers; ++l) {
    LayerRefs& L = m.layers[static_cast<size_t>(l)];
    const std::string pre = "layers." + std::to_string(l) + ".";
    if (!(st = p.float_tensor(pre + "in_proj.norm", {D}, &L.in_norm)).ok()) return st;
    if (!(st = p.ternary_tensor(pre + "in_proj", 2 * E + 3 * H, D, &L.in_proj)).ok()) return st;
    if (!(st = p.float_tensor(pre + "conv1d.weight", {E, 1, 4}, &L.conv_w)).ok()) return st;
    if (!(st = p.float_tensor(pre + "conv1d.bias", {E}, &L.conv_b)).ok()) return st;
    if (!(st = p.float_tensor(pre + "dt_bias", {H}, &L.dt_bias)).ok()) return st;
    if (!(st = p.float_tensor(pre + "A_log", {H}, &L.A_log)).ok()) return st;
    if (!(st = p.float_tensor(pre + "D", {E}, &L.D)).ok()) return st;
    if (!(st = p.float_tensor(pre + "out_proj.norm", {E}, &L.out_norm)).ok()) return st;
    if (!(st = p.ternary_tensor(pre + "out_proj", D, E, &L.out_proj)).ok()) return st;
  }
  if (!(st = p.float_tensor("norm_f", {D}, &m.norm_f)).ok()) return st;
  if (!(st = p.float_tensor("lm_head.norm", {D}, &m.lm_norm)).ok()) return st;
  if (!(st = p.ternary_tensor("lm_head", V, D, &m.lm_head)).ok()) return st;
  if (!(st = p.end()).ok()) return st;
  *out = std::move(m);
  return Status::Ok();
}

}  // namespace bitmamba
