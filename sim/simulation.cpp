#include "sim/simulation.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <thread>

#include "strategy/engine_support.hpp"
#include "strategy/model_formulas.hpp"
#include "strategy/units.hpp"

namespace tandem::sim {

using nlohmann::json;

// ---- metrics ----------------------------------------------------------------------------------

MemorySummary summarize_memory(const strategy::Scenario& scenario) {
  MemorySummary summary;
  if (!scenario.model || !scenario.strategy) return summary;
  const strategy::MemoryEstimate estimate = strategy::estimate_memory(scenario);
  const strategy::StageMemory& worst = estimate.worst();
  summary.peak_bytes_per_gpu = worst.total();
  summary.weights = worst.weights;
  summary.gradients = worst.gradients;
  summary.optimizer = worst.optimizer;
  summary.activations = worst.activations;
  summary.capacity_bytes = estimate.capacity_bytes;
  summary.fits = estimate.fits;
  summary.worst_stage = estimate.worst_stage;
  return summary;
}

namespace {

double mean_peak_flops(const strategy::Scenario& scenario) {
  const auto& cluster = scenario.cluster;
  const strategy::Precision precision = scenario.strategy->precision;
  double total = 0;
  int nodes = 0;
  for (const auto& group : cluster.node_groups) {
    double peak = group.profile.peak_flops(precision);
    if (peak <= 0) peak = group.profile.peak_flops_bf16;
    if (group.profile.shared_cores) {
      const double threads = cluster.threads_per_rank;
      const double wanted = threads * cluster.gpus();
      const double share = group.profile.cores > 0 ? std::min(1.0, group.profile.cores / wanted) : 1.0;
      peak *= threads * share;
    }
    total += peak * group.nodes;
    nodes += group.nodes;
  }
  return nodes > 0 ? total / nodes : cluster.profile.peak_flops(precision);
}

}  // namespace

SimulationResult simulate_in_process(const strategy::Scenario& scenario, const SimulationOptions& options,
                                     const ProgressCallback& progress) {
  const auto wall_start = std::chrono::steady_clock::now();
  SimulationResult result;
  result.name = scenario.name;
  result.gpus = scenario.cluster.gpus();
  result.folded = options.fold;
  if (scenario.is_collective()) {
    result.collective = true;
    result.collective_kind = scenario.collective->kind;
    CollectiveOptions collective;
    collective.fold = options.fold;
    collective.flow_budget = options.flow_budget;
    collective.verbose = options.verbose;
    if (progress) progress(0);
    result.collective_rows = simulate_collective(scenario, collective);
    if (progress) progress(1);
  } else {
    ExecutorOptions executor;
    executor.fold = options.fold;
    executor.flow_budget = options.flow_budget;
    executor.record_trace = options.record_trace;
    executor.verbose = options.verbose;
    executor.progress = progress;
    ExecutionResult execution = execute_step(scenario, executor);
    const auto& model = *scenario.model;
    const auto& strategy = *scenario.strategy;
    result.step_time_s = execution.step_time_s;
    result.breakdown = execution.breakdown;
    result.outer_method = std::string(strategy::to_string(strategy.outer.method));
    result.outer = execution.outer;
    result.wan = execution.wan;
    result.classes = std::move(execution.classes);
    result.statistics = std::move(execution.statistics);
    result.trace = std::move(execution.trace);
    const double executed_flops = execution.executed_flops;
    const double tokens = static_cast<double>(strategy.global_batch) * model.seq_len;
    const double gpus = result.gpus;
    if (result.step_time_s > 0) {
      result.tokens_per_s = tokens / result.step_time_s;
      const double model_flops = strategy::model_flops_per_step(model, strategy.global_batch);
      result.model_tflops_per_gpu = model_flops / result.step_time_s / gpus / 1e12;
      result.mfu = model_flops / result.step_time_s / gpus / mean_peak_flops(scenario);
      result.hardware_tflops_per_gpu = executed_flops / result.step_time_s / gpus / 1e12;
      if (scenario.training.tokens) {
        const double seconds = *scenario.training.tokens / result.tokens_per_s;
        result.training_days = seconds / 86400;
        result.training_gpu_hours = seconds * gpus / 3600;
      }
    }
    result.memory = summarize_memory(scenario);
  }
  result.ok = true;
  result.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  return result;
}

// ---- JSON -------------------------------------------------------------------------------------

namespace {

const char* kind_name(strategy::CollectiveKind kind) {
  switch (kind) {
    case strategy::CollectiveKind::AllReduce: return "all-reduce";
    case strategy::CollectiveKind::ReduceScatter: return "reduce-scatter";
    case strategy::CollectiveKind::AllGather: return "all-gather";
    case strategy::CollectiveKind::AllToAll: return "all-to-all";
    case strategy::CollectiveKind::Broadcast: return "broadcast";
    case strategy::CollectiveKind::SendRecv: return "send-recv";
  }
  return "all-reduce";
}

strategy::CollectiveKind kind_from_name(const std::string& name) {
  for (auto kind : {strategy::CollectiveKind::AllReduce, strategy::CollectiveKind::ReduceScatter,
                    strategy::CollectiveKind::AllGather, strategy::CollectiveKind::AllToAll,
                    strategy::CollectiveKind::Broadcast, strategy::CollectiveKind::SendRecv})
    if (name == kind_name(kind)) return kind;
  return strategy::CollectiveKind::AllReduce;
}

const char* algorithm_name(strategy::CollectiveAlgorithm algorithm) {
  switch (algorithm) {
    case strategy::CollectiveAlgorithm::Auto: return "auto";
    case strategy::CollectiveAlgorithm::Ring: return "ring";
    case strategy::CollectiveAlgorithm::Tree: return "tree";
    case strategy::CollectiveAlgorithm::Hierarchical: return "hierarchical";
  }
  return "ring";
}

strategy::CollectiveAlgorithm algorithm_from_name(const std::string& name) {
  if (name == "tree") return strategy::CollectiveAlgorithm::Tree;
  if (name == "hierarchical") return strategy::CollectiveAlgorithm::Hierarchical;
  if (name == "auto") return strategy::CollectiveAlgorithm::Auto;
  return strategy::CollectiveAlgorithm::Ring;
}

}  // namespace

json result_to_json(const SimulationResult& r) {
  json j;
  j["name"] = r.name;
  j["gpus"] = r.gpus;
  j["simulation_wall_s"] = r.wall_seconds;
  if (!r.ok) j["error"] = r.error;
  if (r.collective) {
    j["kind"] = kind_name(r.collective_kind);
    json rows = json::array();
    for (const CollectiveRow& row : r.collective_rows) {
      json candidates = json::array();
      for (const CollectiveCandidate& c : row.candidates)
        candidates.push_back({{"algorithm", algorithm_name(c.algorithm)},
                              {"time_s", c.time_s},
                              {"flows", c.flows},
                              {"transfers", c.transfers},
                              {"exact", c.exact},
                              {"folding", c.folding}});
      rows.push_back({{"size_bytes", row.size_bytes},
                      {"algorithm", algorithm_name(row.algorithm)},
                      {"time_s", row.time_s},
                      {"algbw_GBps", row.algbw_bytes_per_s / 1e9},
                      {"busbw_GBps", row.busbw_bytes_per_s / 1e9},
                      {"candidates", candidates}});
    }
    j["collective"] = rows;
    return j;
  }
  j["step_time_s"] = r.step_time_s;
  j["tokens_per_s"] = r.tokens_per_s;
  j["mfu"] = r.mfu;
  j["model_tflops_per_gpu"] = r.model_tflops_per_gpu;
  j["hardware_tflops_per_gpu"] = r.hardware_tflops_per_gpu;
  j["memory"] = {{"peak_bytes_per_gpu", r.memory.peak_bytes_per_gpu},
                 {"weights", r.memory.weights},
                 {"gradients", r.memory.gradients},
                 {"optimizer", r.memory.optimizer},
                 {"activations", r.memory.activations},
                 {"capacity_bytes", r.memory.capacity_bytes},
                 {"fits", r.memory.fits},
                 {"worst_stage", r.memory.worst_stage}};
  j["breakdown_s"] = {{"compute", r.breakdown.compute},
                      {"exposed_tp_comm", r.breakdown.exposed_tp_comm},
                      {"exposed_dp_comm", r.breakdown.exposed_dp_comm},
                      {"exposed_pp_comm", r.breakdown.exposed_pp_comm},
                      {"exposed_cp_comm", r.breakdown.exposed_cp_comm},
                      {"bubble", r.breakdown.bubble},
                      {"optimizer", r.breakdown.optimizer},
                      {"outer_sync", r.breakdown.outer_sync}};
  if (r.outer.present || r.outer_method != "none")
    j["outer"] = {{"method", r.outer_method},
                  {"period_steps", r.outer.period},
                  {"overlap_steps", r.outer.overlap_steps},
                  {"inner_step_s", r.outer.inner_step_s},
                  {"exchange_s", r.outer.exchange_s},
                  {"update_s", r.outer.update_s},
                  {"exposed_s", r.outer.exposed_s},
                  {"sync_step_s", r.outer.sync_step_s}};
  if (r.wan.present)
    j["wan"] = {{"bytes_per_step", r.wan.bytes_per_step},
                {"inner_bytes_per_step", r.wan.inner_bytes_per_step},
                {"inner_busiest_link_bytes", r.wan.inner_busiest_link_bytes},
                {"sync_bytes", r.wan.sync_bytes},
                {"sync_busiest_link_bytes", r.wan.sync_busiest_link_bytes},
                {"peak_bandwidth_Bps", r.wan.peak_bandwidth_bytes_per_s},
                {"average_bandwidth_Bps", r.wan.average_bandwidth_bytes_per_s}};
  if (r.training_days) {
    j["days"] = *r.training_days;
    j["gpu_hours"] = *r.training_gpu_hours;
  }
  json classes = json::array();
  for (const ClassTiming& c : r.classes)
    classes.push_back({{"class", c.class_id},
                       {"rank", c.rank},
                       {"ranks", c.ranks},
                       {"pipeline_stage", c.pipeline_stage},
                       {"node_group", c.node_group},
                       {"site", c.site},
                       {"step_end_s", c.step_end_s},
                       {"compute_busy_s", c.compute_busy_s}});
  j["classes"] = classes;
  const ExecutorStatistics& s = r.statistics;
  j["simulation"] = {{"folded", r.folded},
                     {"simulated_ranks", s.simulated_ranks},
                     {"ops", s.ops},
                     {"compute_executions", s.compute_executions},
                     {"flows", s.flows},
                     {"collectives_simulated", s.collectives_simulated},
                     {"collectives_cached", s.collectives_cached},
                     {"replays_overlapped", s.replays_overlapped},
                     {"hosts", s.hosts},
                     {"links", s.links},
                     {"folding_exact", s.folding_exact},
                     {"folding", s.folding_notes},
                     {"wall_s", s.wall_seconds}};
  return j;
}

SimulationResult result_from_json(const json& j) {
  SimulationResult r;
  r.ok = !j.contains("error");
  if (!r.ok) r.error = j.at("error").get<std::string>();
  r.name = j.value("name", "");
  r.gpus = j.value("gpus", 0);
  r.wall_seconds = j.value("simulation_wall_s", 0.0);
  if (j.contains("collective")) {
    r.collective = true;
    r.collective_kind = kind_from_name(j.value("kind", "all-reduce"));
    for (const json& row : j.at("collective")) {
      CollectiveRow out;
      out.size_bytes = row.at("size_bytes").get<double>();
      out.algorithm = algorithm_from_name(row.at("algorithm").get<std::string>());
      out.time_s = row.at("time_s").get<double>();
      out.algbw_bytes_per_s = row.at("algbw_GBps").get<double>() * 1e9;
      out.busbw_bytes_per_s = row.at("busbw_GBps").get<double>() * 1e9;
      for (const json& c : row.value("candidates", json::array())) {
        CollectiveCandidate candidate;
        candidate.algorithm = algorithm_from_name(c.at("algorithm").get<std::string>());
        candidate.time_s = c.at("time_s").get<double>();
        candidate.flows = c.value("flows", std::size_t{0});
        candidate.transfers = c.value("transfers", std::size_t{0});
        candidate.exact = c.value("exact", true);
        candidate.folding = c.value("folding", "");
        out.candidates.push_back(candidate);
      }
      r.collective_rows.push_back(out);
    }
    return r;
  }
  if (!j.contains("step_time_s")) return r;
  r.step_time_s = j.at("step_time_s").get<double>();
  r.tokens_per_s = j.at("tokens_per_s").get<double>();
  r.mfu = j.at("mfu").get<double>();
  r.model_tflops_per_gpu = j.at("model_tflops_per_gpu").get<double>();
  r.hardware_tflops_per_gpu = j.at("hardware_tflops_per_gpu").get<double>();
  const json& m = j.at("memory");
  r.memory.peak_bytes_per_gpu = m.at("peak_bytes_per_gpu").get<double>();
  r.memory.weights = m.at("weights").get<double>();
  r.memory.gradients = m.at("gradients").get<double>();
  r.memory.optimizer = m.at("optimizer").get<double>();
  r.memory.activations = m.at("activations").get<double>();
  r.memory.capacity_bytes = m.at("capacity_bytes").get<double>();
  r.memory.fits = m.at("fits").get<bool>();
  r.memory.worst_stage = m.value("worst_stage", 0);
  const json& b = j.at("breakdown_s");
  r.breakdown.compute = b.at("compute").get<double>();
  r.breakdown.exposed_tp_comm = b.at("exposed_tp_comm").get<double>();
  r.breakdown.exposed_dp_comm = b.at("exposed_dp_comm").get<double>();
  r.breakdown.exposed_pp_comm = b.at("exposed_pp_comm").get<double>();
  r.breakdown.exposed_cp_comm = b.at("exposed_cp_comm").get<double>();
  r.breakdown.bubble = b.at("bubble").get<double>();
  r.breakdown.optimizer = b.at("optimizer").get<double>();
  r.breakdown.outer_sync = b.value("outer_sync", 0.0);
  if (j.contains("outer")) {
    const json& o = j.at("outer");
    r.outer_method = o.value("method", "none");
    r.outer.period = o.value("period_steps", 1);
    r.outer.present = r.outer.period > 1 || r.outer_method != "none";
    r.outer.overlap_steps = o.value("overlap_steps", 0);
    r.outer.inner_step_s = o.value("inner_step_s", 0.0);
    r.outer.exchange_s = o.value("exchange_s", 0.0);
    r.outer.update_s = o.value("update_s", 0.0);
    r.outer.exposed_s = o.value("exposed_s", 0.0);
    r.outer.sync_step_s = o.value("sync_step_s", 0.0);
  }
  if (j.contains("wan")) {
    const json& w = j.at("wan");
    r.wan.present = true;
    r.wan.bytes_per_step = w.value("bytes_per_step", 0.0);
    r.wan.inner_bytes_per_step = w.value("inner_bytes_per_step", 0.0);
    r.wan.inner_busiest_link_bytes = w.value("inner_busiest_link_bytes", 0.0);
    r.wan.sync_bytes = w.value("sync_bytes", 0.0);
    r.wan.sync_busiest_link_bytes = w.value("sync_busiest_link_bytes", 0.0);
    r.wan.peak_bandwidth_bytes_per_s = w.value("peak_bandwidth_Bps", 0.0);
    r.wan.average_bandwidth_bytes_per_s = w.value("average_bandwidth_Bps", 0.0);
  }
  if (j.contains("days")) {
    r.training_days = j.at("days").get<double>();
    r.training_gpu_hours = j.at("gpu_hours").get<double>();
  }
  for (const json& c : j.value("classes", json::array())) {
    ClassTiming t;
    t.class_id = c.at("class").get<int>();
    t.rank = c.at("rank").get<int>();
    t.ranks = c.at("ranks").get<int>();
    t.pipeline_stage = c.at("pipeline_stage").get<int>();
    t.node_group = c.at("node_group").get<int>();
    t.site = c.value("site", 0);
    t.step_end_s = c.at("step_end_s").get<double>();
    t.compute_busy_s = c.at("compute_busy_s").get<double>();
    r.classes.push_back(t);
  }
  if (j.contains("simulation")) {
    const json& s = j.at("simulation");
    r.folded = s.value("folded", true);
    r.statistics.simulated_ranks = s.value("simulated_ranks", std::size_t{0});
    r.statistics.ops = s.value("ops", std::size_t{0});
    r.statistics.compute_executions = s.value("compute_executions", std::size_t{0});
    r.statistics.flows = s.value("flows", std::size_t{0});
    r.statistics.collectives_simulated = s.value("collectives_simulated", std::size_t{0});
    r.statistics.collectives_cached = s.value("collectives_cached", std::size_t{0});
    r.statistics.replays_overlapped = s.value("replays_overlapped", std::size_t{0});
    r.statistics.hosts = s.value("hosts", std::size_t{0});
    r.statistics.links = s.value("links", std::size_t{0});
    r.statistics.folding_exact = s.value("folding_exact", true);
    r.statistics.folding_notes = s.value("folding", std::vector<std::string>{});
    r.statistics.wall_seconds = s.value("wall_s", 0.0);
  }
  return r;
}

json sweep_to_json(const std::vector<SweepResult>& results) {
  json list = json::array();
  for (const SweepResult& point : results) {
    json entry = point.simulated && point.result.ok ? result_to_json(point.result) : json::object();
    json overrides = json::object();
    for (const auto& [key, value] : point.overrides) overrides[key] = value;
    entry["overrides"] = overrides;
    entry["feasible"] = point.feasible;
    entry["reason"] = point.feasible ? json(nullptr) : json(point.reason);
    list.push_back(std::move(entry));
  }
  return {{"results", list}};
}

// ---- child processes --------------------------------------------------------------------------

namespace {

// Frames on the pipe: one type byte, an 8-byte length, the payload.
enum : char { kFrameProgress = 'P', kFrameResult = 'R', kFrameTrace = 'T', kFrameError = 'E' };

bool write_all(int fd, const void* data, std::size_t size) {
  const char* bytes = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t written = ::write(fd, bytes, size);
    if (written < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    bytes += written;
    size -= static_cast<std::size_t>(written);
  }
  return true;
}

bool write_frame(int fd, char type, const void* data, std::uint64_t size) {
  return write_all(fd, &type, 1) && write_all(fd, &size, sizeof size) && (size == 0 || write_all(fd, data, size));
}

// A running child and what it has sent so far.
struct Child {
  pid_t pid = -1;
  int fd = -1;
  std::string buffer;
  bool eof = false;
  std::string result_json;
  std::string error;
  std::vector<report::TraceRecord> trace;
  bool has_result = false;
};

Child start_child(const strategy::Scenario& scenario, const SimulationOptions& options, bool send_progress) {
  int fds[2];
  if (::pipe(fds) != 0) throw std::runtime_error(std::string("cannot create a pipe: ") + std::strerror(errno));
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    throw std::runtime_error(std::string("cannot fork a simulation process: ") + std::strerror(errno));
  }
  if (pid == 0) {
    ::close(fds[0]);
    ::signal(SIGPIPE, SIG_IGN);
    const int fd = fds[1];
    try {
      ProgressCallback progress;
      if (send_progress) {
        progress = [fd](double fraction) { write_frame(fd, kFrameProgress, &fraction, sizeof fraction); };
      }
      SimulationResult result = simulate_in_process(scenario, options, progress);
      const std::string text = result_to_json(result).dump();
      if (!result.trace.empty())
        write_frame(fd, kFrameTrace, result.trace.data(), result.trace.size() * sizeof(report::TraceRecord));
      write_frame(fd, kFrameResult, text.data(), text.size());
    } catch (const std::exception& error) {
      const std::string text = error.what();
      write_frame(fd, kFrameError, text.data(), text.size());
    } catch (...) {
      const std::string text = "unknown error in the simulation process";
      write_frame(fd, kFrameError, text.data(), text.size());
    }
    ::close(fd);
    ::_exit(0);
  }
  ::close(fds[1]);
  Child child;
  child.pid = pid;
  child.fd = fds[0];
  return child;
}

// Reads what is available; parses complete frames.
void read_child(Child& child, const ProgressCallback& progress) {
  char chunk[1 << 16];
  const ssize_t got = ::read(child.fd, chunk, sizeof chunk);
  if (got < 0) {
    if (errno == EINTR || errno == EAGAIN) return;
    child.eof = true;
    return;
  }
  if (got == 0) {
    child.eof = true;
    return;
  }
  child.buffer.append(chunk, static_cast<std::size_t>(got));
  std::size_t offset = 0;
  while (child.buffer.size() - offset >= 9) {
    const char type = child.buffer[offset];
    std::uint64_t size = 0;
    std::memcpy(&size, child.buffer.data() + offset + 1, sizeof size);
    if (child.buffer.size() - offset - 9 < size) break;
    const char* payload = child.buffer.data() + offset + 9;
    switch (type) {
      case kFrameProgress: {
        double fraction = 0;
        std::memcpy(&fraction, payload, sizeof fraction);
        if (progress) progress(fraction);
        break;
      }
      case kFrameResult:
        child.result_json.assign(payload, size);
        child.has_result = true;
        break;
      case kFrameTrace:
        child.trace.resize(size / sizeof(report::TraceRecord));
        std::memcpy(child.trace.data(), payload, child.trace.size() * sizeof(report::TraceRecord));
        break;
      case kFrameError:
        child.error.assign(payload, size);
        break;
      default:
        child.error = "garbled message from the simulation process";
        break;
    }
    offset += 9 + size;
  }
  child.buffer.erase(0, offset);
}

SimulationResult finish_child(Child& child, bool cancelled) {
  if (child.fd >= 0) ::close(child.fd);
  child.fd = -1;
  int status = 0;
  while (::waitpid(child.pid, &status, 0) < 0 && errno == EINTR) {
  }
  SimulationResult result;
  if (cancelled) {
    result.error = "simulation cancelled";
    return result;
  }
  if (!child.error.empty()) {
    result.error = child.error;
    return result;
  }
  if (!child.has_result) {
    if (WIFSIGNALED(status))
      result.error = std::string("the simulation process crashed (signal ") + std::to_string(WTERMSIG(status)) +
                     ": " + strsignal(WTERMSIG(status)) + ")";
    else
      result.error = "the simulation process ended without a result (exit status " +
                     std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + ")";
    return result;
  }
  try {
    result = result_from_json(json::parse(child.result_json));
  } catch (const std::exception& error) {
    result = SimulationResult{};
    result.error = std::string("unreadable result from the simulation process: ") + error.what();
    return result;
  }
  result.trace = std::move(child.trace);
  return result;
}

}  // namespace

