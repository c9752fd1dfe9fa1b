// `comfycpp dev bench`: the comfy.cpp side of `make bench` (bench/run.sh). See bench/README.md.
#pragma once
#include <CLI/CLI.hpp>

namespace comfy {

// Adds `bench` under the `dev` command; its result goes to *exit_code.
void add_bench_command(CLI::App& dev, int* exit_code);

}  // namespace comfy
