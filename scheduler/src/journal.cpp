#include <packtrain/scheduler/journal.hpp>

#include <packtrain/scheduler/error.hpp>

#include <sqlite3.h>

#include <chrono>

namespace packtrain {
namespace {

// The one place SQLite return codes become errors.
void check_sqlite(int rc, sqlite3* db, const std::filesystem::path& path, const char* what) {
  if (rc == SQLITE_OK || rc == SQLITE_ROW || rc == SQLITE_DONE) return;
  const char* detail = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  throw Error("journal " + path.string() + ": " + what + ": " + detail);
}

// A prepared statement, finalized on scope exit.
class Statement {
 public:
  Statement(sqlite3* db, const std::filesystem::path& path, const char* sql) : db_(db), path_(path) {
    check_sqlite(sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr), db, path, "prepare");
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int i, const std::string& v) {
    check_sqlite(sqlite3_bind_text(stmt_, i, v.c_str(), static_cast<int>(v.size()), SQLITE_TRANSIENT), db_, path_, "bind");
    return *this;
  }
  Statement& bind(int i, double v) {
    check_sqlite(sqlite3_bind_double(stmt_, i, v), db_, path_, "bind");
    return *this;
  }
  Statement& bind(int i, int v) {
    check_sqlite(sqlite3_bind_int(stmt_, i, v), db_, path_, "bind");
    return *this;
  }
  // Steps once; true when a row is available.
  bool step() {
    const int rc = sqlite3_step(stmt_);
    check_sqlite(rc, db_, path_, "step");
    return rc == SQLITE_ROW;
  }
  std::string text(int col) const {
    const auto* p = sqlite3_column_text(stmt_, col);
    return p ? reinterpret_cast<const char*>(p) : "";
  }
  double real(int col) const { return sqlite3_column_double(stmt_, col); }
  int integer(int col) const { return sqlite3_column_int(stmt_, col); }

 private:
  sqlite3* db_;
  const std::filesystem::path& path_;
  sqlite3_stmt* stmt_ = nullptr;
};

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS jobs (
  seq        INTEGER PRIMARY KEY AUTOINCREMENT,
  id         TEXT NOT NULL UNIQUE,
  name       TEXT NOT NULL,
  spec       TEXT NOT NULL,
  status     TEXT NOT NULL,
  attempts   INTEGER NOT NULL DEFAULT 0,
  started_at REAL NOT NULL DEFAULT 0,
  ended_at   REAL NOT NULL DEFAULT 0,
  cores      TEXT NOT NULL DEFAULT '[]',
  rank       INTEGER NOT NULL DEFAULT 0,
  metrics    TEXT NOT NULL DEFAULT '{}',
  message    TEXT NOT NULL DEFAULT '',
  artifacts  TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
)sql";

// Where an older packtrain kept a job's files: a list "artifacts" in its metrics.
std::vector<std::string> artifacts_in_metrics(const nlohmann::json& metrics) {
  std::vector<std::string> files;
  const auto it = metrics.is_object() ? metrics.find("artifacts") : metrics.end();
  if (it == metrics.end() || !it->is_array()) return files;
  for (const auto& entry : *it)
    if (entry.is_string()) files.push_back(entry.get<std::string>());
  return files;
}

std::vector<std::string> parse_artifacts(const std::string& text) {
  const auto json = nlohmann::json::parse(text, nullptr, false);
  std::vector<std::string> files;
  if (!json.is_array()) return files;
  for (const auto& entry : json)
    if (entry.is_string()) files.push_back(entry.get<std::string>());
  return files;
}

// `artifacts_column`: false for an older journal opened read-only.
JobRecord read_record(const Statement& s, bool artifacts_column) {
  JobRecord r;
  r.id = s.text(0);
  r.name = s.text(1);
  r.spec = nlohmann::json::parse(s.text(2), nullptr, false);
  r.status = job_status_from_string(s.text(3));
  r.attempts = s.integer(4);
  r.started_at = s.real(5);
  r.ended_at = s.real(6);
  auto cores = nlohmann::json::parse(s.text(7), nullptr, false);
  if (cores.is_array()) r.cores = cores.get<std::vector<int>>();
  r.rank = s.integer(8);
  r.metrics = nlohmann::json::parse(s.text(9), nullptr, false);
  if (r.metrics.is_discarded()) r.metrics = nlohmann::json::object();
  r.message = s.text(10);
  r.artifacts = artifacts_column ? parse_artifacts(s.text(11)) : artifacts_in_metrics(r.metrics);
  return r;
}

// The columns read_record reads, with or without `artifacts` (an older journal).
std::string select_records(bool artifacts_column) {
  return std::string("SELECT id, name, spec, status, attempts, started_at, ended_at, cores, rank, metrics, message") +
         (artifacts_column ? ", artifacts" : "") + " FROM jobs";
}

}  // namespace

