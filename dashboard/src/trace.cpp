#include <packtrain/dashboard/trace.hpp>

#include <algorithm>
#include <cmath>

namespace packtrain::dashboard {

TraceBuilder::TraceBuilder(int rank, double start_unix, nlohmann::json other_data)
    : rank_(rank), start_unix_(start_unix), other_data_(std::move(other_data)) {
  if (!other_data_.is_object()) other_data_ = nlohmann::json::object();
  other_data_["start_unix"] = start_unix_;
  other_data_["rank"] = rank_;
  other_data_["generator"] = "packtrain";
  const nlohmann::json process_name = {
      {"name", "process_name"}, {"ph", "M"}, {"pid", rank_}, {"tid", 0}, {"args", {{"name", "rank " + std::to_string(rank_)}}}};
  const nlohmann::json process_sort = {
      {"name", "process_sort_index"}, {"ph", "M"}, {"pid", rank_}, {"tid", 0}, {"args", {{"sort_index", rank_}}}};
  add_event(process_name.dump());
  add_event(process_sort.dump());
}

void TraceBuilder::add_event(const std::string& json_text) {
  if (!events_.empty()) events_ += ",\n";
  events_ += json_text;
}

long long TraceBuilder::micros(double unix_seconds) const {
  return std::max(0LL, std::llround((unix_seconds - start_unix_) * 1e6));
}

void TraceBuilder::add_cores(const std::vector<int>& cores) {
  for (int core : cores) {
    if (!named_cores_.insert(core).second) continue;
    const nlohmann::json name = {{"name", "thread_name"}, {"ph", "M"}, {"pid", rank_}, {"tid", core},
                                 {"args", {{"name", "core " + std::to_string(core)}}}};
    const nlohmann::json sort = {{"name", "thread_sort_index"}, {"ph", "M"}, {"pid", rank_}, {"tid", core},
                                 {"args", {{"sort_index", core}}}};
    add_event(name.dump());
    add_event(sort.dump());
  }
}

std::string TraceBuilder::slice(const AttemptSpan& span, int core, double end, const nlohmann::json& args) const {
  const long long ts = micros(span.start);
  const long long dur = std::max(1LL, micros(end) - ts);  // a zero-length slice is invisible
  const nlohmann::json event = {{"name", span.name}, {"cat", "job"}, {"ph", "X"}, {"ts", ts}, {"dur", dur},
                                {"pid", rank_}, {"tid", core}, {"args", args}};
  return event.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void TraceBuilder::add_attempt(const AttemptSpan& span, const nlohmann::json& args) {
  add_cores(span.cores);
  const double end = span.end > 0 ? span.end : span.start;
  for (int core : span.cores) add_event(slice(span, core, end, args));
}

void TraceBuilder::add_step(const StepSlice& step, const std::string& name) {
  if (step_slices_ + 2 > kMaxStepSlices) {
    step_slices_dropped_ += 2;
    other_data_["step_slices_dropped"] = step_slices_dropped_;
    return;
  }
  step_slices_ += 2;
  if (step_ranks_.insert(step.rank).second) {
    if (step.rank != rank_) {
      add_event(nlohmann::json({{"name", "process_name"}, {"ph", "M"}, {"pid", step.rank}, {"tid", 0},
                                {"args", {{"name", "rank " + std::to_string(step.rank)}}}})
                    .dump());
      add_event(nlohmann::json({{"name", "process_sort_index"}, {"ph", "M"}, {"pid", step.rank}, {"tid", 0},
                                {"args", {{"sort_index", step.rank}}}})
                    .dump());
    }
    for (const auto& [tid, track] : {std::pair{kComputeTrack, "compute"}, std::pair{kAllreduceTrack, "allreduce"}}) {
      add_event(nlohmann::json({{"name", "thread_name"}, {"ph", "M"}, {"pid", step.rank}, {"tid", tid},
                                {"args", {{"name", track}}}})
                    .dump());
      add_event(nlohmann::json({{"name", "thread_sort_index"}, {"ph", "M"}, {"pid", step.rank}, {"tid", tid},
                                {"args", {{"sort_index", tid}}}})
                    .dump());
    }
  }
  const auto add = [&](const char* what, int tid, double begin, double end) {
    const long long ts = micros(begin);
    const long long dur = std::max(1LL, micros(std::max(begin, end)) - ts);
    const nlohmann::json args = {{"job", step.job_id}, {"attempt", step.attempt}, {"step", step.step}, {"name", name}};
    add_event(nlohmann::json({{"name", what}, {"cat", "step"}, {"ph", "X"}, {"ts", ts}, {"dur", dur},
                              {"pid", step.rank}, {"tid", tid}, {"args", args}})
                  .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  };
  add("compute", kComputeTrack, step.compute_begin, step.compute_end);
  add("allreduce", kAllreduceTrack, step.sync_begin, step.sync_end);
}

void TraceBuilder::add_sample(const std::vector<Series>& series, const Sample& sample) {
  const long long ts = micros(sample.time);
  for (std::size_t i = 0; i < series.size() && i < sample.values.size(); ++i) {
    const auto& s = series[i];
    const bool fraction = s.kind == SeriesKind::core_busy || s.kind == SeriesKind::gpu_busy;
    // Percent to 0.1 for fractions, MiB to 0.1 for memory.
    const std::string value = short_number(fraction ? sample.values[i] * 100.0 : sample.values[i], 1);
    const std::string track = s.label();
    auto& last = last_[track];
    if (last == value) continue;
    last = value;
    const char* unit = fraction ? "busy %" : "MiB";
    add_event("{\"name\":\"" + track + "\",\"ph\":\"C\",\"ts\":" + std::to_string(ts) +
              ",\"pid\":" + std::to_string(rank_) + ",\"args\":{\"" + unit + "\":" + value + "}}");
  }
}

std::string TraceBuilder::text(const std::vector<std::pair<AttemptSpan, nlohmann::json>>& running, double now) const {
  std::string out;
  out.reserve(events_.size() + 256 + running.size() * 256);
  out += "{\"traceEvents\":[\n";
  out += events_;
  for (const auto& [span, args] : running) {
    AttemptSpan open = span;
    open.status = JobStatus::running;
    nlohmann::json open_args = args;
    open_args["status"] = "running";
    for (int core : span.cores) {
      if (!named_cores_.count(core)) {
        const nlohmann::json name = {{"name", "thread_name"}, {"ph", "M"}, {"pid", rank_}, {"tid", core},
                                     {"args", {{"name", "core " + std::to_string(core)}}}};
        out += ",\n" + name.dump();
      }
      out += ",\n" + slice(open, core, std::max(now, span.start), open_args);
    }
  }
  out += "\n],\"displayTimeUnit\":\"ms\",\"otherData\":";
  out += other_data_.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  out += "}\n";
  return out;
}

nlohmann::json slice_args(const AttemptSpan& span, const nlohmann::json& spec, const nlohmann::json& metrics) {
  nlohmann::json args = {{"job", span.job_id}, {"attempt", span.attempt}, {"status", std::string(to_string(span.status))}};
  auto add_scalars = [&args](const nlohmann::json& from) {
    if (!from.is_object()) return;
    for (const auto& [key, value] : from.items())
      if (value.is_primitive() && !args.contains(key)) args[key] = value;
  };
  add_scalars(spec);
  if (span.status == JobStatus::done || span.status == JobStatus::diverged) add_scalars(metrics);
  return args;
}

}  // namespace packtrain::dashboard
