// SweepMeta and group_stats: the sweep summary, from the journal's meta table.
#include <packtrain/dashboard/report.hpp>

#include <packtrain/scheduler/error.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <type_traits>

namespace packtrain::dashboard {
namespace {

// A meta value as JSON: the journal holds text, which is JSON for arrays and
// numbers ("[\"model\"]", "0.89") and plain for strings ("kfold").
nlohmann::json meta_value(const nlohmann::json& value) {
  if (!value.is_string()) return value;
  auto parsed = nlohmann::json::parse(value.get<std::string>(), nullptr, false);
  return parsed.is_discarded() ? value : parsed;
}

std::string meta_string(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  return value.dump();
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A meta value that must be a JSON array of T (strings or integers):
// anything else is an Error naming the key.
template <typename T>
std::vector<T> meta_list(const nlohmann::json& meta, const std::string& key, const std::string& what) {
  const auto list = meta_value(meta[key]);
  if (!list.is_array()) throw Error("meta " + key + " is not a JSON array of " + what + "s: " + meta_string(meta[key]));
  std::vector<T> out;
  for (const auto& item : list) {
    const bool ok = std::is_same_v<T, std::string> ? item.is_string() : item.is_number_integer();
    if (!ok) throw Error("meta " + key + " holds a " + what + " of the wrong type: " + item.dump());
    out.push_back(item.get<T>());
  }
  return out;
}

}  // namespace

SweepMeta SweepMeta::from_json(const nlohmann::json& meta) {
  SweepMeta s;
  if (!meta.is_object()) return s;
  if (meta.contains("command")) s.command = meta_string(meta["command"]);
  if (meta.contains("group_by")) s.group_by = meta_list<std::string>(meta, "group_by", "spec key");
  if (meta.contains("metric")) s.metric = meta_string(meta["metric"]);
  s.higher_is_better = !(ends_with(s.metric, "loss") || ends_with(s.metric, "error"));
  if (meta.contains("metric_goal")) {
    const auto goal = meta_string(meta["metric_goal"]);
    if (goal != "max" && goal != "min") throw Error("meta metric_goal is '" + goal + "', not max or min");
    s.higher_is_better = goal == "max";
  }
  if (meta.contains("plot_x")) s.plot_x = meta_string(meta["plot_x"]);
  if (meta.contains("plot_series")) s.plot_series = meta_string(meta["plot_series"]);
  if (meta.contains("plot_reference")) {
    const auto ref = meta_value(meta["plot_reference"]);
    if (!ref.is_number()) throw Error("meta plot_reference is not a number: " + meta_string(meta["plot_reference"]));
    s.plot_reference = ref.get<double>();
  }
  if (meta.contains("columns")) s.columns = meta_list<std::string>(meta, "columns", "column name");
  if (meta.contains("cores")) s.cores = meta_list<int>(meta, "cores", "core id");
  if (meta.contains("entries")) {
    const auto list = meta_value(meta["entries"]);
    const auto bad = [&](const std::string& why) {
      return Error("meta entries " + why + ": " + meta_string(meta["entries"]).substr(0, 200));
    };
    if (!list.is_array()) throw bad("is not a JSON array");
    for (const auto& item : list) {
      if (!item.is_object() || !item.contains("name") || !item["name"].is_string() || !item.contains("jobs"))
        throw bad("holds an entry without a name or jobs");
      SweepMeta::Entry e;
      e.name = item["name"].get<std::string>();
      e.command = item.value("command", std::string());
      if (item.contains("meta")) {
        if (!item["meta"].is_object()) throw bad("holds an entry whose meta is not an object");
        e.meta = from_json(item["meta"]);
        e.meta.command = e.command;
      }
      e.jobs = meta_list<std::string>(item, "jobs", "job id");
      s.entries.push_back(std::move(e));
    }
  }
  return s;
}

void label_entries(std::vector<JobRecord>& records, const SweepMeta& sweep) {
  if (sweep.entries.empty()) return;
  std::map<std::string, std::string> entry_of;
  for (const auto& e : sweep.entries)
    for (const auto& id : e.jobs) entry_of[id] = e.name;
  for (auto& r : records)
    if (const auto it = entry_of.find(r.id); it != entry_of.end()) {
      if (!r.metrics.is_object()) r.metrics = nlohmann::json::object();
      r.metrics["entry"] = it->second;
    }
}

const std::vector<std::string>& SweepMeta::keys() {
  static const std::vector<std::string> keys = {"command", "group_by",    "metric",         "metric_goal", "plot_x",
                                                "plot_series", "plot_reference", "columns", "cores", "entries"};
  return keys;
}

SweepMeta SweepMeta::from_journal(const Journal& journal) {
  nlohmann::json meta = nlohmann::json::object();
  for (const auto& key : keys())
    if (auto value = journal.meta(key)) meta[key] = *value;
  return from_json(meta);
}

std::vector<std::string> result_columns(const SweepMeta& sweep) {
  if (!sweep.columns.empty()) return sweep.columns;
  std::vector<std::string> columns = {"job", "status"};
  const auto add = [&](const std::string& c) {
    if (!c.empty() && std::find(columns.begin(), columns.end(), c) == columns.end()) columns.push_back(c);
  };
  for (const auto& k : sweep.group_by) add(k);
  add(sweep.plot_x);
  add(sweep.plot_series);
  add(sweep.metric);
  for (const char* c : {"seconds", "cores", "rank"}) add(c);
  return columns;
}

std::vector<GroupStat> group_stats(const std::vector<JobRecord>& jobs, const std::vector<std::string>& keys,
                                   const std::string& metric, bool higher_is_better) {
  std::vector<GroupStat> groups;
  std::vector<std::vector<double>> values;
  if (keys.empty()) return groups;
  for (const auto& r : jobs) {
    if (!r.spec.is_object()) continue;
    nlohmann::json key = nlohmann::json::object();
    bool complete = true;
    for (const auto& k : keys) {
      if (!r.spec.contains(k)) {
        complete = false;
        break;
      }
      key[k] = r.spec[k];
    }
    if (!complete) continue;
    auto it = std::find_if(groups.begin(), groups.end(), [&](const GroupStat& g) { return g.key == key; });
    if (it == groups.end()) {
      groups.push_back({.key = key});
      values.emplace_back();
      it = groups.end() - 1;
    }
    auto& v = values[static_cast<std::size_t>(it - groups.begin())];
    ++it->jobs;
    if (r.status != JobStatus::done || !r.metrics.is_object() || !r.metrics.contains(metric)) continue;
    const auto& m = r.metrics[metric];
    if (!m.is_number() || !std::isfinite(m.get<double>())) continue;
    v.push_back(m.get<double>());
    ++it->measured;
  }
  int best = -1;
  for (std::size_t i = 0; i < groups.size(); ++i) {
    const auto& v = values[i];
    if (v.empty()) continue;
    double sum = 0;
    for (double x : v) sum += x;
    auto& g = groups[i];
    g.mean = sum / static_cast<double>(v.size());
    double sq = 0;
    for (double x : v) sq += (x - g.mean) * (x - g.mean);
    g.std = v.size() > 1 ? std::sqrt(sq / static_cast<double>(v.size() - 1)) : 0.0;
    if (best < 0 || (higher_is_better ? g.mean > groups[best].mean : g.mean < groups[best].mean))
      best = static_cast<int>(i);
  }
  if (best >= 0) groups[static_cast<std::size_t>(best)].best = true;
  return groups;
}

std::vector<std::string> report_columns(const std::vector<std::string>& base, const SweepMeta& sweep) {
  std::vector<std::string> columns = base;
  auto add = [&columns](const std::string& key) {
    if (!key.empty() && std::find(columns.begin(), columns.end(), key) == columns.end()) columns.push_back(key);
  };
  for (const auto& k : sweep.group_by) add(k);
  add(sweep.plot_x);
  add(sweep.plot_series);
  return columns;
}

}  // namespace packtrain::dashboard