nlohmann::json record_to_json(const JobRecord& r) {
  return {{"id", r.id},
          {"name", r.name},
          {"spec", r.spec},
          {"status", std::string(to_string(r.status))},
          {"attempts", r.attempts},
          {"started_at", r.started_at},
          {"ended_at", r.ended_at},
          {"cores", r.cores},
          {"rank", r.rank},
          {"metrics", r.metrics},
          {"message", r.message},
          {"artifacts", r.artifacts}};
}

JobRecord record_from_json(const nlohmann::json& j) {
  JobRecord r;
  r.id = j.at("id").get<std::string>();
  r.name = j.at("name").get<std::string>();
  r.spec = j.at("spec");
  r.status = job_status_from_string(j.at("status").get<std::string>());
  r.attempts = j.at("attempts").get<int>();
  r.started_at = j.at("started_at").get<double>();
  r.ended_at = j.at("ended_at").get<double>();
  r.cores = j.at("cores").get<std::vector<int>>();
  r.rank = j.at("rank").get<int>();
  r.metrics = j.at("metrics");
  r.message = j.at("message").get<std::string>();
  r.artifacts = j.at("artifacts").get<std::vector<std::string>>();
  return r;
}

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

Journal::Journal(std::filesystem::path path) : path_(std::move(path)) {}

Journal::~Journal() {
  if (db_) sqlite3_close(db_);
}

