// The CLIP tokenizer and ComfyUI's prompt syntax: every case of the oracle's tokenizer fixture
// (ComfyUI 0.8.0's SD1Tokenizer.tokenize_with_weights, compared exactly), then the pieces.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/json.h"
#include "io/safetensors.h"
#include "text/clip_tokenizer.h"
#include "text/data_paths.h"
#include "text/embedding_files.h"
#include "text/prompt_weights.h"
#include "text/sd_tokenizer.h"

namespace fs = std::filesystem;
using namespace comfy;

namespace {

const fs::path kFixtures = fs::path(COMFY_TEST_DATA);

const json& tokenizer_cases() {
  static const json cases = [] {
    std::ifstream in(kFixtures / "tokenizer" / "tokenizer_cases.json");
    return json::parse(in);
  }();
  return cases;
}

std::shared_ptr<const ClipTokenizer> clip() { return ClipTokenizer::shared_default(); }

// The embedding lookup a CLIP loader would give: files in models/embeddings, sized by reading
// them (the number of rows of the first tensor, 1 for a 1-D one).
EmbeddingLookup fixture_embeddings() {
  return [](const std::string& name) -> std::optional<int64_t> {
    auto file = find_embedding_file({kFixtures / "models" / "embeddings"}, name);
    if (!file) return std::nullopt;
    auto st = SafetensorsFile::open(*file);
    const auto& shape = st->info(st->keys().front()).shape;
    return shape.size() == 1 ? 1 : shape.front();
  };
}

json rows_to_json(const TokenChunks& chunks) {
  json out = json::array();
  for (const auto& chunk : chunks) {
    json c = json::array();
    for (const auto& r : chunk) {
      json id = r.is_embedding() ? json{{"embedding", r.embedding}, {"row", r.embedding_row}} : json(r.token);
      c.push_back(json::array({id, r.weight, r.word_id}));
    }
    out.push_back(c);
  }
  return out;
}

class ClipTokenizerCase : public ::testing::TestWithParam<std::string> {};

std::vector<std::string> case_ids() {
  std::vector<std::string> ids;
  for (const auto& c : tokenizer_cases()["cases"]) ids.push_back(c["id"].get<std::string>());
  return ids;
}

}  // namespace

