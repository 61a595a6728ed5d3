#include "invocation.hpp"

#include <algorithm>

namespace packtrain::cli {
namespace {

std::vector<std::string>& words() {
  static std::vector<std::string> kept;
  return kept;
}

bool plain(const std::string& word) {
  return !word.empty() && std::all_of(word.begin(), word.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("_-./:=,@%+").find(c) != std::string_view::npos;
  });
}

}  // namespace

void remember_invocation(int argc, char** argv) { words().assign(argv, argv + argc); }

const std::vector<std::string>& invocation() { return words(); }

std::string shell_line(const std::vector<std::string>& list) {
  std::string line;
  for (const auto& word : list) {
    if (!line.empty()) line += ' ';
    if (plain(word)) {
      line += word;
      continue;
    }
    line += '\'';
    for (char c : word) line += c == '\'' ? std::string("'\\''") : std::string(1, c);
    line += '\'';
  }
  return line;
}

std::string resume_line() {
  auto list = invocation();
  if (std::find(list.begin(), list.end(), "--resume") == list.end()) list.push_back("--resume");
  return shell_line(list);
}

}  // namespace packtrain::cli
