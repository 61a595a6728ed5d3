#include <packtrain/dashboard/run_files.hpp>

#include <packtrain/scheduler/error.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace packtrain::dashboard {

const char* const kAttemptsHeader = "job,attempt,status,start,end,rank,cores,name\n";

namespace {

std::string csv_cell(const std::string& cell) {
  if (cell.find_first_of(",\"\n\r") == std::string::npos) return cell;
  std::string out = "\"";
  for (char c : cell) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string header_of(const std::vector<Series>& series) {
  std::string line = "time";
  for (const auto& s : series) line += "," + s.name();
  return line + "\n";
}

bool parse_double(const std::string& text, double& out) {
  if (text.empty()) return false;
  char* end = nullptr;
  errno = 0;
  out = std::strtod(text.c_str(), &end);
  return end == text.c_str() + text.size() && errno == 0 && std::isfinite(out);
}

// Calls `row` with the cells of every line of the CSV file at `path` that
// has as many cells as `header` (its header lines, which a resumed run
// appends again, skipped); a row that throws (a torn or foreign line) is
// skipped. Nothing when the file does not exist.
template <typename Row>
void for_each_row(const std::filesystem::path& path, const char* header, Row&& row) {
  const std::string header_line(header, std::strlen(header) - 1);
  const auto columns = split_csv_line(header_line).size();
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line == header_line) continue;
    const auto cells = split_csv_line(line);
    if (cells.size() != columns) continue;
    try {
      row(cells);
    } catch (const std::exception&) {
    }
  }
}

// The last header line of an existing utilization.csv, or "".
std::string last_header(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::string line, header;
  while (std::getline(in, line))
    if (line.starts_with("time,")) header = line + "\n";
  return header;
}

}  // namespace

std::string short_number(double value, int decimals) {
  if (!std::isfinite(value)) return "0";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, value);
  std::string text = buf;
  if (text.find('.') != std::string::npos) {
    while (text.back() == '0') text.pop_back();
    if (text.back() == '.') text.pop_back();
  }
  if (text == "-0") text = "0";
  return text;
}

std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> cells(1);
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        cells.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        cells.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      cells.emplace_back();
    } else if (c != '\r') {
      cells.back() += c;
    }
  }
  return cells;
}

// --- AppendFile -----------------------------------------------------------------

AppendFile::AppendFile(const std::filesystem::path& path) {
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error("cannot open " + path.string() + " for writing: " + std::strerror(errno));
  // A process killed mid-line left a torn last row: end it, so that the
  // next row starts on a line of its own (readers skip the torn one).
  const off_t size = ::lseek(fd_, 0, SEEK_END);
  empty_at_open_ = size <= 0;
  char last = '\n';
  if (size > 0 && ::pread(fd_, &last, 1, size - 1) == 1 && last != '\n') append("\n");
}

AppendFile::~AppendFile() {
  if (fd_ >= 0) ::close(fd_);
}

AppendFile::AppendFile(AppendFile&& other) noexcept : fd_(other.fd_), empty_at_open_(other.empty_at_open_) {
  other.fd_ = -1;
}

AppendFile& AppendFile::operator=(AppendFile&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    empty_at_open_ = other.empty_at_open_;
    other.fd_ = -1;
  }
  return *this;
}

void AppendFile::append(const std::string& line) {
  if (fd_ < 0) return;
  // With O_APPEND one write(2) of a short line lands whole at the end; a
  // short write (disk full) leaves a partial last line that readers skip.
  std::size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the dashboard never takes a run down over a full disk
    done += static_cast<std::size_t>(n);
  }
}

// --- utilization.csv -----------------------------------------------------------------

UtilizationWriter::UtilizationWriter(const std::filesystem::path& path, std::vector<Series> series)
    : series_(std::move(series)) {
  const std::string header = header_of(series_);
  const bool same_header = std::filesystem::exists(path) && last_header(path) == header;
  file_ = AppendFile(path);
  if (!same_header) file_.append(header);
}

void UtilizationWriter::append(const Sample& sample) {
  std::string line = short_number(sample.time, 3);
  for (std::size_t i = 0; i < sample.values.size() && i < series_.size(); ++i) {
    // Fractions to 1/1000, memory to 0.1 MiB: enough for any chart, and short.
    const bool fraction = series_[i].kind == SeriesKind::core_busy || series_[i].kind == SeriesKind::gpu_busy;
    line += "," + short_number(sample.values[i], fraction ? 3 : 1);
  }
  file_.append(line + "\n");
}