TEST_P(ClipTokenizerCase, MatchesComfyUI) {
  const json* the_case = nullptr;
  for (const auto& c : tokenizer_cases()["cases"])
    if (c["id"] == GetParam()) the_case = &c;
  ASSERT_NE(the_case, nullptr);
  SDTokenizer tok(clip(), {}, fixture_embeddings());
  const TokenChunks chunks = tok.tokenize_with_weights((*the_case)["text"].get<std::string>());
  ASSERT_EQ(chunks.size(), (*the_case)["num_chunks"].get<std::size_t>());
  const json got = rows_to_json(chunks);
  const json& want = (*the_case)["tokens"];
  for (std::size_t c = 0; c < chunks.size(); ++c) {
    ASSERT_EQ(chunks[c].size(), 77u);
    for (std::size_t i = 0; i < 77; ++i) {
      ASSERT_EQ(got[c][i], want[c][i]) << "chunk " << c << " row " << i;
      const json& piece = (*the_case)["pieces"][c][i];
      if (!chunks[c][i].is_embedding()) {
        EXPECT_EQ(clip()->piece(chunks[c][i].token), piece.get<std::string>());
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixture, ClipTokenizerCase, ::testing::ValuesIn(case_ids()),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

TEST(ClipTokenizer, FixtureHasAllCases) { EXPECT_EQ(tokenizer_cases()["cases"].size(), 29u); }

TEST(ClipTokenizer, VocabularyAndSpecialTokens) {
  EXPECT_EQ(clip()->vocab_size(), 49408);
  EXPECT_EQ(clip()->piece(ClipTokenizer::kStartToken), "<|startoftext|>");
  EXPECT_EQ(clip()->piece(ClipTokenizer::kEndToken), "<|endoftext|>");
  EXPECT_EQ(clip()->piece(320), "a</w>");
  EXPECT_THROW(clip()->piece(49408), ComfyError);
  EXPECT_EQ(clip()->encode("a photo of a cat"), (std::vector<int>{320, 1125, 539, 320, 2368}));
  EXPECT_EQ(clip()->encode(""), std::vector<int>{});
  // Upper-case special-token text is lower-cased, then matched by the pre-tokenizer regex.
  EXPECT_EQ(clip()->encode("<|ENDOFTEXT|>"), std::vector<int>{ClipTokenizer::kEndToken});
  EXPECT_EQ(clip()->encode("x<|startoftext|>"), (std::vector<int>{343, ClipTokenizer::kStartToken}));
}

TEST(ClipTokenizer, BasicCleanIsTransformersBasicTokenizer) {
  // Expected strings are what Python 3.11 gives for BasicTokenizer's steps (str.lower(),
  // str.split(), unicodedata NFC and categories).
  EXPECT_EQ(ClipTokenizer::basic_clean("  A   photo \t of\n"), "a photo of");
  EXPECT_EQ(ClipTokenizer::basic_clean("ΟΔΟΣ ΣΑΣ."), "οδος σας.");           // final sigma
  EXPECT_EQ(ClipTokenizer::basic_clean("İSTANBUL"), "i\xcc\x87stanbul");     // full case mapping
  EXPECT_EQ(ClipTokenizer::basic_clean("e\xcc\x81t\xc3\xa9"), "\xc3\xa9t\xc3\xa9");  // NFC
  EXPECT_EQ(ClipTokenizer::basic_clean("a\u200db"), "ab");                   // Cf dropped
  EXPECT_EQ(ClipTokenizer::basic_clean("x\ue000y"), "xy");                   // Co dropped
  EXPECT_EQ(ClipTokenizer::basic_clean(std::string("\x00\x01ok\x7f", 5)), "ok");
  EXPECT_EQ(ClipTokenizer::basic_clean("a\u00a0b\u3000c"), "a b c");         // Zs is space
  EXPECT_EQ(ClipTokenizer::basic_clean("a\u2028b"), "a b");                  // str.split() splits
  EXPECT_EQ(ClipTokenizer::basic_clean("東京x"), "東 京 x");                  // CJK one per word
  EXPECT_EQ(ClipTokenizer::basic_clean("a\xff" "b"), "ab");                   // bad UTF-8
}

TEST(ClipTokenizer, DataDirectoryIsFound) {
  const fs::path vocab = find_data_path("clip/vocab.json");
  EXPECT_TRUE(fs::is_regular_file(vocab));
  EXPECT_TRUE(fs::is_regular_file(vocab.parent_path() / "merges.txt"));
  EXPECT_TRUE(fs::is_regular_file(vocab.parent_path() / "LICENSE.txt"));
  EXPECT_THROW(find_data_path("clip/no_such_file"), ComfyError);
  EXPECT_THROW(ClipTokenizer::load("/nonexistent"), ComfyError);
}

TEST(ClipTokenizer, LongPromptIsChunkedInWindowsOf75) {
  std::string text;
  for (int i = 0; i < 10000; ++i) text += "cat ";
  SDTokenizer tok(clip());
  const TokenChunks chunks = tok.tokenize_with_weights(text);
  ASSERT_EQ(chunks.size(), 134u);  // ceil(10000 / 75): one segment, so one word split across chunks
  std::size_t cats = 0;
  for (const auto& chunk : chunks) {
    ASSERT_EQ(chunk.size(), 77u);
    EXPECT_EQ(chunk.front().token, ClipTokenizer::kStartToken);
    for (const auto& r : chunk) cats += r.token == 2368;
  }
  EXPECT_EQ(cats, 10000u);
  EXPECT_EQ(chunks[0][76].token, ClipTokenizer::kEndToken);
  EXPECT_EQ(chunks[133][26].token, ClipTokenizer::kEndToken);  // 25 left over
}

TEST(ClipTokenizer, ShortWordsMoveToTheNextChunkWhole) {
  std::string text;
  for (int i = 0; i < 20; ++i) text += "(a b c d:1.0)";  // 20 words of 4 tokens, no gaps between
  SDTokenizer tok(clip());
  const TokenChunks chunks = tok.tokenize_with_weights(text);
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(chunks[0][72].word_id, 18);  // 18 words = 72 tokens fit; the 19th does not
  EXPECT_EQ(chunks[0][73].token, ClipTokenizer::kEndToken);
  EXPECT_EQ(chunks[0][74].token, ClipTokenizer::kEndToken);  // padding
  EXPECT_EQ(chunks[0][74].word_id, 0);
  EXPECT_EQ(chunks[1][1].word_id, 19);
  EXPECT_EQ(chunks[1][8].word_id, 20);
  EXPECT_EQ(chunks[1][9].token, ClipTokenizer::kEndToken);
}

TEST(ClipTokenizer, PadsWithZeroWhenNotPaddingWithEnd) {
  SDTokenizerOptions sd2;
  sd2.pad_with_end = false;
  SDTokenizer tok(clip(), sd2);
  const TokenChunks chunks = tok.tokenize_with_weights("a cat");
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0][3].token, ClipTokenizer::kEndToken);
  EXPECT_EQ(chunks[0][4].token, 0);
  EXPECT_EQ(chunks[0][76].token, 0);
}

TEST(ClipTokenizer, EmbeddingHook) {
  std::vector<std::string> asked;
  SDTokenizer tok(clip(), {}, [&](const std::string& name) -> std::optional<int64_t> {
    asked.push_back(name);
    if (name == "three") return 3;
    return std::nullopt;
  });
  // Weighted, and with text after it in the same piece.
  TokenChunks chunks = tok.tokenize_with_weights("x (embedding:three y:1.5)");
  EXPECT_EQ(asked, std::vector<std::string>{"three"});
  const auto& rows = chunks[0];
  EXPECT_EQ(rows[1].token, 343);  // "x"
  for (int r = 0; r < 3; ++r) {
    EXPECT_EQ(rows[2 + r].embedding, "three");
    EXPECT_EQ(rows[2 + r].embedding_row, r);
    EXPECT_EQ(rows[2 + r].weight, 1.5);
    EXPECT_EQ(rows[2 + r].word_id, 2);
  }
  EXPECT_EQ(rows[5].token, 343 + 1);  // "y"
  EXPECT_EQ(rows[5].word_id, 3);

  // Commas after a name: the bare name is tried, the commas are tokenized.
  asked.clear();
  chunks = tok.tokenize_with_weights("embedding:three,,");
  EXPECT_EQ(asked, (std::vector<std::string>{"three,,", "three"}));
  EXPECT_EQ(chunks[0][3].embedding, "three");
  EXPECT_EQ(chunks[0][4].token, clip()->encode(",,").at(0));

  // "embedding:" with nothing after it fails as it does in ComfyUI (IndexError).
  try {
    tok.tokenize_with_weights("a embedding:");
    FAIL();
  } catch (const ComfyError& e) {
    EXPECT_EQ(e.type(), "IndexError");
  }
}

TEST(ClipTokenizer, UnknownEmbeddingIsReportedAsComfyUIDoes) {
  std::ostringstream log;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log);
  spdlog::default_logger()->sinks().push_back(sink);
  SDTokenizer tok(clip(), {}, fixture_embeddings());
  const TokenChunks chunks = tok.tokenize_with_weights("embedding:nonexistent a cat");
  spdlog::default_logger()->sinks().pop_back();
  EXPECT_NE(log.str().find("warning, embedding:nonexistent a cat does not exist, ignoring"), std::string::npos)
      << log.str();
  EXPECT_EQ(chunks[0][1].token, 320);
}

TEST(ClipTokenizer, WithoutEmbeddingDirectoryTheNameIsText) {
  SDTokenizer tok(clip());  // no lookup: ComfyUI's embedding_directory None
  const TokenChunks chunks = tok.tokenize_with_weights("embedding:tiny_emb");
  const std::vector<int> ids = clip()->encode("embedding:tiny_emb");
  ASSERT_GT(ids.size(), 3u);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    EXPECT_FALSE(chunks[0][1 + i].is_embedding());
    EXPECT_EQ(chunks[0][1 + i].token, ids[i]);
  }
}

