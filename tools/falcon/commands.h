// The subcommands of `falcon`. Each returns the process exit status.
#pragma once

namespace falcon::cli {

int run_task_command(const char* task, int argc, char** argv);  // detect | segment | ocr
int inspect_command(int argc, char** argv);
int bench_command(int argc, char** argv);
int make_model_command(int argc, char** argv);
int serve_command(int argc, char** argv);

}  // namespace falcon::cli