bool read_utilization(const std::filesystem::path& path,
                      const std::function<void(const std::vector<Series>&, const Sample&)>& row) {
  std::ifstream in(path);
  if (!in) return false;
  std::vector<Series> series;
  std::vector<int> columns;  // for each csv column after time: index into series, or -1 (unknown)
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("time,") || line == "time") {
      series.clear();
      columns.clear();
      const auto cells = split_csv_line(line);
      for (std::size_t i = 1; i < cells.size(); ++i) {
        if (auto s = Series::from_name(cells[i])) {
          columns.push_back(static_cast<int>(series.size()));
          series.push_back(*s);
        } else {
          columns.push_back(-1);
        }
      }
      continue;
    }
    const auto cells = split_csv_line(line);
    if (cells.size() != columns.size() + 1) continue;  // a torn last line
    Sample sample;
    if (!parse_double(cells[0], sample.time)) continue;
    sample.values.assign(series.size(), 0.0);
    bool ok = true;
    for (std::size_t i = 0; i < columns.size() && ok; ++i) {
      double v = 0;
      ok = parse_double(cells[i + 1], v);
      if (columns[i] >= 0) sample.values[static_cast<std::size_t>(columns[i])] = v;
    }
    if (ok) row(series, sample);
  }
  return true;
}

// --- attempts.csv -----------------------------------------------------------------

std::string attempt_row(const AttemptSpan& span) {
  std::string cores;
  for (int c : span.cores) cores += (cores.empty() ? "" : " ") + std::to_string(c);
  return csv_cell(span.job_id) + "," + std::to_string(span.attempt) + "," + std::string(to_string(span.status)) +
         "," + short_number(span.start, 6) + "," + short_number(span.end, 6) + "," + std::to_string(span.rank) +
         "," + cores + "," + csv_cell(span.name) + "\n";
}

const char* const kStepsHeader = "job,attempt,rank,step,compute_begin,compute_end,sync_begin,sync_end\n";

std::string step_row(const StepSlice& step) {
  return csv_cell(step.job_id) + "," + std::to_string(step.attempt) + "," + std::to_string(step.rank) + "," +
         std::to_string(step.step) + "," + short_number(step.compute_begin, 6) + "," +
         short_number(step.compute_end, 6) + "," + short_number(step.sync_begin, 6) + "," +
         short_number(step.sync_end, 6) + "\n";
}

std::vector<StepSlice> read_steps(const std::filesystem::path& path) {
  std::vector<StepSlice> steps;
  for_each_row(path, kStepsHeader, [&](const std::vector<std::string>& cells) {
    StepSlice s;
    s.job_id = cells[0];
    s.attempt = std::stoi(cells[1]);
    s.rank = std::stoi(cells[2]);
    s.step = std::stoll(cells[3]);
    if (parse_double(cells[4], s.compute_begin) && parse_double(cells[5], s.compute_end) &&
        parse_double(cells[6], s.sync_begin) && parse_double(cells[7], s.sync_end))
      steps.push_back(std::move(s));
  });
  return steps;
}

std::vector<StepSlice> steps_in_progress(const std::string& job_id, int attempt, const nlohmann::json& progress) {
  std::vector<StepSlice> steps;
  if (!progress.is_object()) return steps;
  const auto it = progress.find("step_timings");
  if (it == progress.end() || !it->is_array()) return steps;
  for (const auto& row : *it) {
    if (!row.is_array() || row.size() != 6) continue;
    bool numbers = true;
    for (const auto& v : row) numbers = numbers && v.is_number();
    if (!numbers) continue;
    steps.push_back(StepSlice{.job_id = job_id, .attempt = attempt, .rank = row[0].get<int>(),
                              .step = row[1].get<std::int64_t>(), .compute_begin = row[2].get<double>(),
                              .compute_end = row[3].get<double>(), .sync_begin = row[4].get<double>(),
                              .sync_end = row[5].get<double>()});
  }
  return steps;
}

std::vector<AttemptSpan> read_attempts(const std::filesystem::path& path) {
  std::vector<AttemptSpan> spans;
  for_each_row(path, kAttemptsHeader, [&](const std::vector<std::string>& cells) {
    AttemptSpan s;
    s.job_id = cells[0];
    s.attempt = std::stoi(cells[1]);
    s.status = job_status_from_string(cells[2]);
    if (!parse_double(cells[3], s.start) || !parse_double(cells[4], s.end)) return;
    s.rank = std::stoi(cells[5]);
    std::istringstream cores(cells[6]);
    for (int c; cores >> c;) s.cores.push_back(c);
    s.name = cells[7];
    spans.push_back(std::move(s));
  });
  return spans;
}

}  // namespace packtrain::dashboard
