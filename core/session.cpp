// A session: one context's state and scratch, and the forward pass of
// docs/model.md over a chunk of tokens (T = 1 for decode, more for prefill).
#include <algorithm>
#include <cstdint>
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
  std::vector<float> conv;  // [layers, H, 3, P]: per head, the kernel's [3, channels] planes
  std::vector<float> ssm;   // [layers, E]
  std::vector<uint64_t> seen;  // [ceil(vocab / 64)] bitset of fed tokens
  std::vector<float> logits;   // [vocab]
  std::vector<float> rows;     // [T, vocab]: every token's logits, only for feed(..., each)
  // Scratch for one chunk of up to kMaxChunk tokens.
  std::vector<float> x;        // [T, d_model] residual stream
  std::vector<float> v;        // [T, 2E + 3H] in_proj output
  std::vector<float> y;        // [T, E]
  std::vector<float> o;        // [T, max(d_model, ...)] out_proj output
  std::vector<int8_t> q_bytes; // holds q, 64-byte aligned
  int8_t* q = nullptr;         // [T, max_padded_cols]: rows stay 64-byte aligned (padded_cols % 128 == 0),
                               // so the kernels' 32- and 64-byte loads never straddle cache lines
  std::vector<float> qscale;   // [T]
  std::vector<int32_t> qsum;   // [T]
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
  b.q_bytes.resize(kMaxChunk * static_cast<size_t>(m.max_padded_cols) + 63);
  b.q = b.q_bytes.data() + (64 - reinterpret_cast<uintptr_t>(b.q_bytes.data()) % 64) % 64;
  b.qscale.resize(kMaxChunk);
  b.qsum.resize(kMaxChunk);
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

// BitLinear's input side for T tokens (rows of `in`, in_stride apart): the
// tokens of a prefill chunk in parallel, a decode token on this thread.
void quantize_rows(const Model::Impl& m, const TernaryWeights& w, const float* norm, const float* in,
                   size_t in_stride, int T, int8_t* q, float* qscale, int32_t* qsum) {
  const kernels::Table& k = *m.kernels;
  const auto rows = [&](int begin, int end) {
    for (int t = begin; t < end; ++t)
      k.rmsnorm_quantize(in + t * in_stride, norm, w.cols, w.padded_cols, q + static_cast<size_t>(t) * w.padded_cols,
                         &qscale[t], &qsum[t]);
  };
  if (T == 1)
    rows(0, 1);
  else
    m.pool->parallel_for(T, 1, rows);
}

// Rows [begin, end) of BitLinear(W) for quantised activations.
inline void matmul_rows(const kernels::Table& k, const TernaryWeights& w, const kernels::QuantizedActs& acts,
                        int begin, int end, float* out, size_t out_stride) {
  if (begin >= end) return;
  const kernels::TernaryMatmulFn matmul = acts.tokens == 1 ? k.ternary_gemv : k.ternary_gemm;
  matmul(w.packed, w.padded_cols, w.scale, acts, begin, end, out, out_stride);
}

}  // namespace

Status Session::feed(const int32_t* tokens, size_t n) { return feed(tokens, n, nullptr); }

