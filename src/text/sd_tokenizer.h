// ComfyUI's SDTokenizer.tokenize_with_weights (comfy/sd1_clip.py): a prompt becomes chunks of
// `max_length` (77) rows of (token, weight, word id), ready for a CLIP text encoder.
//   - The prompt is cut into weighted segments (prompt_weights.h). Each segment is cut again
//     before every " embedding:" / "\nembedding:"; each piece is one "word" (so word ids count
//     segments and embeddings, not spaces: "a photo of a cat" is all word 1; an empty segment
//     between two groups still takes an id).
//   - "embedding:NAME rest": NAME (up to the first whitespace) goes to the embedding lookup; if
//     it is unknown and ends or starts with commas, the name without them is tried and the
//     commas are tokenized with the rest. An unknown name is skipped with ComfyUI's warning
//     ("warning, embedding:NAME does not exist, ignoring"), the rest is tokenized. An embedding
//     of R vectors becomes R rows that refer to it ({name, row}).
//   - Chunks: start token, up to 75 rows, end token, pad to 77. A word that does not fit in the
//     current chunk moves to the next one whole, unless it has >= 8 tokens: then it fills the
//     current chunk and continues in the next.
// SD1 (CLIP-L) pads with the end token; SD2/SDXL's CLIP-H/G tokenizers pad with 0.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "text/clip_tokenizer.h"

namespace comfy {

struct TokenRow {
  int token = 0;           // vocabulary id; meaningless when `embedding` is set
  std::string embedding;   // non-empty: row `embedding_row` of the named embedding
  int64_t embedding_row = 0;
  double weight = 1.0;
  int word_id = 0;         // 0 for start, end and pad rows
  bool is_embedding() const { return !embedding.empty(); }
};
using TokenChunks = std::vector<std::vector<TokenRow>>;

// Resolves `embedding:NAME`: the number of vectors of the embedding NAME (1 for a 1-D one), or
// nullopt when there is none. Loading and caching the vectors is the lookup's business (the text
// encoder asks it again for the tensor); the tokenizer only needs the count.
using EmbeddingLookup = std::function<std::optional<int64_t>(const std::string& name)>;

struct SDTokenizerOptions {
  int max_length = 77;
  bool pad_with_end = true;  // SD1 CLIP-L: pad with <|endoftext|>; false: pad with 0
  std::optional<int> min_length;
  std::optional<int> min_padding;
};

class SDTokenizer {
 public:
  // `embeddings`: null means no embedding directory (ComfyUI then tokenizes "embedding:NAME"
  // as text); a lookup that never finds anything means an embedding directory without it.
  explicit SDTokenizer(std::shared_ptr<const ClipTokenizer> clip, SDTokenizerOptions options = {},
                       EmbeddingLookup embeddings = nullptr);

  // ComfyUI's tokenize_with_weights(text, return_word_ids=True). `disable_weights` treats the
  // whole text as one segment of weight 1.0 (ComfyUI's disable_weights option).
  TokenChunks tokenize_with_weights(std::string_view text, bool disable_weights = false) const;

  const ClipTokenizer& clip() const { return *clip_; }
  int pad_token() const { return pad_token_; }

 private:
  std::shared_ptr<const ClipTokenizer> clip_;
  SDTokenizerOptions options_;
  EmbeddingLookup embeddings_;
  int pad_token_;
};

}  // namespace comfy
