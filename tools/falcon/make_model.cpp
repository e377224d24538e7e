// falcon make-model: a random-weight model directory with a real variant's dimensions.
#include <cstdio>
#include <unistd.h>

#include "args.h"
#include "commands.h"
#include "falcon/error.h"
#include "model/random_model.h"

namespace falcon::cli {

int make_model_command(int argc, char** argv) {
  const Args args(argc, argv, 2, {"help", "quiet"},
                  {"variant", "out", "dtype", "tokenizer-from", "seed", "layers", "max-seq-len", "vocab-size"});
  if (args.has("help")) {
    std::printf(
        "usage: falcon make-model --variant perception|perception-300m|ocr --out DIR\n"
        "         --tokenizer-from DIR [--dtype f32|bf16|f16] [--seed N] [--layers N] [--max-seq-len N]\n"
        "         [--vocab-size N]   (fewer layers / a smaller vocabulary make small test models)\n"
        "Writes config.json, model.safetensors (random weights) and the tokenizer files.\n");
    return 0;
  }
  ModelConfig c = published_config(args.required("variant"));
  c.n_layers = args.integer("layers", c.n_layers);
  c.max_seq_len = args.integer("max-seq-len", c.max_seq_len);
  c.vocab_size = args.integer("vocab-size", c.vocab_size);
  if (c.vocab_size < 265) throw InvalidArgument("--vocab-size must hold the special tokens (>= 265)");
  if (c.n_layers < 1) throw InvalidArgument("--layers must be at least 1");
  const DType dtype = dtype_from_name(args.str("dtype", "f32"));
  const bool show = !args.has("quiet");
  write_random_model(c, dtype, args.required("tokenizer-from"), args.required("out"), args.u64("seed", 1),
                     [&](double f) {
                       if (show && isatty(STDERR_FILENO)) std::fprintf(stderr, "\rwriting weights %3d%%", int(f * 100));
                     });
  if (show) std::fprintf(stderr, "%swrote %s model to %s\n", isatty(STDERR_FILENO) ? "\n" : "",
                         variant_name(c.variant), args.required("out").c_str());
  return 0;
}

}  // namespace falcon::cli
