#pragma once
// A strict parser of Prometheus' text exposition format (0.0.4), for tests:
// it throws on anything a scraper could reject or misread.
//   # HELP name text          at most once per family, before its samples
//   # TYPE name type          at most once, before the family's samples
//   name{label="value",...} value [timestamp]
// Every sample must belong to a family with a TYPE line, a family's
// samples must be contiguous, and no sample (name + labels) may repeat.
#include <cmath>
#include <cstdlib>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace packtrain::testing {

struct PromSample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct PromFamily {
  std::string help, type;
  std::vector<PromSample> samples;
};

class Exposition {
 public:
  explicit Exposition(const std::string& text) { parse(text); }

  const std::map<std::string, PromFamily>& families() const { return families_; }
  bool has(const std::string& family) const { return families_.count(family) > 0; }

  // The value of the one sample `name` with exactly `labels`; throws if absent.
  double value(const std::string& name, const std::map<std::string, std::string>& labels = {}) const {
    for (const auto& [fname, family] : families_)
      for (const auto& s : family.samples)
        if (s.name == name && s.labels == labels) return s.value;
    throw std::runtime_error("no sample " + name);
  }

 private:
  [[noreturn]] static void fail(int line, const std::string& why, const std::string& text) {
    throw std::runtime_error("line " + std::to_string(line) + ": " + why + ": '" + text + "'");
  }

  static double number(const std::string& text, int line) {
    if (text == "NaN") return NAN;
    if (text == "+Inf" || text == "Inf") return INFINITY;
    if (text == "-Inf") return -INFINITY;
    static const std::regex kNumber(R"([-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?)");
    if (!std::regex_match(text, kNumber)) fail(line, "bad value", text);
    return std::strtod(text.c_str(), nullptr);
  }

  void parse(const std::string& text) {
    if (text.empty() || text.back() != '\n') throw std::runtime_error("exposition must end with a newline");
    static const std::regex kName(R"([a-zA-Z_:][a-zA-Z0-9_:]*)");
    static const std::regex kHelp(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*))");
    static const std::regex kType(R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped))");
    static const std::regex kSample(R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( -?\d+)?)");
    static const std::regex kLabel(R"(^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)\"(,|$))");
    std::istringstream in(text);
    std::string l;
    int n = 0;
    std::string current;  // the family whose samples are being read
    std::set<std::string> finished, seen_samples;
    std::smatch m;
    while (std::getline(in, l)) {
      ++n;
      if (l.empty()) continue;
      if (l.rfind("#", 0) == 0) {
        if (std::regex_match(l, m, kHelp)) {
          auto& f = families_[m[1]];
          if (!f.help.empty()) fail(n, "second HELP", l);
          if (!f.samples.empty()) fail(n, "HELP after samples", l);
          f.help = m[2];
        } else if (std::regex_match(l, m, kType)) {
          auto& f = families_[m[1]];
          if (!f.type.empty()) fail(n, "second TYPE", l);
          if (!f.samples.empty()) fail(n, "TYPE after samples", l);
          f.type = m[2];
        } else if (l.rfind("# HELP", 0) == 0 || l.rfind("# TYPE", 0) == 0) {
          fail(n, "malformed HELP/TYPE", l);
        }
        continue;  // other comments are allowed
      }
      if (!std::regex_match(l, m, kSample)) fail(n, "malformed sample", l);
      PromSample s;
      s.name = m[1];
      s.value = number(m[4], n);
      std::string labels = m[3];
      while (!labels.empty()) {
        std::smatch lm;
        if (!std::regex_search(labels, lm, kLabel)) fail(n, "malformed labels", l);
        std::string value;
        const std::string raw = lm[2];
        for (std::size_t i = 0; i < raw.size(); ++i) {
          if (raw[i] == '\\') {
            ++i;
            value += raw[i] == 'n' ? '\n' : raw[i];
          } else {
            value += raw[i];
          }
        }
        if (!s.labels.emplace(lm[1], value).second) fail(n, "repeated label", l);
        labels = lm.suffix();
      }
      // The family: the name itself (counters and gauges here; no _sum/_count handling needed).
      const std::string family = s.name;
      const auto it = families_.find(family);
      if (it == families_.end() || it->second.type.empty()) fail(n, "sample without a TYPE", l);
      if (family != current) {
        if (finished.count(family)) fail(n, "family samples not contiguous", l);
        if (!current.empty()) finished.insert(current);
        current = family;
      }
      std::string key = s.name;
      for (const auto& [k, v] : s.labels) key += "|" + k + "=" + v;
      if (!seen_samples.insert(key).second) fail(n, "repeated sample", l);
      it->second.samples.push_back(std::move(s));
    }
  }

  std::map<std::string, PromFamily> families_;
};

}  // namespace packtrain::testing
