// `make-model`: synthetic BIT2 files of the real shapes.
#include <chrono>
#include <cstdio>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/model_maker.h"

namespace bitmamba::cli {

int cmd_make_model(int argc, char** argv) {
  Args args(argc, argv, {});
  args.reject_unknown({"preset", "vocab", "d-model", "layers", "heads", "seed", "out"});
  ModelShape shape;
  if (args.has("preset") && !model_preset(args.get("preset", ""), &shape))
    return fail(kExitUsage, "make-model: unknown preset '" + args.get("preset", "") + "' (tiny, 255m, 1b)");
  shape.vocab = static_cast<int32_t>(args.get_int("vocab", shape.vocab, 1, 1 << 20));
  shape.d_model = static_cast<int32_t>(args.get_int("d-model", shape.d_model, 1, 1 << 14));
  shape.layers = static_cast<int32_t>(args.get_int("layers", shape.layers, 1, 1 << 10));
  shape.heads = static_cast<int32_t>(args.get_int("heads", shape.heads, 1, 1 << 14));
  const uint64_t seed = static_cast<uint64_t>(args.get_int("seed", 1, 0, INT64_MAX));
  if (!args.ok()) return fail(kExitUsage, "make-model: " + args.error());
  if (!args.positionals().empty()) return fail(kExitUsage, "make-model: unexpected argument " + args.positionals()[0]);
  if (!args.has("out")) return fail(kExitUsage, "make-model: --out FILE is required");
  if (shape.vocab == 0 || shape.d_model == 0 || shape.layers == 0 || shape.heads == 0)
    return fail(kExitUsage, "make-model: give --preset or all of --vocab --d-model --layers --heads");
  const auto start = std::chrono::steady_clock::now();
  Status st = make_model(shape, seed, args.get("out", ""));
  if (!st.ok()) return fail(st.code == ErrorCode::kInvalidArgument ? kExitUsage : kExitError, "make-model: " + st.message);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "wrote %s (vocab %d, d_model %d, %d layers, %d heads, seed %llu) in %.0f ms\n",
               args.get("out", "").c_str(), shape.vocab, shape.d_model, shape.layers, shape.heads,
               static_cast<unsigned long long>(seed), ms);
  return kExitOk;
}

}  // namespace bitmamba::cli