TEST(ClipTokenizer, EmbeddingFilesResolveAsComfyUI) {
  const fs::path dir = kFixtures / "models" / "embeddings";
  EXPECT_EQ(find_embedding_file({dir}, "tiny_emb"), fs::absolute(dir / "tiny_emb.safetensors").lexically_normal());
  EXPECT_EQ(find_embedding_file({dir}, "tiny_emb.safetensors"),
            fs::absolute(dir / "tiny_emb.safetensors").lexically_normal());
  EXPECT_FALSE(find_embedding_file({dir}, "missing"));
  // A name may wander as long as it ends inside the folder; one that ends outside is ignored,
  // even when the file exists.
  EXPECT_TRUE(find_embedding_file({dir}, "../embeddings/tiny_emb"));
  EXPECT_TRUE(find_embedding_file({dir}, (fs::absolute(dir) / "tiny_emb").string()));
  EXPECT_FALSE(find_embedding_file({dir}, "../checkpoints/tiny_sd15"));
  EXPECT_FALSE(find_embedding_file({dir}, fs::absolute(kFixtures / "models" / "checkpoints" / "tiny_sd15").string()));
}

TEST(PromptWeights, GroupsAndExplicitWeights) {
  using S = std::vector<WeightedSegment>;
  EXPECT_EQ(parse_prompt_weights("a cat"), (S{{"a cat", 1.0}}));
  EXPECT_EQ(parse_prompt_weights("(a:1.2)(b:0.8)"), (S{{"a", 1.2}, {"b", 0.8}}));
  EXPECT_EQ(parse_prompt_weights("a (b (c:1.5) d) e"),
            (S{{"a ", 1.0}, {"b ", 1.1}, {"c", 1.5}, {" d", 1.1}, {" e", 1.0}}));
  EXPECT_EQ(parse_prompt_weights("((a))"), (S{{"a", 1.1 * 1.1}}));
  EXPECT_EQ(parse_prompt_weights("((a))")[0].weight, 1.2100000000000002);
  EXPECT_EQ(parse_prompt_weights("(((a)))")[0].weight, 1.3310000000000004);
  EXPECT_EQ(parse_prompt_weights("(colon: in text:1.1)"), (S{{"colon: in text", 1.1}}));
  EXPECT_EQ(parse_prompt_weights("(bad weight:abc)"), (S{{"bad weight:abc", 1.1}}));
  EXPECT_EQ(parse_prompt_weights("(:1.5)"), (S{{":1.5", 1.1}}));  // a colon at 0 is text
  EXPECT_EQ(parse_prompt_weights("(x: 2 )"), (S{{"x", 2.0}}));
  EXPECT_EQ(parse_prompt_weights("(x:1e-1)"), (S{{"x", 0.1}}));
  EXPECT_EQ(parse_prompt_weights("(a) (b)"), (S{{"a", 1.1}, {" ", 1.0}, {"b", 1.1}}));
  EXPECT_EQ(parse_prompt_weights("()"), S{});
}

