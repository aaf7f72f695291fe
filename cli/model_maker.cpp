#include "cli/model_maker.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "core/model_file.h"
#include "core/rng.h"

namespace bitmamba::cli {

namespace {

// ~N(0,1) from one 64-bit draw: the sum of four 16-bit uniforms, centred and
// scaled to unit variance (Irwin-Hall). Cheap, and exact integer arithmetic
// up to the final float operations, so the bytes are the same everywhere.
float normal(SplitMix64& rng) {
  const uint64_t r = rng.next();
  float sum = 0.0f;
  for (int i = 0; i < 4; ++i) sum += (static_cast<float>((r >> (16 * i)) & 0xffff) + 0.5f) * (1.0f / 65536.0f);
  return (sum - 2.0f) * 1.7320508f;
}

float uniform(SplitMix64& rng, float lo, float hi) { return lo + (hi - lo) * rng.uniform(); }

class Writer {
 public:
  bool open(const std::string& path) {
    file_.reset(std::fopen(path.c_str(), "wb"));
    return file_ != nullptr;
  }
  void i32(int32_t v) { bytes(&v, 4); }
  void f32(float v) { bytes(&v, 4); }
  void bytes(const void* p, size_t n) {
    if (ok_ && std::fwrite(p, 1, n, file_.get()) != n) ok_ = false;
  }
  void floats(const std::vector<int32_t>& dims, const std::vector<float>& data) {
    i32(0);
    i32(static_cast<int32_t>(dims.size()));
    for (int32_t d : dims) i32(d);
    bytes(data.data(), data.size() * 4);
  }
  bool close() {
    const bool flushed = std::fclose(file_.release()) == 0;
    return ok_ && flushed;
  }

 private:
  struct Closer {
    void operator()(std::FILE* f) const {
      if (f) std::fclose(f);
    }
  };
  std::unique_ptr<std::FILE, Closer> file_;
  bool ok_ = true;
};

std::vector<float> constant(size_t n, float v) { return std::vector<float>(n, v); }

std::vector<float> normals(SplitMix64& rng, size_t n, float stddev) {
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng) * stddev;
  return v;
}

// A ternary tensor as round(w / mean|w|) clamped to [-1, 1] for w ~ N(0, 1/cols):
// zero where |w| < mean|w| / 2, i.e. with probability 2*Phi(0.3989) - 1 = 0.3101.
void ternary(Writer& w, SplitMix64& rng, int32_t rows, int32_t cols) {
  const double mean_abs = std::sqrt(2.0 / M_PI) / std::sqrt(static_cast<double>(cols));
  w.i32(2);
  w.i32(rows);
  w.i32(cols);
  w.f32(static_cast<float>(1.0 / mean_abs));
  constexpr uint32_t kZeroBelow = 20323;  // 0.3101 * 65536
  const uint64_t codes = static_cast<uint64_t>(rows) * static_cast<uint64_t>(cols);
  std::vector<uint8_t> packed(ternary_disk_bytes(rows, cols), 0);
  for (uint64_t i = 0; i < codes; i += 4) {
    const uint64_t r = rng.next();
    for (uint64_t k = 0; k < 4 && i + k < codes; ++k) {
      const uint32_t u = static_cast<uint32_t>(r >> (16 * k)) & 0xffff;
      const uint8_t code = u < kZeroBelow ? 1 : (u & 1 ? 2 : 0);
      packed[(i + k) / 4] |= static_cast<uint8_t>(code << (2 * ((i + k) % 4)));
    }
  }
  w.bytes(packed.data(), packed.size());
}

}  // namespace

bool model_preset(const std::string& name, ModelShape* shape) {
  if (name == "tiny") *shape = {50257, 128, 2, 4};
  else if (name == "255m") *shape = {50257, 1024, 24, 16};
  else if (name == "1b") *shape = {50257, 2048, 32, 32};
  else return false;
  return true;
}

Status make_model(const ModelShape& s, uint64_t seed, const std::string& path) {
  if (s.vocab <= 0 || s.vocab > kMaxVocab || s.d_model <= 0 || s.d_model > kMaxDModel || s.layers <= 0 ||
      s.layers > kMaxLayers || s.heads <= 0 || (2 * s.d_model) % s.heads != 0)
    return make_error(ErrorCode::kInvalidArgument,
                      "bad shape: need 1 <= vocab <= " + std::to_string(kMaxVocab) + ", 1 <= d_model <= " +
                          std::to_string(kMaxDModel) + ", layers >= 1, heads dividing 2 * d_model");
  Writer w;
  if (!w.open(path)) return make_error(ErrorCode::kIo, "cannot create '" + path + "': " + std::strerror(errno));
  SplitMix64 rng(seed);
  const int32_t D = s.d_model, E = 2 * s.d_model, H = s.heads;
  w.i32(kBit2Magic);
  w.i32(s.vocab);
  w.i32(D);
  w.i32(s.layers);
  w.i32(H);
  w.floats({s.vocab, D}, normals(rng, static_cast<size_t>(s.vocab) * D, 1.0f));
  for (int32_t l = 0; l < s.layers; ++l) {
    w.floats({D}, constant(D, 1.0f));
    ternary(w, rng, 2 * E + 3 * H, D);
    w.floats({E, 1, 4}, normals(rng, static_cast<size_t>(E) * 4, 0.5f));
    w.floats({E}, constant(E, 0.0f));
    std::vector<float> dt_bias(H), a_log(H);
    for (float& x : dt_bias) {
      const double y = uniform(rng, 0.001f, 0.1f);
      x = static_cast<float>(y + std::log(-std::expm1(-y)));  // softplus^-1(y) = log(e^y - 1)
    }
    for (float& x : a_log) x = std::log(uniform(rng, 1.0f, 16.0f));
    w.floats({H}, dt_bias);
    w.floats({H}, a_log);
    w.floats({E}, constant(E, 1.0f));
    w.floats({E}, constant(E, 1.0f));
    ternary(w, rng, D, E);
  }
  w.floats({D}, constant(D, 1.0f));
  w.floats({D}, constant(D, 1.0f));
  ternary(w, rng, s.vocab, D);
  if (!w.close()) return make_error(ErrorCode::kIo, "cannot write '" + path + "' (disk full?)");
  return Status::Ok();
}

}  // namespace bitmamba::cli
