#pragma once
// DIR/trace.json: the run as a Chrome trace (open it in ui.perfetto.dev or
// chrome://tracing), in the trace-event "JSON Object Format":
//
//   {"traceEvents":[
//   {"name":"process_name","ph":"M","pid":0,"tid":0,"args":{"name":"rank 0"}},
//   {"name":"thread_name","ph":"M","pid":0,"tid":3,"args":{"name":"core 3"}},
//   {"name":"mlp/cosine/fold0","cat":"job","ph":"X","ts":1250,"dur":5031200,"pid":0,"tid":3,
//    "args":{"job":"3f9c...","attempt":1,"status":"done","model":"mlp","fold":0,...}},
//   {"name":"core 3","ph":"C","ts":250000,"pid":0,"args":{"busy %":97.5}},
//   {"name":"memory","ph":"C","ts":250000,"pid":0,"args":{"MiB":812.4}}
//   ],"displayTimeUnit":"ms","otherData":{"start_unix":1716200000.0,...}}
//
// pid is the MPI rank, tid the core id: one track per core, named and sorted
// by metadata events. Each job attempt is one complete slice ("ph":"X") on
// every core it ran on; there are no begin/end pairs, so a slice can never
// end twice or be left open. Utilization and memory are counter tracks
// ("ph":"C"), written only when a value changes (a counter holds its value
// until the next event). Timestamps are integer microseconds since
// otherData.start_unix.
//
// A data-parallel job over ranks (a gang) adds two tracks per member rank:
// "compute" (its micro-batches and in-node sum) and "allreduce" (its
// exchange with the others, waiting for the slowest included), one slice
// ("cat":"step") per optimizer step on each, as Horovod's timeline shows
// them (StepSlice; tids kComputeTrack and kAllreduceTrack, after the cores).
// At most kMaxStepSlices of them per trace; otherData.step_slices_dropped
// counts the rest.
//
// Valid JSON at every moment: the file is only ever replaced whole, written
// to a temporary name and renamed (write_file_atomically), every second or
// so while the run goes and once at its end; a reader sees the previous
// complete version or the new one. A rewrite stays cheap because the
// builder keeps the finished events as text, serialized once; a rewrite
// copies that text and adds the slices still running, drawn up to now with
// status "running".
#include <packtrain/dashboard/run_files.hpp>
#include <packtrain/dashboard/sampler.hpp>

#include <nlohmann/json.hpp>

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace packtrain::dashboard {

class TraceBuilder {
 public:
  // `start_unix` is the trace's time zero; `other_data` goes to "otherData".
  TraceBuilder(int rank, double start_unix, nlohmann::json other_data = nlohmann::json::object());

  // Names a track for each core (add_attempt names the cores it meets too).
  void add_cores(const std::vector<int>& cores);
  // One complete slice per core of `span`; `args` (slice_args) go with each.
  void add_attempt(const AttemptSpan& span, const nlohmann::json& args);
  // The compute and allreduce slices of one member's step of job `name`.
  void add_step(const StepSlice& step, const std::string& name);
  // Counter events for the values of `sample` that changed since the last one.
  void add_sample(const std::vector<Series>& series, const Sample& sample);

  // The whole file. `running` attempts (end 0) are drawn from their start
  // to `now` (unix seconds) with status "running".
  std::string text(const std::vector<std::pair<AttemptSpan, nlohmann::json>>& running = {}, double now = 0) const;

  double start_unix() const { return start_unix_; }
  std::size_t size_bytes() const { return events_.size(); }

 private:
  void add_event(const std::string& json_text);
  long long micros(double unix_seconds) const;
  std::string slice(const AttemptSpan& span, int core, double end, const nlohmann::json& args) const;

  int rank_;
  double start_unix_;
  nlohmann::json other_data_;
  std::string events_;                       // finished events, ",\n"-separated
  std::set<int> named_cores_;
  std::map<std::string, std::string> last_;  // counter track -> last value written
  std::set<int> step_ranks_;                 // ranks whose step tracks are named
  std::size_t step_slices_ = 0;
  std::size_t step_slices_dropped_ = 0;
};

constexpr int kComputeTrack = 1000000;
constexpr int kAllreduceTrack = 1000001;
constexpr std::size_t kMaxStepSlices = 200000;

// A slice's args: job id, attempt and status, then every scalar of `spec`
// (model, fold, schedule, ...), then, for a done attempt, every scalar of
// `metrics` (val_top1, ...).
nlohmann::json slice_args(const AttemptSpan& span, const nlohmann::json& spec, const nlohmann::json& metrics);

}  // namespace packtrain::dashboard
