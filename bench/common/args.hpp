#pragma once
// What benches' command lines share: comma-separated lists (--models mlp,lenet5).
#include <sstream>
#include <string>
#include <vector>

namespace packtrain::bench {

// "a,b,,c" -> {"a", "b", "c"}: the items between commas, empty ones dropped.
inline std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

}  // namespace packtrain::bench
