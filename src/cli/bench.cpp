// `comfycpp dev bench`: times the stages of `make bench` (bench/run.sh) on the inputs the
// harness wrote (DIR/inputs/*.npy, made by bench/reference/sd15_torch.py so that both sides run
// on identical tensors), writes each stage's output to DIR/comfycpp/<stage>.npy for the parity
// check, and prints one JSON object (the figures) as the last line of stdout.
//
// Stages:
//   unet512, unet256  one UNet call, batch 2 (= one CFG step), best of --repeat
//   clip              the CLIP-L text transformer on a fixed 77-token list (last layer, final LN)
//   vae               the VAE decode of a 64x64 latent (512x512 image), unclamped
//   txt2img           bench/workflows/sd15_txt2img.json run in this process through the
//                     executor (as `comfycpp run` does), with --steps (>= 2): checkpoint load to
//                     first step (loader node start -> end of step 1, minus step 2's time: the
//                     time of a step once everything is loaded), and peak RSS sampled every 20 ms
//                     (RssAnon / RssFile / RssShmem maxima, VmHWM). --cold drops the checkpoint's
//                     pages from the page cache first (posix_fadvise DONTNEED).
//   overhead          the engine's own cost per node: a chain of --chain StringConcatenate nodes
//                     between a PrimitiveString and a PreviewAny, validated and run uncached
//                     (the source string changes every run), minus the same graph without the
//                     chain, divided by --chain. Best of --repeat.
#include "cli/bench.h"

#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>

#include "cli/app.h"
#include "core/error.h"
#include "graph/executor.h"
#include "graph/validation.h"
#include "io/safetensors.h"
#include "models/weights.h"
#include "nn/clip_text.h"
#include "nn/unet.h"
#include "nn/vae.h"

namespace comfy {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// --- .npy (version 1.0, little-endian f4 / i8, C order): enough for the harness's files. ------
at::Tensor read_npy(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ComfyError("FileNotFoundError", "bench input " + path.string() + " is missing (bench/run.sh writes it)");
  char magic[8];
  in.read(magic, 8);
  if (!in || std::memcmp(magic, "\x93NUMPY", 6) != 0)
    throw ComfyError("ValueError", path.string() + " is not a .npy file");
  size_t header_len = 0;
  if (magic[6] == 1) {
    uint16_t n = 0;
    in.read(reinterpret_cast<char*>(&n), 2);
    header_len = n;
  } else {
    uint32_t n = 0;
    in.read(reinterpret_cast<char*>(&n), 4);
    header_len = n;
  }
  std::string header(header_len, '\0');
  in.read(header.data(), static_cast<std::streamsize>(header_len));
  at::ScalarType dtype;
  if (header.find("'<f4'") != std::string::npos) dtype = at::kFloat;
  else if (header.find("'<i8'") != std::string::npos) dtype = at::kLong;
  else throw ComfyError("ValueError", path.string() + ": only little-endian float32 and int64 .npy files are read");
  if (header.find("'fortran_order': True") != std::string::npos)
    throw ComfyError("ValueError", path.string() + ": Fortran-order arrays are not read");
  auto open = header.find('(', header.find("'shape'"));
  auto close = header.find(')', open);
  if (open == std::string::npos || close == std::string::npos)
    throw ComfyError("ValueError", path.string() + ": no shape in the .npy header");
  std::vector<int64_t> shape;
  std::stringstream dims(header.substr(open + 1, close - open - 1));
  for (std::string item; std::getline(dims, item, ',');)
    if (item.find_first_not_of(" ") != std::string::npos) shape.push_back(std::stoll(item));
  at::Tensor t = at::empty(shape, at::TensorOptions().dtype(dtype));
  in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes()));
  if (!in) throw ComfyError("ValueError", path.string() + ": the .npy file is shorter than its header says");
  return t;
}

void write_npy(const fs::path& path, const at::Tensor& tensor) {
  at::Tensor t = tensor.to(at::kFloat).contiguous();
  std::string shape;
  for (int64_t d : t.sizes()) shape += std::to_string(d) + ", ";
  if (t.dim() > 1) shape.resize(shape.size() - 1);  // "(2, 4)"; a 1-d shape keeps its comma
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + shape + "), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  const uint16_t n = static_cast<uint16_t>(header.size());
  out.write("\x93NUMPY\x01\x00", 8);
  out.write(reinterpret_cast<const char*>(&n), 2);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  out.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes()));
  if (!out) throw ComfyError("OSError", "could not write " + path.string());
}

// --- /proc/self/status sampling -------------------------------------------------------------
struct RssPeaks {
  double hwm = 0, anon = 0, file = 0, shmem = 0;  // MB
};

