#include "io/sha256.h"

#include <openssl/evp.h>

#include <algorithm>
#include <fstream>
#include <vector>

#include "core/error.h"

namespace comfy::io {

namespace {
EVP_MD_CTX* ctx_of(void* p) { return static_cast<EVP_MD_CTX*>(p); }
}  // namespace

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (!ctx_ || EVP_DigestInit_ex(ctx_of(ctx_), EVP_sha256(), nullptr) != 1) {
    throw ComfyError("RuntimeError", "SHA-256 is not available (OpenSSL EVP_sha256)");
  }
}

Sha256::~Sha256() { EVP_MD_CTX_free(ctx_of(ctx_)); }

void Sha256::update(const void* data, std::size_t n) {
  if (n > 0) EVP_DigestUpdate(ctx_of(ctx_), data, n);
}

std::string Sha256::hex() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_of(ctx_), digest, &len);
  static const char* hexdigits = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out.push_back(hexdigits[digest[i] >> 4]);
    out.push_back(hexdigits[digest[i] & 15]);
  }
  return out;
}

std::string sha256_hex(std::string_view bytes) {
  Sha256 h;
  h.update(bytes);
  return h.hex();
}

std::string sha256_file_hex(const std::filesystem::path& path) { return sha256_file_hex(path, nullptr); }

std::string sha256_file_hex(const std::filesystem::path& path, const HashProgress& progress, std::size_t chunk) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw ComfyError("FileNotFoundError", "No such file: '" + path.string() + "'");
  std::error_code ec;
  const uint64_t total = std::filesystem::file_size(path, ec);
  Sha256 h;
  std::vector<char> buffer(std::max<std::size_t>(chunk, 4096));  // streamed: model files are gigabytes
  uint64_t done = 0;
  while (file) {
    file.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    if (file.gcount() > 0) {
      h.update(buffer.data(), static_cast<size_t>(file.gcount()));
      done += static_cast<uint64_t>(file.gcount());
      if (progress && !progress(done, ec ? done : total)) {
        throw ComfyError("InterruptedError", "hashing '" + path.string() + "' was cancelled");
      }
    }
  }
  if (file.bad()) throw ComfyError("OSError", "Could not read '" + path.string() + "'");
  return h.hex();
}

}  // namespace comfy::io
