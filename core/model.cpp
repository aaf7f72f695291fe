// Model::load: validate the whole file, then build the in-memory model,
// repacking the ternary tensors in place.
#include <cstring>

#include "core/model_file.h"
#include "core/model_impl.h"
#include "kernels/mathfn.h"

namespace bitmamba {

namespace {

class Builder {
 public:
  Builder(uint8_t* data, Model::Impl* impl) : data_(data), impl_(impl) {}

  // The file's floats where they are 4-byte aligned (always, for real
  // shapes), else an aligned copy.
  const float* floats(const FloatTensorRef& t) {
    const uint8_t* p = data_ + t.offset;
    if (reinterpret_cast<uintptr_t>(p) % alignof(float) == 0) return reinterpret_cast<const float*>(p);
    impl_->owned_floats.emplace_back(t.count);
    std::memcpy(impl_->owned_floats.back().data(), p, t.count * sizeof(float));
    return impl_->owned_floats.back().data();
  }

  std::vector<float> copy_floats(const FloatTensorRef& t) {
    std::vector<float> v(t.count);
    std::memcpy(v.data(), data_ + t.offset, t.count * sizeof(float));
    return v;
  }

  // Repacks in place when the kernel layout has the file's size (cols a
  // multiple of 128: every real shape), else into a buffer of its own.
  TernaryWeights ternary(const TernaryTensorRef& t) {
    TernaryWeights w;
    w.rows = t.rows;
    w.cols = t.cols;
    w.padded_cols = kernels::ternary_padded_cols(t.cols);
    w.scale = t.scale;
    uint8_t* src = data_ + t.offset;
    scratch_.resize(kernels::ternary_row_bytes(t.cols));
    if (t.cols % kernels::kBlockCols == 0) {
      kernels::ternary_repack(src, t.rows, t.cols, src, scratch_.data());
      w.packed = src;
    } else {
      impl_->owned_bytes.emplace_back(static_cast<size_t>(t.rows) * kernels::ternary_row_bytes(t.cols));
      kernels::ternary_repack(src, t.rows, t.cols, impl_->owned_bytes.back().data(), scratch_.data());
      w.packed = impl_->owned_bytes.back().data();
    }
    if (w.padded_cols > impl_->max_padded_cols) impl_->max_padded_cols = w.padded_cols;
    return w;
  }

 private:
  uint8_t* data_;
  Model::Impl* impl_;
  std::vector<uint8_t> scratch_;
};

}  // namespace

Model::Model() : impl_(new Impl) {}
Model::~Model() = default;

const char* Model::isa() const { return impl_->kernels->isa; }
int Model::threads() const { return impl_->pool->size(); }

Status Model::load(uint8_t* bytes, size_t size, const LoadOptions& options, std::unique_ptr<Model>* out) {
  if (bytes == nullptr && size != 0) return make_error(ErrorCode::kInvalidArgument, "model bytes are null");
  if (options.threads < 1 || options.threads > 256)
    return make_error(ErrorCode::kInvalidArgument,
                      "threads = " + std::to_string(options.threads) + " is outside 1..256");
  const kernels::Table* table = kernels::table_by_name(options.isa);
  if (table == nullptr)
    return make_error(ErrorCode::kInvalidArgument,
                      std::string("kernel ISA '") + options.isa + "' is unknown or not supported here");

  ModelFile file;
  Status st = parse_model_file(bytes, size, &file);
  if (!st.ok()) return st;

  std::unique_ptr<Model> model(new Model);
  Impl& m = *model->impl_;
  m.kernels = table;
  ModelInfo& info = model->info_;
  info.vocab_size = file.vocab_size;
  info.d_model = file.d_model;
  info.n_layers = file.n_layers;
  info.n_heads = file.n_heads;
  info.d_inner = 2 * file.d_model;
  info.head_dim = info.d_inner / file.n_heads;
  info.file_bytes = size;

  Builder b(bytes, &m);
  const int E = info.d_inner;
  m.embed = embed_table(bytes, file.embed, file.d_model);
  m.layers.resize(file.layers.size());
  for (size_t l = 0; l < file.layers.size(); ++l) {
    const LayerRefs& r = file.layers[l];
    LayerWeights& L = m.layers[l];
    L.in_norm = b.floats(r.in_norm);
    L.in_proj = b.ternary(r.in_proj);
    const std::vector<float> conv = b.copy_floats(r.conv_w);  // [E, 1, 4]
    L.conv_w.resize(conv.size());
    const int P = info.head_dim;
    for (int c = 0; c < E; ++c)
      for (int k = 0; k < 4; ++k)
        L.conv_w[(static_cast<size_t>(c / P) * 4 + k) * P + c % P] = conv[static_cast<size_t>(c) * 4 + k];
    L.conv_b = b.floats(r.conv_b);
    L.dt_bias = b.floats(r.dt_bias);
    L.neg_A = b.copy_floats(r.A_log);
    for (float& a : L.neg_A) a = -exp_f32(a);
    L.D = b.floats(r.D);
    L.out_norm = b.floats(r.out_norm);
    L.out_proj = b.ternary(r.out_proj);
  }
  m.norm_f = b.floats(file.norm_f);
  m.lm_norm = b.floats(file.lm_norm);
  m.lm_head = b.ternary(file.lm_head);
  m.pool.reset(new ThreadPool(options.threads));
  *out = std::move(model);
  return Status::Ok();
}

}  // namespace bitmamba