Status Session::feed(const int32_t* tokens, size_t n, const LogitsRowFn& each) {
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
  const int D = info.d_model, E = info.d_inner, H = info.n_heads, P = info.head_dim;
  const size_t vdim = 2 * static_cast<size_t>(E) + 3 * static_cast<size_t>(H);
  int8_t* q = b.q;
  float* qscale = b.qscale.data();
  int32_t* qsum = b.qsum.data();

  for (size_t done = 0; done < n;) {
    const int T = static_cast<int>(n - done < kMaxChunk ? n - done : kMaxChunk);
    const int32_t* chunk = tokens + done;
    for (int t = 0; t < T; ++t) {
      embed_row(m.embed, chunk[t], &b.x[static_cast<size_t>(t) * D]);
      b.seen[static_cast<size_t>(chunk[t]) / 64] |= uint64_t{1} << (chunk[t] % 64);
    }
    for (int l = 0; l < info.n_layers; ++l) {
      const LayerWeights& L = m.layers[static_cast<size_t>(l)];
      quantize_rows(m, L.in_proj, L.in_norm, b.x.data(), D, T, q, qscale, qsum);
      const kernels::QuantizedActs in_acts{q, qscale, qsum, T, L.in_proj.padded_cols};
      float* v = b.v.data();
      float* conv = &b.conv[static_cast<size_t>(l) * 3 * E];
      float* ssm = &b.ssm[static_cast<size_t>(l) * E];
      // Work is split by heads: a thread computes the in_proj rows its heads
      // read (z and xin of their channels; their B, C, dt) and then runs
      // their recurrences over the chunk's tokens, so the conv + SSM step
      // needs no second parallel call and no barrier after in_proj.
      m.pool->parallel_for(H, 1, [&](int h0, int h1) {
        matmul_rows(k, L.in_proj, in_acts, h0 * P, h1 * P, v, vdim);                  // z
        matmul_rows(k, L.in_proj, in_acts, E + h0 * P, E + h1 * P, v, vdim);          // xin
        matmul_rows(k, L.in_proj, in_acts, 2 * E + h0, 2 * E + h1, v, vdim);          // B
        matmul_rows(k, L.in_proj, in_acts, 2 * E + H + h0, 2 * E + H + h1, v, vdim);  // C
        matmul_rows(k, L.in_proj, in_acts, 2 * E + 2 * H + h0, 2 * E + 2 * H + h1, v, vdim);  // dt
        for (int t = 0; t < T; ++t) {  // sequential over the chunk's tokens
          const float* vt = v + t * vdim;
          for (int h = h0; h < h1; ++h) {
            const float d = softplus_f32(vt[2 * E + 2 * H + h] + L.dt_bias[h]);
            const float g = exp_f32(L.neg_A[static_cast<size_t>(h)] * d);
            kernels::ConvSsmArgs a;
            a.channels = P;
            a.head_dim = P;
            a.z = vt + h * P;
            a.xin = vt + E + h * P;
            a.conv_w = L.conv_w.data() + static_cast<size_t>(h) * 4 * P;
            a.conv_b = L.conv_b + h * P;
            a.D = L.D + h * P;
            a.head_B = vt + 2 * E + h;
            a.head_C = vt + 2 * E + H + h;
            a.head_d = &d;
            a.head_g = &g;
            a.conv_state = conv + static_cast<size_t>(h) * 3 * P;
            a.ssm_state = ssm + h * P;
            a.y = &b.y[static_cast<size_t>(t) * E + h * P];
            k.conv_ssm_step(a);
          }
        }
      });
      quantize_rows(m, L.out_proj, L.out_norm, b.y.data(), E, T, q, qscale, qsum);
      const kernels::QuantizedActs out_acts{q, qscale, qsum, T, L.out_proj.padded_cols};
      m.pool->parallel_for(D, 16, [&](int begin, int end) {
        matmul_rows(k, L.out_proj, out_acts, begin, end, b.o.data(), D);
      });
      for (size_t i = 0; i < static_cast<size_t>(T) * D; ++i) b.x[i] += b.o[i];
    }
    done += static_cast<size_t>(T);
    if (each) {
      logits_rows(T);
      const size_t vocab = static_cast<size_t>(info.vocab_size);
      for (int t = 0; t < T; ++t) each(done - static_cast<size_t>(T) + t, &b.rows[t * vocab]);
      if (done == n) std::copy_n(&b.rows[(T - 1) * vocab], vocab, b.logits.data());
    } else if (done == n) {
      logits_last(T);
    }
  }
  position_ += n;
  has_logits_ = true;
  return Status::Ok();
}

// x -> RMSNorm(norm_f) -> BitLinear(lm_head) for the chunk's last token, into logits.
void Session::logits_last(int T) {
  const Model::Impl& m = *model_.impl_;
  const kernels::Table& k = *m.kernels;
  Buffers& b = *buf_;
  const int D = model_.info().d_model;
  k.rmsnorm(&b.x[static_cast<size_t>(T - 1) * D], m.norm_f, D, b.o.data());
  quantize_rows(m, m.lm_head, m.lm_norm, b.o.data(), D, 1, b.q, b.qscale.data(), b.qsum.data());
  const kernels::QuantizedActs acts{b.q, b.qscale.data(), b.qsum.data(), 1, m.lm_head.padded_cols};
  m.pool->parallel_for(m.lm_head.rows, 16, [&](int begin, int end) {
    matmul_rows(k, m.lm_head, acts, begin, end, b.logits.data(), 0);
  });
}

