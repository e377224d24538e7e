// falcon: open-vocabulary detection, segmentation and OCR with Falcon Perception models.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "commands.h"
#include "falcon/error.h"

namespace {

void usage(FILE* out) {
  std::fputs(
      "usage: falcon <command> [options]\n"
      "\n"
      "commands:\n"
      "  detect      --model DIR --image FILE --query TEXT   boxes of what the query names\n"
      "  segment     --model DIR --image FILE --query TEXT   boxes and pixel masks\n"
      "  ocr         --model DIR --image FILE                the text in the image\n"
      "  inspect     --model DIR                             variant, dims, dtypes, parameters\n"
      "  bench       --model DIR [--image-size WxH] [--new-tokens N]   prefill and decode timings\n"
      "  make-model  --variant NAME --out DIR                a random-weight model of real dimensions\n"
      "  serve       --model DIR [--host H] [--port P]       the REST API and web page\n"
      "\n"
      "run options: --min-image-size N --max-image-size N --max-new-tokens N --temperature T\n"
      "  --top-k K --seed S --threads N --device cpu|cuda --dtype f32|bf16|f16|q8|q4\n"
      "  --json FILE (default stdout) --dump FILE.safetensors --force-tokens LIST\n"
      "  --overlay FILE.png --masks-dir DIR --no-dedup --quiet\n"
      "\n"
      "`falcon <command> --help` shows that command's options.\n",
      out);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string cmd = argv[1];
  try {
    if (cmd == "detect" || cmd == "segment" || cmd == "ocr") return falcon::cli::run_task_command(argv[1], argc, argv);
    if (cmd == "inspect") return falcon::cli::inspect_command(argc, argv);
    if (cmd == "bench") return falcon::cli::bench_command(argc, argv);
    if (cmd == "make-model") return falcon::cli::make_model_command(argc, argv);
    if (cmd == "serve") return falcon::cli::serve_command(argc, argv);
    std::fprintf(stderr, "falcon: unknown command '%s'\n\n", cmd.c_str());
    usage(stderr);
    return 2;
  } catch (const falcon::InvalidArgument& e) {
    std::fprintf(stderr, "falcon %s: %s\n", cmd.c_str(), e.what());
    return 2;
  } catch (const falcon::FileError& e) {
    std::fprintf(stderr, "falcon %s: %s\n", cmd.c_str(), e.what());
    return 3;
  } catch (const falcon::Unsupported& e) {
    std::fprintf(stderr, "falcon %s: %s\n", cmd.c_str(), e.what());
    return 4;
  } catch (const falcon::OutOfMemory& e) {
    std::fprintf(stderr, "falcon %s: %s\n", cmd.c_str(), e.what());
    return 5;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "falcon %s: error: %s\n", cmd.c_str(), e.what());
    return 1;
  }
}