SimulationResult run_simulation_in_child(const strategy::Scenario& scenario, const SimulationOptions& options,
                                         const ProgressCallback& progress, const CancelToken* cancel) {
  Child child = start_child(scenario, options, static_cast<bool>(progress));
  bool cancelled = false;
  while (!child.eof) {
    if (cancel != nullptr && cancel->cancelled) {
      ::kill(child.pid, SIGKILL);
      cancelled = true;
      break;
    }
    pollfd fd{child.fd, POLLIN, 0};
    const int ready = ::poll(&fd, 1, 100);
    if (ready > 0) read_child(child, progress);
  }
  return finish_child(child, cancelled);
}

// ---- sweeps -----------------------------------------------------------------------------------

namespace {

std::string join_errors(const strategy::ScenarioError& error) {
  std::string text;
  for (const auto& e : error.errors()) text += (text.empty() ? "" : "; ") + e.message();
  return text;
}

std::string memory_reason(const MemorySummary& memory) {
  return "does not fit in GPU memory: " + strategy::format_bytes(memory.peak_bytes_per_gpu) + " per GPU (stage " +
         std::to_string(memory.worst_stage) + ") > " + strategy::format_bytes(memory.capacity_bytes);
}

}  // namespace

std::vector<SweepResult> run_sweep(const strategy::Scenario& base, const std::vector<strategy::SweepAxis>& axes,
                                   const SweepOptions& options, const SweepProgressCallback& progress,
                                   const CancelToken* cancel) {
  const auto points = strategy::sweep_points(axes);
  std::vector<SweepResult> results(points.size());
  std::vector<std::optional<strategy::Scenario>> scenarios(points.size());
  YAML::Node document = YAML::Clone(base.document);
  if (document.IsMap() && document["sweep"]) document.remove("sweep");
  for (std::size_t i = 0; i < points.size(); ++i) {
    SweepResult& point = results[i];
    point.overrides = points[i];
    point.base_dir = base.base_dir;
    try {
      YAML::Node current = document;
      for (const auto& [key, value] : points[i]) current = strategy::with_override(current, key, value);
      point.document = current;
      scenarios[i] = strategy::scenario_from_document(current, base.base_dir);
      if (options.for_engine || (scenarios[i]->cluster.is_cpu() && !scenarios[i]->is_collective())) {
        const auto unsupported = strategy::engine_unsupported(*scenarios[i]);
        if (!unsupported.empty()) {
          point.reason = "engine train cannot run it: " + join_errors(strategy::ScenarioError(unsupported));
          scenarios[i].reset();
        }
      }
    } catch (const strategy::ScenarioError& error) {
      point.reason = join_errors(error);
    } catch (const std::exception& error) {
      point.reason = error.what();
    }
  }
  int jobs = options.jobs > 0 ? options.jobs : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::size_t next = 0;
  std::size_t done = 0;
  std::vector<std::pair<std::size_t, Child>> running;
  auto advance = [&]() {
    while (next < points.size() && !scenarios[next]) {
      ++next;
      ++done;
      if (progress) progress(done, points.size());
    }
  };
  advance();
  while (next < points.size() || !running.empty()) {
    if (cancel != nullptr && cancel->cancelled) {
      for (auto& [index, child] : running) {
        ::kill(child.pid, SIGKILL);
        results[index].result = finish_child(child, true);
        results[index].reason = "cancelled";
      }
      break;
    }
    while (static_cast<int>(running.size()) < jobs && next < points.size()) {
      running.emplace_back(next, start_child(*scenarios[next], options.simulation, false));
      ++next;
      advance();
    }
    std::vector<pollfd> fds;
    for (auto& [index, child] : running) fds.push_back({child.fd, POLLIN, 0});
    if (::poll(fds.data(), fds.size(), 100) <= 0) continue;
    for (std::size_t k = 0; k < running.size(); ++k)
      if (fds[k].revents != 0) read_child(running[k].second, {});
    for (auto it = running.begin(); it != running.end();) {
      if (!it->second.eof) {
        ++it;
        continue;
      }
      SweepResult& point = results[it->first];
      point.result = finish_child(it->second, false);
      point.simulated = point.result.ok;
      if (!point.result.ok) {
        point.reason = point.result.error;
      } else if (!point.result.collective && !point.result.memory.fits) {
        point.reason = memory_reason(point.result.memory);
      } else {
        point.feasible = true;
      }
      it = running.erase(it);
      ++done;
      if (progress) progress(done, points.size());
    }
  }
  return results;
}

const SweepResult* best_sweep_result(const std::vector<SweepResult>& results) {
  const SweepResult* best = nullptr;
  for (const SweepResult& point : results) {
    if (!point.feasible || point.result.collective) continue;
    if (best == nullptr || point.result.step_time_s < best->result.step_time_s) best = &point;
  }
  return best;
}

YAML::Node best_scenario_document(const SweepResult& point) {
  YAML::Node document = YAML::Clone(point.document);
  if (document["sweep"]) document.remove("sweep");
  if (document["predicted"]) document.remove("predicted");
  const strategy::Scenario scenario = strategy::scenario_from_document(document, point.base_dir);
  if (scenario.strategy) document["strategy"]["dp"] = scenario.strategy->dp;
  YAML::Node predicted(YAML::NodeType::Map);
  predicted["step_time_s"] = point.result.step_time_s;
  predicted["tokens_per_s"] = point.result.tokens_per_s;
  predicted["mfu"] = point.result.mfu;
  predicted["peak_bytes_per_gpu"] = point.result.memory.peak_bytes_per_gpu;
  predicted["profile"] = scenario.cluster.profile.name;
  document["predicted"] = predicted;
  return document;
}

}  // namespace tandem::sim
