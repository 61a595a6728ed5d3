#include <packtrain/scheduler/results.hpp>

#include <packtrain/scheduler/error.hpp>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

namespace packtrain {

namespace {

std::string json_cell(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.6g", v.get<double>());
    return buf;
  }
  if (v.is_null()) return "";
  return v.dump();
}

std::string csv_escape(const std::string& cell) {
  if (cell.find_first_of(",\"\n") == std::string::npos) return cell;
  std::string out = "\"";
  for (char c : cell) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

nlohmann::json json_value(const JobRecord& r, const std::string& column) {
  if (column == "job") return r.id;
  if (column == "status") return std::string(to_string(r.status));
  if (column == "seconds") return r.seconds();
  if (column == "cores") return static_cast<int>(r.cores.size());
  if (column == "rank") return r.rank;
  if (column == "name") return r.name;
  if (column == "attempts") return r.attempts;
  if (r.spec.is_object() && r.spec.contains(column)) return r.spec[column];
  if (r.metrics.is_object() && r.metrics.contains(column)) return r.metrics[column];
  return nullptr;
}

}  // namespace

std::string result_cell(const JobRecord& record, const std::string& column) {
  if (column == "seconds") {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.3f", record.seconds());
    return buf;
  }
  return json_cell(json_value(record, column));
}

void write_file_atomically(const std::filesystem::path& path, const std::string& text) {
  const auto tmp = path.string() + ".tmp" + std::to_string(getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) throw Error("cannot write " + tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    throw Error("cannot write " + path.string());
  }
}

void write_results_csv(const std::filesystem::path& path, const std::vector<JobRecord>& records,
                       const std::vector<std::string>& columns) {
  std::ostringstream out;
  for (std::size_t i = 0; i < columns.size(); ++i) out << (i ? "," : "") << columns[i];
  out << "\n";
  for (const auto& r : records) {
    for (std::size_t i = 0; i < columns.size(); ++i) out << (i ? "," : "") << csv_escape(result_cell(r, columns[i]));
    out << "\n";
  }
  write_file_atomically(path, out.str());
}

void write_results_json(const std::filesystem::path& path, const std::vector<JobRecord>& records,
                        const nlohmann::json& summary, const std::vector<std::string>& columns) {
  nlohmann::json jobs = nlohmann::json::array();
  for (const auto& r : records) {
    nlohmann::json row;
    for (const auto& c : columns) row[c] = json_value(r, c);
    row["name"] = r.name;
    row["attempts"] = r.attempts;
    row["started_at"] = r.started_at;
    row["ended_at"] = r.ended_at;
    row["core_ids"] = r.cores;
    row["message"] = r.message;
    row["spec"] = r.spec;
    row["metrics"] = r.metrics;
    row["artifacts"] = r.artifacts;
    jobs.push_back(std::move(row));
  }
  write_file_atomically(path, nlohmann::json{{"summary", summary}, {"jobs", jobs}}.dump(2) + "\n");
}

void create_output_dir(const std::filesystem::path& dir) {
  if (dir.empty()) throw Error("no output folder given");
  std::error_code ec;
  if (std::filesystem::exists(dir, ec) && !std::filesystem::is_directory(dir, ec))
    throw Error(dir.string() + " exists and is not a folder");
  std::filesystem::create_directories(dir, ec);
  if (ec) throw Error("cannot create output folder " + dir.string() + ": " + ec.message());
  if (access(dir.c_str(), W_OK) != 0) throw Error("output folder " + dir.string() + " is not writable");
}

}  // namespace packtrain
