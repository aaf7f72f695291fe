// `convert IN OUT --embed f32|f16|q8`: rewrites a model's embedding table
// (docs/convert.md, "Compact files"). Everything after the embedding is
// copied byte for byte; IN is validated in full first and OUT appears only
// when complete.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/mapped_file.h"
#include "core/embed.h"
#include "core/model_file.h"

namespace bitmamba::cli {

namespace {

struct FileCloser {
  void operator()(std::FILE* f) const {
    if (f) std::fclose(f);
  }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

bool put(std::FILE* f, const void* p, size_t n) { return std::fwrite(p, 1, n, f) == n; }
bool put_i32(std::FILE* f, int32_t v) { return put(f, &v, 4); }

bool parse_embed_type(const std::string& name, EmbedType* type) {
  if (name == "f32") *type = EmbedType::kFloat32;
  else if (name == "f16") *type = EmbedType::kFloat16;
  else if (name == "q8") *type = EmbedType::kInt8Rows;
  else return false;
  return true;
}

// Writes the embedding of `in` in `type`, decoding each row from whatever
// form it has. Errors are messages for the user.
Status write_embedding(std::FILE* out, const uint8_t* in, const ModelFile& m, EmbedType type) {
  const EmbedTable table = embed_table(in, m.embed, m.d_model);
  const int D = m.d_model;
  const Status io = make_error(ErrorCode::kIo, "write failed (disk full?)");
  if (!put_i32(out, static_cast<int32_t>(type)) || !put_i32(out, 2) || !put_i32(out, m.vocab_size) || !put_i32(out, D))
    return io;
  std::vector<float> row(static_cast<size_t>(D));
  if (type == EmbedType::kInt8Rows) {
    std::vector<float> scales(static_cast<size_t>(m.vocab_size));
    std::vector<int8_t> q(static_cast<size_t>(m.vocab_size) * static_cast<size_t>(D));
    for (int32_t r = 0; r < m.vocab_size; ++r) {
      embed_row(table, r, row.data());
      const size_t at = static_cast<size_t>(r);
      scales[at] = int8_row_scale(row.data(), D);
      encode_int8_row(row.data(), D, scales[at], &q[at * static_cast<size_t>(D)]);
    }
    return put(out, scales.data(), 4 * scales.size()) && put(out, q.data(), q.size()) ? Status::Ok() : io;
  }
  std::vector<uint16_t> halves(static_cast<size_t>(D));
  for (int32_t r = 0; r < m.vocab_size; ++r) {
    embed_row(table, r, row.data());
    if (type == EmbedType::kFloat32) {
      if (!put(out, row.data(), 4 * row.size())) return io;
      continue;
    }
    int bad = 0;
    if (!encode_half_row(row.data(), D, halves.data(), &bad))
      return make_error(ErrorCode::kBadModel, "embed row " + std::to_string(r) + " holds " +
                                                  std::to_string(row[static_cast<size_t>(bad)]) +
                                                  ", outside the half range (+-65504)");
    if (!put(out, halves.data(), 2 * halves.size())) return io;
  }
  return Status::Ok();
}

Status convert(MappedFile& in, const ModelFile& m, EmbedType type, const std::string& out_path) {
  const std::string tmp = out_path + ".partial";
  File out(std::fopen(tmp.c_str(), "wb"));
  if (!out) return make_error(ErrorCode::kIo, "cannot create '" + tmp + "': " + std::strerror(errno));
  Status st = Status::Ok();
  if (!put(out.get(), in.data(), m.embed.start)) st = make_error(ErrorCode::kIo, "write failed (disk full?)");
  if (st.ok()) st = write_embedding(out.get(), in.data(), m, type);
  if (st.ok() && !put(out.get(), in.data() + m.embed.end, in.size() - m.embed.end))
    st = make_error(ErrorCode::kIo, "write failed (disk full?)");
  if (std::fclose(out.release()) != 0 && st.ok()) st = make_error(ErrorCode::kIo, "write failed (disk full?)");
  if (st.ok() && std::rename(tmp.c_str(), out_path.c_str()) != 0)
    st = make_error(ErrorCode::kIo, "cannot rename '" + tmp + "' to '" + out_path + "': " + std::strerror(errno));
  if (!st.ok()) std::remove(tmp.c_str());
  return st;
}

const char* describe(EmbedType type) {
  switch (type) {
    case EmbedType::kFloat16: return "half (f16)";
    case EmbedType::kInt8Rows: return "int8 rows (q8)";
    case EmbedType::kFloat32: break;
  }
  return "float32 (f32)";
}

}  // namespace

int cmd_convert(int argc, char** argv) {
  Args args(argc, argv, {});
  args.reject_unknown({"embed"});
  if (!args.ok()) return fail(kExitUsage, "convert: " + args.error());
  EmbedType type = EmbedType::kFloat32;
  if (args.positionals().size() != 2 || !parse_embed_type(args.get("embed", ""), &type))
    return fail(kExitUsage, "convert: usage: convert IN.bin OUT.bin --embed f32|f16|q8");
  const std::string in_path = args.positionals()[0], out_path = args.positionals()[1];
  MappedFile in;
  Status st = in.open(in_path);
  if (!st.ok()) return fail(kExitError, "convert: " + st.message);
  ModelFile m;
  st = parse_model_file(in.data(), in.size(), &m);
  if (!st.ok()) return fail(kExitError, "convert: '" + in_path + "': " + st.message);
  st = convert(in, m, type, out_path);
  if (!st.ok()) return fail(kExitError, "convert: '" + out_path + "': " + st.message);
  std::fprintf(stderr, "convert: wrote %s, embedding %s -> %s\n", out_path.c_str(), describe(m.embed.type), describe(type));
  if (type != EmbedType::kFloat32)
    std::fprintf(stderr,
                 "convert: note: this engine reads the compact embedding; the reference BIT2 engines do not. "
                 "`convert OUT BACK.bin --embed f32` writes a standard BIT2 file holding exactly OUT's %s values "
                 "(the original float32 embedding is not recovered).\n",
                 type == EmbedType::kFloat16 ? "half" : "int8 * scale");
  return kExitOk;
}

}  // namespace bitmamba::cli