std::unique_ptr<Journal> Journal::open(const std::filesystem::path& path) {
  std::unique_ptr<Journal> j(new Journal(path));
  const int rc = sqlite3_open_v2(path.c_str(), &j->db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  check_sqlite(rc, j->db_, path, "cannot open");
  sqlite3_busy_timeout(j->db_, 5000);
  try {
    j->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
    j->exec(kSchema);
    if (!j->has_column("jobs", "artifacts")) j->add_artifacts_column();
  } catch (const Error& e) {
    throw Error("journal " + path.string() + " is not a packtrain journal or is damaged (" + e.what() + ")");
  }
  return j;
}

std::unique_ptr<Journal> Journal::open_existing(const std::filesystem::path& path) {
  std::unique_ptr<Journal> j(new Journal(path));
  const int rc = sqlite3_open_v2(path.c_str(), &j->db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, nullptr);
  check_sqlite(rc, j->db_, path, "cannot open");
  sqlite3_busy_timeout(j->db_, 5000);
  int tables = 0;
  try {
    Statement s(j->db_, path, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name IN ('jobs', 'meta')");
    if (s.step()) tables = s.integer(0);
  } catch (const Error& e) {
    throw Error("journal " + path.string() + " is not a packtrain journal or is damaged (" + e.what() + ")");
  }
  if (tables != 2) throw Error("journal " + path.string() + " is not a packtrain journal (no jobs and meta tables)");
  j->artifacts_column_ = j->has_column("jobs", "artifacts");
  return j;
}

void Journal::exec(const std::string& sql) {
  char* err = nullptr;
  const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
  const std::string detail = err ? err : "";
  sqlite3_free(err);
  if (rc != SQLITE_OK) throw Error("journal " + path_.string() + ": " + detail);
}

bool Journal::has_column(const char* table, const char* column) {
  Statement s(db_, path_, "SELECT count(*) FROM pragma_table_info(?1) WHERE name=?2");
  s.bind(1, std::string(table)).bind(2, std::string(column));
  return s.step() && s.integer(0) > 0;
}

// One transaction, so that two processes opening the same older journal at
// once add the column once, and a reader sees it with its lists filled.
void Journal::add_artifacts_column() {
  exec("BEGIN IMMEDIATE");
  try {
    if (!has_column("jobs", "artifacts")) {
      exec("ALTER TABLE jobs ADD COLUMN artifacts TEXT NOT NULL DEFAULT '[]'");
      std::vector<std::pair<std::string, std::vector<std::string>>> moved;
      {
        Statement s(db_, path_, "SELECT id, metrics FROM jobs");
        while (s.step())
          if (auto files = artifacts_in_metrics(nlohmann::json::parse(s.text(1), nullptr, false)); !files.empty())
            moved.emplace_back(s.text(0), std::move(files));
      }
      for (const auto& [id, files] : moved) {
        Statement s(db_, path_, "UPDATE jobs SET artifacts=?2 WHERE id=?1");
        s.bind(1, id).bind(2, nlohmann::json(files).dump());
        s.step();
      }
    }
    exec("COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

void Journal::add_queued(const std::string& id, const std::string& name, const nlohmann::json& spec) {
  std::lock_guard lock(mutex_);
  // The name and spec are the job's (its id is their hash): a row another
  // process wrote without them (a supervising parent recording a crash that
  // came before the row) gets them; everything else stays.
  Statement s(db_, path_,
              "INSERT INTO jobs (id, name, spec, status) VALUES (?1, ?2, ?3, 'queued') ON CONFLICT(id) DO UPDATE SET "
              "name=excluded.name, spec=excluded.spec");
  s.bind(1, id).bind(2, name).bind(3, spec.dump());
  s.step();
}

void Journal::mark_started(const std::string& id, int attempt, double started_at, const std::vector<int>& cores,
                           int rank) {
  std::lock_guard lock(mutex_);
  Statement s(db_, path_,
              "UPDATE jobs SET status='running', attempts=?2, started_at=?3, ended_at=0, cores=?4, rank=?5 WHERE id=?1");
  s.bind(1, id).bind(2, attempt).bind(3, started_at).bind(4, nlohmann::json(cores).dump()).bind(5, rank);
  s.step();
}

void Journal::mark_ended(const std::string& id, JobStatus status, int attempts, double ended_at,
                         const nlohmann::json& metrics, const std::string& message,
                         const std::vector<std::string>& artifacts) {
  std::lock_guard lock(mutex_);
  Statement s(db_, path_,
              "UPDATE jobs SET status=?2, attempts=?3, ended_at=?4, metrics=?5, message=?6, artifacts=?7 WHERE id=?1");
  s.bind(1, id).bind(2, std::string(to_string(status))).bind(3, attempts).bind(4, ended_at).bind(5, metrics.dump());
  s.bind(6, message).bind(7, nlohmann::json(artifacts).dump());
  s.step();
}

void Journal::put(const JobRecord& r) {
  std::lock_guard lock(mutex_);
  Statement s(db_, path_,
              "INSERT INTO jobs (id, name, spec, status, attempts, started_at, ended_at, cores, rank, metrics, message, "
              "artifacts) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) ON CONFLICT(id) DO UPDATE SET "
              "name=excluded.name, spec=excluded.spec, status=excluded.status, attempts=excluded.attempts, "
              "started_at=excluded.started_at, ended_at=excluded.ended_at, cores=excluded.cores, rank=excluded.rank, "
              "metrics=excluded.metrics, message=excluded.message, artifacts=excluded.artifacts");
  s.bind(1, r.id).bind(2, r.name).bind(3, r.spec.dump()).bind(4, std::string(to_string(r.status))).bind(5, r.attempts);
  s.bind(6, r.started_at).bind(7, r.ended_at).bind(8, nlohmann::json(r.cores).dump()).bind(9, r.rank);
  s.bind(10, r.metrics.dump()).bind(11, r.message).bind(12, nlohmann::json(r.artifacts).dump());
  s.step();
}

std::vector<JobRecord> Journal::records() const {
  std::lock_guard lock(mutex_);
  Statement s(db_, path_, (select_records(artifacts_column_) + " ORDER BY seq").c_str());
  std::vector<JobRecord> out;
  while (s.step()) out.push_back(read_record(s, artifacts_column_));
  return out;
}

std::optional<JobRecord> Journal::find(const std::string& id) const {
  std::lock_guard lock(mutex_);
  Statement s(db_, path_, (select_records(artifacts_column_) + " WHERE id=?1").c_str());
  s.bind(1, id);
  if (!s.step()) return std::nullopt;
  return read_record(s, artifacts_column_);
}

void Journal::set_meta(const std::string& key, const std::string& value) {
  std::lock_guard lock(mutex_);
  Statement s(db_, path_, "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value=excluded.value");
  s.bind(1, key).bind(2, value);
  s.step();
}

std::optional<std::string> Journal::meta(const std::string& key) const {
  std::lock_guard lock(mutex_);
  Statement s(db_, path_, "SELECT value FROM meta WHERE key=?1");
  s.bind(1, key);
  if (!s.step()) return std::nullopt;
  return s.text(0);
}

}  // namespace packtrain