// The same for all T tokens of the chunk, batched, into rows [T, vocab].
void Session::logits_rows(int T) {
  const Model::Impl& m = *model_.impl_;
  const kernels::Table& k = *m.kernels;
  Buffers& b = *buf_;
  const int D = model_.info().d_model;
  const size_t vocab = static_cast<size_t>(model_.info().vocab_size);
  b.rows.resize(kMaxChunk * vocab);  // allocated on first use only
  for (int t = 0; t < T; ++t) k.rmsnorm(&b.x[static_cast<size_t>(t) * D], m.norm_f, D, &b.o[static_cast<size_t>(t) * D]);
  quantize_rows(m, m.lm_head, m.lm_norm, b.o.data(), D, T, b.q, b.qscale.data(), b.qsum.data());
  const kernels::QuantizedActs acts{b.q, b.qscale.data(), b.qsum.data(), T, m.lm_head.padded_cols};
  m.pool->parallel_for(m.lm_head.rows, 16, [&](int begin, int end) {
    matmul_rows(k, m.lm_head, acts, begin, end, b.rows.data(), vocab);
  });
}

// Snapshot: u32 magic, u32 version, i32 vocab, d_model, n_layers, n_heads,
// u64 position, u32 has_logits, then conv ([layers, 3, E]: the plane order of
// version 1, whatever the in-memory order), ssm, seen bitset and logits as
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

// Conv state between the session's [layers, H, 3, P] and the snapshot's
// [layers, 3, E] (E = H * P): the offset of (layer, plane, channel) in each.
size_t conv_offset_heads(const ModelInfo& info, size_t l, size_t plane, size_t c) {
  const size_t P = static_cast<size_t>(info.head_dim), H = static_cast<size_t>(info.n_heads);
  return ((l * H + c / P) * 3 + plane) * P + c % P;
}

std::vector<float> conv_to_planes(const ModelInfo& info, const std::vector<float>& conv) {
  const size_t E = static_cast<size_t>(info.d_inner);
  std::vector<float> planes(conv.size());
  for (size_t l = 0; l < static_cast<size_t>(info.n_layers); ++l)
    for (size_t plane = 0; plane < 3; ++plane)
      for (size_t c = 0; c < E; ++c) planes[(l * 3 + plane) * E + c] = conv[conv_offset_heads(info, l, plane, c)];
  return planes;
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
  const std::vector<float> planes = conv_to_planes(info, b.conv);
  put(out, planes.data(), planes.size());
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
  if (has_logits > 1)
    return make_error(ErrorCode::kBadState, "snapshot's has_logits is " + std::to_string(has_logits) + ", not 0 or 1");
  Buffers& b = *buf_;
  std::vector<float> planes(b.conv.size());
  get(p, planes.data(), planes.size());
  const uint8_t* ssm = p;
  p += b.ssm.size() * sizeof(float);
  std::vector<uint64_t> seen(b.seen.size());
  get(p, seen.data(), seen.size());
  // The sampler reads the seen set as ids: none may lie past the vocabulary.
  const int spare = static_cast<int>(seen.size() * 64 - static_cast<size_t>(info.vocab_size));
  if (spare > 0 && seen.back() >> (64 - spare) != 0)
    return make_error(ErrorCode::kBadState, "snapshot's seen-token set holds ids outside the vocabulary");

  const size_t E = static_cast<size_t>(info.d_inner);
  for (size_t l = 0; l < static_cast<size_t>(info.n_layers); ++l)
    for (size_t plane = 0; plane < 3; ++plane)
      for (size_t c = 0; c < E; ++c) b.conv[conv_offset_heads(info, l, plane, c)] = planes[(l * 3 + plane) * E + c];
  get(ssm, b.ssm.data(), b.ssm.size());
  std::copy(seen.begin(), seen.end(), b.seen.begin());
  get(p, b.logits.data(), b.logits.size());
  position_ = position;
  has_logits_ = has_logits != 0;
  return Status::Ok();
}

}  // namespace bitmamba