TEST(PromptWeights, BracketsEscapesAndUnbalancedParentheses) {
  using S = std::vector<WeightedSegment>;
  EXPECT_EQ(parse_prompt_weights("[b] and [[blurry]]"), (S{{"[b] and [[blurry]]", 1.0}}));
  EXPECT_EQ(parse_prompt_weights("\\(x:1.5\\) y"), (S{{"(x:1.5) y", 1.0}}));
  EXPECT_EQ(parse_prompt_weights("(a \\) b:1.3)"), (S{{"a ) b", 1.3}}));
  EXPECT_EQ(parse_prompt_weights("(unclosed"), (S{{"(unclosed", 1.0}}));
  EXPECT_EQ(parse_prompt_weights("closed) x"), (S{{"closed) x", 1.0}}));
  // After a stray ")", nesting is -1: the next "(" only brings it back to 0, so no group forms.
  EXPECT_EQ(parse_prompt_weights("a) (b) c"), (S{{"a) (b) c", 1.0}}));
  EXPECT_EQ(parse_prompt_weights("a) ((b)) c"), (S{{"a) (", 1.0}, {"b", 1.1}, {") c", 1.0}}));
  EXPECT_EQ(unescape_prompt("\\(a\\)"), "(a)");
}

TEST(PromptWeights, PythonFloatSyntax) {
  EXPECT_EQ(parse_python_float("1.3"), 1.3);
  EXPECT_EQ(parse_python_float(" 2 "), 2.0);
  EXPECT_EQ(parse_python_float("-1"), -1.0);
  EXPECT_EQ(parse_python_float("+.5"), 0.5);
  EXPECT_EQ(parse_python_float("5."), 5.0);
  EXPECT_EQ(parse_python_float("1E2"), 100.0);
  EXPECT_EQ(parse_python_float("1_0.2_5"), 10.25);
  EXPECT_EQ(parse_python_float("\u00a01.5\u3000"), 1.5);
  EXPECT_EQ(parse_python_float("1e400"), HUGE_VAL);
  EXPECT_EQ(parse_python_float("-1e-400"), 0.0);
  EXPECT_EQ(parse_python_float("-Infinity"), -HUGE_VAL);
  EXPECT_EQ(parse_python_float("inf"), HUGE_VAL);
  EXPECT_TRUE(std::isnan(*parse_python_float("NaN")));
  for (const char* bad : {"", " ", "abc", "1__0", "_1", "1_", "1_.5", "1._5", "1e", ".", "e5", "0x10", "1.2.3",
                          "nan(1)", "++1", "1 2", "infin"})
    EXPECT_FALSE(parse_python_float(bad)) << bad;
}
