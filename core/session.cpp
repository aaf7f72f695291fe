// A session: one context's state and scratch, and the forward pass of
// DESIGN.md §3 over a chunk of tokens (T = 1 for decode, more for prefill).
#include <cstring>

#include "core/model_impl.h"
#include "kernels/mathfn.h"

namespace bitmamba {

namespace {

// Prefill runs the BitLinear products over up to this many tokens at once.
constexpr int kMaxChunk = 64;

constexpr uint32_t kSnapshotMagic = 0x534d4232;  // "2BMS"
constexpr uint32_t kSnapshotVersion = 1;

}  // namespace

struct Session::Buffers {
  // Recurrent state, per layer.
  std::vector<float> conv;  // [layers, 3, E]
  std::vector<float> ssm;   // [layers, E]
  std::vector<uint64_t> seen;  // [ceil(vocab / 64)] bitset of fed tokens
  std::vector<float> logits;   // [vocab]
  // Scratch for one chunk of up to kMaxChunk tokens.
  std::vector<float> x;        // [T, d_model] residual stream
  std::vector<float> v;        // [T, 2E + 3H] in_proj output
  std::vector<float> y;        // [T, E]
  std::vector<float> o;        // [T, max(d_model, ...)] out_proj output
  std::vector<int8_t> q;       // [T, max_padded_cols]
  std::vector<float> qscale;   // [T]
  std::vector<int32_t> qsum;   // [T]
  std::vector<float> head;     // [4, H]: B, C, d, g of the current token
};

Session::Session(const Model& model) : model_(model), buf_(new Buffers) {
  const ModelInfo& info = model.info();
  const Model::Impl& m = *model.impl_;
  const size_t E = static_cast<size_t>(info.d_inner), L = static_cast<size_t>(info.n_layers);
  const size_t vdim = 2 * E + 3 * static_cast<size_t>(info.n_heads);
  Buffers& b = *buf_;
  b.conv.assign(L * 3 * E, 0.0f);
  b.ssm.assign(L * E, 0.0f);
  b.seen.assign((static_cast<size_t>(info.vocab_size) + 63) / 64, 0);
  b.logits.assign(static_cast<size_t>(info.vocab_size), 0.0f);
  b.x.resize(kMaxChunk * static_cast<size_t>(info.d_model));
  b.v.resize(kMaxChunk * vdim);
  b.y.resize(kMaxChunk * E);
  b.o.resize(kMaxChunk * static_cast<size_t>(info.d_model));
  b.q.resize(kMaxChunk * static_cast<size_t>(m.max_padded_cols));
  b.qscale.resize(kMaxChunk);
  b.qsum.resize(kMaxChunk);
  b.head.resize(4 * static_cast<size_t>(info.n_heads));
}

Session::~Session() = default;

void Session::reset() {
  Buffers& b = *buf_;
  std::fill(b.conv.begin(), b.conv.end(), 0.0f);
  std::fill(b.ssm.begin(), b.ssm.end(), 0.0f);
  std::fill(b.seen.begin(), b.seen.end(), 0);
  position_ = 0;
  has_logits_ = false;
}

const float* Session::logits() const { return has_logits_ ? buf_->logits.data() : nullptr; }

bool Session::seen(int32_t token) const {
  if (token < 0 || token >= model_.info().vocab_size) return false;
  return (buf_->seen[static_cast<size_t>(token) / 64] >> (token % 64)) & 1;
}

const uint64_t* Session::seen_bits() const { return buf_->seen.data(); }

namespace {

// out = BitLinear(in; W) for T tokens: quantise each row of `in`, then one
// threaded ternary product over W's rows.
void bitlinear(const Model::Impl& m, const TernaryWeights& w, const float* norm, const float* in, size_t in_stride,
               int T, int8_t* q, float* qscale, int32_t* qsum, float* out, size_t out_stride) {
  const kernels::Table& k = *m.kernels;
  for (int t = 0; t < T; ++t)
    k.rmsnorm_quantize(in + t * in_stride, norm, w.cols, w.padded_cols, q + static_cast<size_t>(t) * w.padded_cols,
                       &qscale[t], &qsum[t]);
  const kernels::QuantizedActs acts{q, qscale, qsum, T, w.padded_cols};
  const kernels::TernaryMatmulFn matmul = T == 1 ? k.ternary_gemv : k.ternary_gemm;
  m.pool->parallel_for(w.rows, 16, [&](int begin, int end) {
    matmul(w.packed, w.padded_cols, w.scale, acts, begin, end, out, out_stride);
  });
}

}  // namespace

Status Session::feed(const int32_t* tokens, size_t n) {
  const ModelInfo& info = model_.info();
  if (n == 0) return Status::Ok();
  if (tokens == nullptr) return make_error(ErrorCode::kInvalidArgument, "tokens are null");
  for (size_t i = 0; i < n; ++i) {
    if (tokens[i] < 0 || tokens[i] >= info.vocab_size)
      return make_error(ErrorCode::kInvalidArgument,
                        "token id " + std::to_string(tokens[i]) + " at position " + std::to_string(i) +
                            " is outside the vocabulary 0.." + std::to_string(info.vocab_size - 1));
  }
  const Model::Impl& m = *model_.impl_;
  const kernels::Table& k = *m.kernels;
  Buffers& b = *buf_;
  const int D = info.d_model, E = info.d_inner, H = info.n_heads;
  const size_t vdim = 2 * static_cast<size_t>(E) + 3 * static_cast<size_t>(H);
  float* head_B = b.head.data();
  float* head_C = head_B + H;
  float* head_d = head_C + H;
  float* head_g = head_d + H;

  for (size_t done = 0; done < n;) {
    const int T = static_cast<int>(n - done < kMaxChunk ? n - done : kMaxChunk);
    const int32_t* chunk = tokens + done;
    for (int t = 0; t < T; ++t) {
      std::memcpy(&b.x[static_cast<size_t>(t) * D], m.embed + static_cast<size_t>(chunk[t]) * D, D * sizeof(float));
      b.seen[static_cast<size_t>(chunk[t]) / 64] |= uint64_t{1} << (chunk[t] % 64);
    }
    for (int l = 0; l < info.n_layers; ++l) {
      const LayerWeights& L = m.layers[static_cast<size_t>(l)];
      bitlinear(m, L.in_proj, L.in_norm, b.x.data(), D, T, b.q.data(), b.qscale.data(), b.qsum.data(), b.v.data(),
                vdim);
      // The recurrences are sequential over the chunk's tokens.
      for (int t = 0; t < T; ++t) {
        const float* v = &b.v[t * vdim];
        for (int h = 0; h < H; ++h) {
          head_B[h] = v[2 * E + h];
          head_C[h] = v[2 * E + H + h];
          const float d = softplus_f32(v[2 * E + 2 * H + h] + L.dt_bias[h]);
          head_d[h] = d;
          head_g[h] = exp_f32(L.neg_A[static_cast<size_t>(h)] * d);
        }
        kernels::ConvSsmArgs args;
        args.channels = E;
        args.head_dim = info.head_dim;
        args.z = v;
        args.xin = v + E;
        args.conv_w = L.conv_w.data();
        args.conv_b = L.conv_b;
        args.D = L.D;
        args.head_B = head_B;
        args.head_C = head_C;
        args.head_d = head_d;
        args.head_g = head_g;
        args.conv_state = &b.conv[static_cast<size_t>(l) * 3 * E];
        args.ssm_state = &b.ssm[static_cast<size_t>(l) * E];
        args.y = &b.y[static_cast<size_t>(t) * E];
        k.conv_ssm_step(args);
      }
      bitlinear(m, L.out_proj, L.out_norm, b.y.data(), E, T, b.q.data(), b.qscale.data(), b.qsum.data(), b.o.data(),
                D);
      for (size_t i = 0; i < static_cast<size_t>(T) * D; ++i) b.x[i] += b.o[i];
    }
    done += static_cast<size_t>(T);
    if (done == n) {
      // Logits only for the last token: x -> RMSNorm(norm_f) -> BitLinear(lm_head).
      float* last = &b.x[static_cast<size_t>(T - 1) * D];
      float* normed = b.o.data();
      k.rmsnorm(last, m.norm_f, D, normed);
      bitlinear(m, m.lm_head, m.lm_norm, normed, D, 1, b.q.data(), b.qscale.data(), b.qsum.data(), b.logits.data(),
                0);
    }
  }
  position_ += n;
  has_logits_ = true;
  return Status::Ok();
}

// Snapshot: u32 magic, u32 version, i32 vocab, d_model, n_layers, n_heads,
// u64 position, u32 has_logits, then conv, ssm, seen bitset and logits as
// raw little-endian arrays. Constant size for a model.
size_t Session::snapshot_size() const {
  const Buffers& b = *buf_;
  const size_t header = 2 * 4 + 4 * 4 + 8 + 4;  // magic, version, shape, position, has_logits
  return header + (b.conv.size() + b.ssm.size() + b.logits.size()) * 4 + b.seen.size() * 8;
}

namespace {

template <class T>
void put(std::vector<uint8_t>& out, const T* data, size_t count) {
  const uint8_t* p = reinterpret_cast<const uint8_t*>(data);
  out.insert(out.end(), p, p + count * sizeof(T));
}

template <class T>
void get(const uint8_t*& p, T* data, size_t count) {
  std::memcpy(data, p, count * sizeof(T));
  p += count * sizeof(T);
}

}  // namespace

std::vector<uint8_t> Session::snapshot() const {
  const Buffers& b = *buf_;
  const ModelInfo& info = model_.info();
  std::vector<uint8_t> out;
  out.reserve(snapshot_size());
  const uint32_t head[2] = {kSnapshotMagic, kSnapshotVersion};
  const int32_t shape[4] = {info.vocab_size, info.d_model, info.n_layers, info.n_heads};
  const uint32_t has_logits = has_logits_ ? 1 : 0;
  put(out, head, 2);
  put(out, shape, 4);
  put(out, &position_, 1);
  put(out, &has_logits, 1);
  put(out, b.conv.data(), b.conv.size());
  put(out, b.ssm.data(), b.ssm.size());
  put(out, b.seen.data(), b.seen.size());
  put(out, b.logits.data(), b.logits.size());
  return out;
}

Status Session::restore(const uint8_t* data, size_t size) {
  if (data == nullptr || size != snapshot_size())
    return make_error(ErrorCode::kBadState, "snapshot has " + std::to_string(size) + " bytes, this model's have " +
                                                std::to_string(snapshot_size()));
  const ModelInfo& info = model_.info();
  const uint8_t* p = data;
  uint32_t head[2];
  int32_t shape[4];
  get(p, head, 2);
  get(p, shape, 4);
  if (head[0] != kSnapshotMagic || head[1] != kSnapshotVersion)
    return make_error(ErrorCode::kBadState, "not a session snapshot (bad magic or version)");
  if (shape[0] != info.vocab_size || shape[1] != info.d_model || shape[2] != info.n_layers || shape[3] != info.n_heads)
    return make_error(ErrorCode::kBadState, "snapshot was taken with a model of another shape");
  uint64_t position;
  uint32_t has_logits;
  get(p, &position, 1);
  get(p, &has_logits, 1);
  Buffers& b = *buf_;
  get(p, b.conv.data(), b.conv.size());
  get(p, b.ssm.data(), b.ssm.size());
  get(p, b.seen.data(), b.seen.size());
  get(p, b.logits.data(), b.logits.size());
  position_ = position;
  has_logits_ = has_logits != 0;
  return Status::Ok();
}

}  // namespace bitmamba
