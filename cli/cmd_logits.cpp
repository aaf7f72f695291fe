// `logits`: the cross-checking primitive. Feeds tokens one at a time and
// writes the logits after each, float32 little-endian, one vocab row each.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/model_loader.h"

namespace bitmamba::cli {

int cmd_logits(int argc, char** argv) {
  Args args(argc, argv, {});
  args.reject_unknown({"tokens", "out", "threads", "isa"});
  const LoadFlags load_flags = parse_load_flags(args);
  if (!args.ok()) return fail(kExitUsage, "logits: " + args.error());
  if (args.positionals().size() != 1 || !args.has("tokens") || !args.has("out"))
    return fail(kExitUsage, "logits: usage: logits MODEL --tokens \"...\" --out FILE");
  std::vector<int32_t> ids;
  std::string error;
  if (!parse_token_list(args.get("tokens", ""), &ids, &error)) return fail(kExitUsage, "logits: " + error);
  if (ids.empty()) return fail(kExitUsage, "logits: no tokens");

  LoadedModel lm;
  Status st = load_model(args.positionals()[0], load_flags, &lm);
  if (!st.ok()) return fail(kExitError, st.message);
  const std::string out_path = args.get("out", "");
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> out(std::fopen(out_path.c_str(), "wb"), std::fclose);
  if (!out) return fail(kExitError, "cannot create '" + out_path + "': " + std::strerror(errno));
  Session session(*lm.model);
  const size_t vocab = static_cast<size_t>(lm.model->info().vocab_size);
  for (size_t i = 0; i < ids.size(); ++i) {
    st = session.feed(&ids[i], 1);
    if (!st.ok()) return fail(kExitError, st.message);
    if (std::fwrite(session.logits(), sizeof(float), vocab, out.get()) != vocab)
      return fail(kExitError, "cannot write '" + out_path + "'");
  }
  if (std::fclose(out.release()) != 0) return fail(kExitError, "cannot write '" + out_path + "'");
  return kExitOk;
}

}  // namespace bitmamba::cli
