// falcon inspect: what a model directory holds.
#include <cstdio>

#include "args.h"
#include "commands.h"
#include "falcon/engine.h"

namespace falcon::cli {

int inspect_command(int argc, char** argv) {
  const Args args(argc, argv, 2, {"help"}, {"model", "device", "dtype"});
  if (args.has("help")) {
    std::printf("usage: falcon inspect --model DIR [--device cpu|cuda] [--dtype D]\n");
    return 0;
  }
  EngineOptions opts;
  opts.model_dir = args.required("model");
  opts.device = args.str("device", "cpu");
  opts.weight_dtype = args.str("dtype");
  const std::unique_ptr<Engine> engine = Engine::load(opts);
  const ModelInfo& i = engine->info();
  std::printf("model:        %s\n", i.model_dir.c_str());
  std::printf("variant:      %s\n", i.variant.c_str());
  std::printf("dims:         dim %d, layers %d, heads %d x %d, kv heads %d, ffn %d, vocab %d, max seq %d\n", i.dim,
              i.n_layers, i.n_heads, i.head_dim, i.n_kv_heads, i.ffn_dim, i.vocab_size, i.max_seq_len);
  std::printf("weights:      %s in the file\n", i.weights_dtype.c_str());
  std::printf("compute:      %s on %s\n", i.compute_dtype.c_str(), i.device.c_str());
  std::printf("parameters:   %lld (%.1f M)\n", (long long)i.parameters, double(i.parameters) / 1e6);
  std::printf("tasks:       ");
  for (const auto& t : i.supported_tasks) std::printf(" %s", t.c_str());
  std::printf("\n");
  return 0;
}

}  // namespace falcon::cli
