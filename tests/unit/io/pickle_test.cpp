// The restricted unpickler against files torch.save wrote (tools/make_pickle_fixtures.py, Debian's
// python3-torch 1.13): every tensor's name, dtype, shape and values as torch.load read them back
// (tests/fixtures/pickles/expected.json), and hand-made pickles that try to run code.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/json.h"
#include "io/pickle.h"
#include "models/checkpoint.h"
#include "models/clip_model.h"

namespace comfy::io {
namespace {

namespace fs = std::filesystem;

fs::path fixture(const std::string& name) { return fs::path(COMFY_TEST_DATA) / "pickles" / name; }

json expected_for(const std::string& name) {
  std::ifstream in(fixture("expected.json"));
  json all = json::parse(in);
  return all.at(name);
}

std::string torch_dtype_name(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "float32";
    case at::kDouble: return "float64";
    case at::kHalf: return "float16";
    case at::kBFloat16: return "bfloat16";
    case at::kLong: return "int64";
    case at::kInt: return "int32";
    case at::kShort: return "int16";
    case at::kByte: return "uint8";
    case at::kBool: return "bool";
    default: return "other";
  }
}

void expect_matches_torch(const std::string& name, const std::string& format) {
  SCOPED_TRACE(name);
  PickleCheckpoint ck = load_pickle_checkpoint(fixture(name));
  EXPECT_EQ(ck.format, format);
  json want = expected_for(name);
  ASSERT_EQ(ck.tensors.size(), want.size());
  for (const auto& [key, t] : ck.tensors) {
    SCOPED_TRACE(key);
    ASSERT_TRUE(want.contains(key));
    const json& w = want.at(key);
    EXPECT_EQ(torch_dtype_name(t.scalar_type()), w.at("dtype").get<std::string>());
    EXPECT_EQ(t.sizes().vec(), w.at("shape").get<std::vector<int64_t>>());
    at::Tensor flat = t.to(at::kDouble).contiguous().reshape({-1});
    std::vector<double> values = w.at("values").get<std::vector<double>>();
    ASSERT_EQ(flat.numel(), static_cast<int64_t>(values.size()));
    for (int64_t i = 0; i < flat.numel(); ++i) EXPECT_EQ(flat[i].item<double>(), values[static_cast<size_t>(i)]) << i;
  }
}

TEST(Pickle, ZipStateDictMatchesTorchLoad) { expect_matches_torch("zip_state_dict.ckpt", "zip"); }
TEST(Pickle, LegacyStateDictMatchesTorchLoad) { expect_matches_torch("legacy_state_dict.ckpt", "legacy"); }
TEST(Pickle, ZipNestedDictsAndParameterMatchTorchLoad) { expect_matches_torch("zip_flat.pt", "zip"); }
TEST(Pickle, LegacyNestedDictsAndParameterMatchTorchLoad) { expect_matches_torch("legacy_flat.pt", "legacy"); }
TEST(Pickle, EmbeddingMatchesTorchLoad) { expect_matches_torch("embedding.pt", "zip"); }
// zip64 extra fields and end records, and storages at offsets not aligned to their dtype (copied).
TEST(Pickle, Zip64ArchiveWithUnalignedEntriesMatchesTorchLoad) { expect_matches_torch("zip64_state_dict.ckpt", "zip"); }

TEST(Pickle, StateDictUnwrappedAndPlainValuesKept) {
  PickleCheckpoint ck = load_pickle_checkpoint(fixture("zip_state_dict.ckpt"));
  EXPECT_EQ(ck.tensors.front().first, "model.diffusion_model.input_blocks.0.0.weight");  // file order
  EXPECT_EQ(ck.extra.value("global_step", -1), 7);
  PickleCheckpoint flat = load_pickle_checkpoint(fixture("zip_flat.pt"));
  EXPECT_EQ(flat.extra.value("name", ""), "not a tensor");
  EXPECT_EQ(flat.extra.value("count", 0), 3);
}

TEST(Pickle, ZipTensorsAreViewsOfOneMappedStorage) {
  PickleCheckpoint ck = load_pickle_checkpoint(fixture("zip_state_dict.ckpt"));
  std::map<std::string, at::Tensor> t(ck.tensors.begin(), ck.tensors.end());
  // row_view = base[2] and transposed = base.t() share base's storage: no copies.
  const auto* base = static_cast<const char*>(t["base"].data_ptr());
  EXPECT_EQ(static_cast<const char*>(t["row_view"].data_ptr()) - base, 2 * 6 * 4);
  EXPECT_EQ(t["transposed"].data_ptr(), t["base"].data_ptr());
  EXPECT_EQ(t["transposed"].strides().vec(), (std::vector<int64_t>{1, 6}));
  // ...and that storage is the file's bytes (torch.save aligns zip entries to 64 bytes).
  std::ifstream in(fixture("zip_state_dict.ckpt"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  std::string first(base, 24);
  EXPECT_NE(bytes.find(first), std::string::npos);
}

void expect_refused(const std::string& name, const std::string& global) {
  SCOPED_TRACE(name);
  try {
    load_pickle_checkpoint(fixture(name));
    FAIL() << "loaded a pickle that calls " << global;
  } catch (const ComfyError& e) {
    EXPECT_EQ(e.type(), "UnpicklingError");
    const std::string msg = e.what();
    EXPECT_NE(msg.find(fixture(name).string()), std::string::npos) << msg;
    EXPECT_NE(msg.find("'" + global + "'"), std::string::npos) << msg;
  }
}

TEST(Pickle, RefusesPosixSystem) {
  expect_refused("evil_posix_system.pkl", "posix.system");
  EXPECT_FALSE(fs::exists("/tmp/comfy_pwned_1"));
}
TEST(Pickle, RefusesBuiltinsEvalInZip) {
  expect_refused("evil_zip.pt", "builtins.eval");
  EXPECT_FALSE(fs::exists("/tmp/comfy_pwned_2"));
}
TEST(Pickle, RefusesOsSystemInLegacyMainPickle) {
  expect_refused("evil_nested.ckpt", "os.system");
  EXPECT_FALSE(fs::exists("/tmp/comfy_pwned_3"));
}

class PickleBadInput : public ::testing::Test {
 protected:
  fs::path dir;
  void SetUp() override {
    dir = fs::temp_directory_path() / ("comfy_pickle_" + std::to_string(getpid()));
    fs::create_directories(dir);
  }
  void TearDown() override { fs::remove_all(dir); }
  fs::path truncated(const std::string& name, std::size_t keep) {
    std::ifstream in(fixture(name), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    fs::path out = dir / ("cut_" + name);
    std::ofstream(out, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(std::min(keep, bytes.size())));
    return out;
  }
};

TEST_F(PickleBadInput, TruncatedFilesAreClearErrors) {
  for (const std::string name : {"zip_state_dict.ckpt", "legacy_state_dict.ckpt"}) {
    const std::size_t size = fs::file_size(fixture(name));
    for (std::size_t keep : {std::size_t{1}, std::size_t{40}, size / 2, size - 30, size - 1}) {
      fs::path f = truncated(name, keep);
      EXPECT_THROW(load_pickle_checkpoint(f), ComfyError) << name << " cut at " << keep;
    }
  }
}

// Bytes of a real file changed one at a time (every third byte): the reader loads it or throws a
// ComfyError, and never crashes, hangs or throws anything else.
TEST_F(PickleBadInput, EveryCorruptedByteIsLoadedOrAClearError) {
  for (const std::string name : {"zip_state_dict.ckpt", "legacy_state_dict.ckpt"}) {
    std::ifstream in(fixture(name), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), {});
    const fs::path f = dir / ("mut_" + name);
    size_t refused = 0;
    for (size_t i = 0; i < bytes.size(); i += 3) {  // a third of the bytes, to stay fast
      const unsigned char flip = i % 2 ? 0x01 : 0xFF;
      std::string mutated = bytes;
      mutated[i] = static_cast<char>(static_cast<unsigned char>(mutated[i]) ^ flip);
      std::ofstream(f, std::ios::binary | std::ios::trunc).write(mutated.data(), static_cast<std::streamsize>(mutated.size()));
      try {
        PickleCheckpoint ck = load_pickle_checkpoint(f);
        for (auto& [k, t] : ck.tensors) (void)t.sum().item<double>();  // touch every byte it claims
      } catch (const ComfyError&) {
        ++refused;
      } catch (const std::exception& e) {
        ADD_FAILURE() << name << " byte " << i << " ^ " << int(flip) << ": not a ComfyError: " << e.what();
      }
    }
    EXPECT_GT(refused, bytes.size() / 12) << name;  // many changes hit the structure
  }
}

TEST_F(PickleBadInput, NotACheckpointIsAClearError) {
  fs::path f = dir / "text.ckpt";
  std::ofstream(f) << "hello, I am not a model";
  try {
    load_pickle_checkpoint(f);
    FAIL();
  } catch (const ComfyError& e) {
    EXPECT_NE(std::string(e.what()).find("not a PyTorch checkpoint"), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_pickle_checkpoint(dir / "missing.ckpt"), ComfyError);
}

TEST(Pickle, LoadWeightFileReadsPickles) {
  auto set = load_weight_file(fixture("legacy_state_dict.ckpt"));
  ASSERT_TRUE(set->has("model.diffusion_model.input_blocks.0.0.weight"));
  EXPECT_EQ(set->raw("ids").sizes().vec(), std::vector<int64_t>{5});
  EXPECT_EQ(set->raw("ids")[1].item<int64_t>(), -1);
  EXPECT_THROW(load_weight_file(fixture("evil_nested.ckpt")), ComfyError);
}

// embedding:NAME finds NAME.pt and reads it as ComfyUI's load_embed does: string_to_param["*"].
TEST(Pickle, EmbeddingPtLoadsThroughTheEmbeddingLookup) {
  EmbeddingSource source;
  source.directories = {fixture("")};
  source.key = "clip_l";
  at::Tensor t = source.load("embedding");
  ASSERT_TRUE(t.defined());
  const json want = expected_for("embedding.pt").at("string_to_param.*");
  EXPECT_EQ(t.sizes().vec(), want.at("shape").get<std::vector<int64_t>>());
  at::Tensor flat = t.to(at::kDouble).reshape({-1});
  std::vector<double> values = want.at("values").get<std::vector<double>>();
  for (int64_t i = 0; i < flat.numel(); ++i) EXPECT_EQ(flat[i].item<double>(), values[static_cast<size_t>(i)]);
  EXPECT_FALSE(source.load("evil_nested.ckpt").defined());  // refused: a warning, no embedding
}

}  // namespace
}  // namespace comfy::io
