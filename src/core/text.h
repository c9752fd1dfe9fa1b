// Small string helpers that file, model, server and CLI code all need.
#pragma once
#include <cstdio>
#include <string>

namespace comfy {

// ASCII lower case, for file extensions, header names and hosts; other bytes (UTF-8) unchanged.
inline std::string ascii_lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

// A byte count in binary units: "512 B", "1.50 KiB", "2.13 GiB" (`decimals` above bytes).
inline std::string human_size(double bytes, int decimals = 2) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) bytes /= 1024, ++u;
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*f %s", u ? decimals : 0, bytes, units[u]);
  return buf;
}

}  // namespace comfy