RssPeaks read_status() {
  RssPeaks r;
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    auto field = [&](const char* name, double& dst) {
      if (line.rfind(name, 0) == 0) dst = std::stod(line.substr(std::strlen(name))) / 1024.0;
    };
    field("VmHWM:", r.hwm);
    field("RssAnon:", r.anon);
    field("RssFile:", r.file);
    field("RssShmem:", r.shmem);
  }
  return r;
}

// Keeps the maxima of RssAnon/RssFile/RssShmem, read every 20 ms on its own thread.
class RssSampler {
 public:
  RssSampler() : thread_([this] {
      while (!stop_) {
        sample();
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }) {}
  ~RssSampler() { finish(); }
  RssPeaks finish() {
    if (thread_.joinable()) {
      stop_ = true;
      thread_.join();
    }
    sample();
    std::lock_guard<std::mutex> lock(mu_);
    return peaks_;
  }

 private:
  void sample() {
    RssPeaks now = read_status();
    std::lock_guard<std::mutex> lock(mu_);
    peaks_.hwm = std::max(peaks_.hwm, now.hwm);
    peaks_.anon = std::max(peaks_.anon, now.anon);
    peaks_.file = std::max(peaks_.file, now.file);
    peaks_.shmem = std::max(peaks_.shmem, now.shmem);
  }
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  RssPeaks peaks_;
  std::thread thread_;
};

// Bytes of `path` in the page cache (mincore over a mapping of it).
double resident_mb(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return -1;
  struct stat st {};
  fstat(fd, &st);
  double mb = -1;
  void* p = mmap(nullptr, st.st_size, PROT_READ, MAP_SHARED, fd, 0);
  if (p != MAP_FAILED) {
    const long page = sysconf(_SC_PAGESIZE);
    std::vector<unsigned char> vec((st.st_size + page - 1) / page);
    if (mincore(p, st.st_size, vec.data()) == 0) {
      size_t n = 0;
      for (unsigned char v : vec) n += v & 1;
      mb = static_cast<double>(n) * page / (1024.0 * 1024.0);
    }
    munmap(p, st.st_size);
  }
  ::close(fd);
  return mb;
}

void drop_from_page_cache(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw ComfyError("FileNotFoundError", "cannot open the checkpoint " + path.string());
  fdatasync(fd);
  posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

// --- the stages -----------------------------------------------------------------------------
struct BenchArgs {
  std::string checkpoint = "bench/.cache/models/checkpoints/bench_sd15.safetensors";
  std::string io = "bench/.cache/io";
  std::vector<std::string> stages{"unet512", "unet256", "clip", "vae"};
  int repeat = 1;
  std::string workflow = "bench/workflows/sd15_txt2img.json";
  int steps = 2;
  bool cold = false;
  int chain = 200;
  DirectoryArgs dirs;
};

double process_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Best of `repeat` wall times (and the CPU seconds of that run: on a shared machine the two
// together say how much of the wall time was waiting for a core).
template <class Fn>
json time_stage(const std::string& name, int repeat, const fs::path& out_dir, Fn fn) {
  double best = 1e30, best_cpu = 0;
  at::Tensor out;
  for (int r = 0; r < repeat; ++r) {
    auto t0 = Clock::now();
    const double c0 = process_cpu_s();
    out = fn();
    const double s = since(t0), cpu = process_cpu_s() - c0;
    if (s < best) best = s, best_cpu = cpu;
    std::fprintf(stderr, "  comfycpp %s run %d: %.3f s (%.3f s cpu)\n", name.c_str(), r + 1, s, cpu);
  }
  write_npy(out_dir / (name + ".npy"), out);
  return json{{"seconds", best}, {"cpu_seconds", best_cpu}};
}

// Timestamps of the executor's messages, for txt2img.
class TimingSink : public EventSink {
 public:
  void send(const std::string& type, const json& data, const std::string&) override {
    const double t = since(t0_);
    std::lock_guard<std::mutex> lock(mu_);
    if (type == "executing" && data.contains("node") && data["node"].is_string())
      node_start[data["node"].get<std::string>()] = t;
    else if (type == "progress" && data.value("node", "") == "3")  // the KSampler's steps
      progress.push_back({data["value"].get<double>(), t});
    else if (type == "execution_success" || type == "execution_error")
      end = t;
  }
  Clock::time_point t0_ = Clock::now();
  std::mutex mu_;
  std::map<std::string, double> node_start;
  std::vector<std::pair<double, double>> progress;  // (value, seconds)
  double end = -1;
};

json run_txt2img(const BenchArgs& a) {
  if (a.steps < 2) throw ComfyError("ValueError", "txt2img needs --steps 2 or more (step 2 times a loaded step)");
  json result;
  result["cold"] = a.cold;
  if (a.cold) drop_from_page_cache(a.checkpoint);
  result["checkpoint_cached_mb_before"] = resident_mb(a.checkpoint);
  std::ifstream in(a.workflow);
  if (!in) throw ComfyError("FileNotFoundError", "the bench workflow " + a.workflow + " is missing");
  json prompt = json::parse(in);
  prompt["3"]["inputs"]["steps"] = a.steps;
  RssSampler sampler;
  auto t_start = Clock::now();
  AppState app(a.dirs);
  ValidationResult v = validate_prompt(app.registry, app.services, prompt);
  if (!v.ok) throw ComfyError("ValueError", "the bench workflow does not validate: " + v.error.dump());
  TimingSink sink;
  Executor executor(app.registry, app.services, &sink);
  ExecutionResult r = executor.execute(prompt, "bench-txt2img", json{{"client_id", "bench"}}, v.outputs);
  const double total = since(t_start);
  RssPeaks peaks = sampler.finish();
  if (!r.success) throw ComfyError("RuntimeError", "the bench workflow failed: " + r.error.dump());
  auto at = [&](const char* node) {
    auto it = sink.node_start.find(node);
    if (it == sink.node_start.end()) throw ComfyError("RuntimeError", std::string("node ") + node + " never ran");
    return it->second;
  };
  // The first two progress ticks of the sampler (values 1 and 2).
  double step1 = -1, step2 = -1;
  for (auto& [value, t] : sink.progress) {
    if (value == 1 && step1 < 0) step1 = t;
    if (value == 2 && step2 < 0) step2 = t;
  }
  if (step1 < 0 || step2 < 0) throw ComfyError("RuntimeError", "the sampler sent no progress for steps 1 and 2");
  const double step = step2 - step1;
  result["load_to_first_step_s"] = step1 - at("4") - step;
  result["loader_node_s"] = std::min({at("5"), at("6"), at("7"), at("3")}) - at("4");
  result["sampler_start_to_step1_s"] = step1 - at("3");
  result["step_s"] = step;
  result["steps"] = a.steps;
  result["vae_decode_node_s"] = (sink.node_start.count("9") ? at("9") : sink.end) - at("8");
  result["total_s"] = total;
  result["peak_rss_mb"] = peaks.hwm;
  result["rss_anon_mb"] = peaks.anon;
  result["rss_file_mb"] = peaks.file;
  result["rss_shmem_mb"] = peaks.shmem;
  return result;
}

// One prompt: PrimitiveString -> n x StringConcatenate -> PreviewAny.
json chain_prompt(int n, const std::string& source) {
  json p;
  p["0"] = {{"class_type", "PrimitiveString"}, {"inputs", {{"value", source}}}};
  std::string prev = "0";
  for (int i = 1; i <= n; ++i) {
    std::string id = std::to_string(i);
    p[id] = {{"class_type", "StringConcatenate"},
             {"inputs", {{"string_a", json::array({prev, 0})}, {"string_b", "x"}, {"delimiter", ""}}}};
    prev = id;
  }
  p["out"] = {{"class_type", "PreviewAny"}, {"inputs", {{"source", json::array({prev, 0})}}}};
  return p;
}

json run_overhead(const BenchArgs& a) {
  AppState app(a.dirs);
  struct NullSink : EventSink {
    void send(const std::string&, const json&, const std::string&) override {}
  } sink;
  Executor executor(app.registry, app.services, &sink);
  int counter = 0;
  // Best of `repeat` (validate, execute) seconds for a chain of n, each run with a new source
  // string so that nothing is cached.
  auto measure = [&](int n) {
    double best_validate = 1e30, best_execute = 1e30;
    for (int r = 0; r < std::max(a.repeat, 3); ++r) {
      json prompt = chain_prompt(n, "s" + std::to_string(counter++));
      auto t0 = Clock::now();
      ValidationResult v = validate_prompt(app.registry, app.services, prompt);
      const double tv = since(t0);
      if (!v.ok) throw ComfyError("RuntimeError", "the overhead graph does not validate: " + v.error.dump());
      t0 = Clock::now();
      ExecutionResult res = executor.execute(prompt, "bench-overhead-" + std::to_string(counter), json{{"client_id", "bench"}},
                                             v.outputs);
      const double te = since(t0);
      if (!res.success) throw ComfyError("RuntimeError", "the overhead graph failed: " + res.error.dump());
      best_validate = std::min(best_validate, tv);
      best_execute = std::min(best_execute, te);
    }
    return std::make_pair(best_validate, best_execute);
  };
  measure(a.chain);  // warm-up: first-use costs (allocations, registry lookups) out of the figures
  auto base = measure(0);
  auto full = measure(a.chain);
  json r;
  r["chain"] = a.chain;
  r["per_node_validate_us"] = (full.first - base.first) / a.chain * 1e6;
  r["per_node_execute_us"] = (full.second - base.second) / a.chain * 1e6;
  r["per_node_us"] = ((full.first + full.second) - (base.first + base.second)) / a.chain * 1e6;
  r["prompt_fixed_ms"] = (base.first + base.second) * 1e3;
  return r;
}

void run_bench(const BenchArgs& a) {
  c10::InferenceMode guard;
  const fs::path io(a.io), in_dir = io / "inputs", out_dir = io / "comfycpp";
  fs::create_directories(out_dir);
  json result{{"threads", at::get_num_threads()}, {"stages", json::object()}};
  auto has = [&](const char* s) { return std::find(a.stages.begin(), a.stages.end(), s) != a.stages.end(); };
  for (const auto& s : a.stages)
    if (s != "unet512" && s != "unet256" && s != "clip" && s != "vae" && s != "txt2img" && s != "overhead")
      throw ComfyError("ValueError", "unknown bench stage '" + s + "' (unet512, unet256, clip, vae, txt2img, overhead)");
  const bool models = has("unet512") || has("unet256") || has("clip") || has("vae");
  std::shared_ptr<const WeightSet> set;
  if (models) set = WeightSet::from_file(SafetensorsFile::open(a.checkpoint));
  if (has("unet512") || has("unet256")) {
    Weights w(set, "model.diffusion_model.");
    const UNetConfig cfg = detect_unet_config(w);
    const at::Tensor ts = read_npy(in_dir / "timesteps.npy"), ctx = read_npy(in_dir / "context.npy");
    for (const char* name : {"unet512", "unet256"}) {
      if (!has(name)) continue;
      const at::Tensor x = read_npy(in_dir / (std::string(name) + "_x.npy"));
      result["stages"][name] =
          time_stage(name, a.repeat, out_dir, [&] { return unet_forward(cfg, w, x, ts, ctx, std::nullopt, nullptr); });
    }
  }
  if (has("clip")) {
    Weights w(set, "cond_stage_model.transformer.");
    const nn::ClipTextConfig cfg = nn::clip_text_config(w, nn::ClipActivation::QuickGelu);
    const at::Tensor tokens = read_npy(in_dir / "tokens.npy");
    result["stages"]["clip"] = time_stage("clip", a.repeat, out_dir, [&] {
      return nn::clip_text_encode_tokens(cfg, w, tokens, std::nullopt).last;
    });
  }
  if (has("vae")) {
    Weights w(set, "first_stage_model.");
    const nn::VaeConfig cfg = nn::vae_config_from_weights(w);
    const at::Tensor z = read_npy(in_dir / "vae_z.npy");
    result["stages"]["vae"] = time_stage("vae", a.repeat, out_dir, [&] { return nn::vae_decode(cfg, w, z); });
  }
  set.reset();
  if (has("txt2img")) result["stages"][a.cold ? "txt2img_cold" : "txt2img_warm"] = run_txt2img(a);
  if (has("overhead")) result["stages"]["overhead"] = run_overhead(a);
  std::cout << result.dump() << std::endl;
}

}  // namespace

void add_bench_command(CLI::App& dev, int* exit_code) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* cmd = dev.add_subcommand("bench", "Time the stages of `make bench` (bench/run.sh) and write their outputs.");
  cmd->add_option("--checkpoint", a->checkpoint, "the full-size checkpoint (bench/run.sh makes it)");
  cmd->add_option("--io", a->io, "the folder with inputs/*.npy; outputs go to its comfycpp/");
  cmd->add_option("--stages", a->stages, "unet512, unet256, clip, vae, txt2img, overhead")->delimiter(',');
  cmd->add_option("--repeat", a->repeat, "runs per stage (the best is reported)");
  cmd->add_option("--workflow", a->workflow, "the txt2img workflow (API JSON)");
  cmd->add_option("--steps", a->steps, "sampling steps of the txt2img run (2 or more)");
  cmd->add_flag("--cold", a->cold, "txt2img: drop the checkpoint from the page cache first");
  cmd->add_option("--chain", a->chain, "overhead: nodes in the chain");
  a->dirs.add_to(*cmd);
  cmd->callback([a, exit_code] {
    try {
      run_bench(*a);
      *exit_code = 0;
    } catch (const std::exception& e) {
      std::cerr << "bench: " << e.what() << "\n";
      *exit_code = 1;
    }
  });
}

}  // namespace comfy
