#include "sim/text_report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <sstream>

#include "strategy/units.hpp"

namespace tandem::sim {
namespace {

std::string printf_string(const char* format, ...) __attribute__((format(printf, 1, 2)));
std::string printf_string(const char* format, ...) {
  char buffer[512];
  va_list args;
  va_start(args, format);
  std::vsnprintf(buffer, sizeof buffer, format, args);
  va_end(args);
  return buffer;
}

std::string algorithm_text(strategy::CollectiveAlgorithm algorithm) {
  return std::string(strategy::to_string(algorithm));
}

}  // namespace

std::string scenario_summary(const strategy::Scenario& scenario) {
  const auto& c = scenario.cluster;
  std::string text = std::to_string(c.gpus()) + (c.is_cpu() ? " CPU ranks" : " GPUs") + " (" + c.profile.name +
                     ", " + std::to_string(c.nodes) + " x " + std::to_string(c.gpus_per_node) + ", " +
                     std::string(strategy::to_string(c.fabric.topology));
  if (c.node_groups.size() > 1) text += ", " + std::to_string(c.node_groups.size()) + " node groups";
  if (c.has_wan())
    text += ", " + std::to_string(c.sites.size()) + " sites over a " + strategy::format_bandwidth(c.wan.bandwidth_bytes_per_s) +
            " / " + strategy::format_duration(c.wan.latency_s) + " WAN";
  text += ")";
  if (scenario.strategy) {
    const auto& s = *scenario.strategy;
    text += printf_string(", TP %d, PP %d, DP %d, CP %d, %s", s.tp, s.pp, s.dp, s.cp,
                          std::string(strategy::to_string(s.schedule)).c_str());
    if (s.schedule == strategy::Schedule::Interleaved) text += printf_string(" (v=%d)", s.virtual_stages);
    text += printf_string(", micro-batch %d, global batch %d, %d micro-batches, recompute %s%s, ZeRO-%d, %s",
                          s.micro_batch, s.global_batch, s.micro_batches(),
                          std::string(strategy::to_string(s.recompute)).c_str(), s.sequence_parallel ? ", SP" : "",
                          s.zero, std::string(strategy::to_string(s.precision)).c_str());
    if (s.outer.enabled()) {
      text += ", outer " + std::string(strategy::to_string(s.outer.method)) + " (H " + std::to_string(s.outer.inner_steps);
      if (s.outer.method == strategy::OuterMethod::StreamingDiLoCo)
        text += printf_string(", %d fragments, delay %d, %s", s.outer.fragments, s.outer.delay,
                              std::string(strategy::to_string(s.outer.quantize)).c_str());
      if (s.outer.method == strategy::OuterMethod::NoLoCo) text += ", groups of " + std::to_string(s.outer.group_size);
      text += ")";
    }
  }
  return text;
}

std::string format_memory(const MemorySummary& m) {
  return printf_string("%s of %s per GPU (%s; worst stage %d): weights %s, gradients %s, optimizer %s, activations %s",
                       strategy::format_bytes(m.peak_bytes_per_gpu).c_str(),
                       strategy::format_bytes(m.capacity_bytes).c_str(), m.fits ? "fits" : "DOES NOT FIT",
                       m.worst_stage, strategy::format_bytes(m.weights).c_str(),
                       strategy::format_bytes(m.gradients).c_str(), strategy::format_bytes(m.optimizer).c_str(),
                       strategy::format_bytes(m.activations).c_str());
}

std::string format_result(const strategy::Scenario& scenario, const SimulationResult& r) {
  std::ostringstream out;
  out << scenario.name << ": " << scenario_summary(scenario) << "\n\n";
  if (r.collective) {
    out << strategy::to_string(r.collective_kind) << " on " << r.gpus << " GPUs (nccl-tests conventions)\n";
    out << printf_string("%12s  %-13s %12s %12s %12s\n", "size", "algorithm", "time", "algbw", "busbw");
    for (const CollectiveRow& row : r.collective_rows) {
      out << printf_string("%12s  %-13s %12s %9.2f GB/s %7.2f GB/s\n", strategy::format_bytes(row.size_bytes).c_str(),
                           algorithm_text(row.algorithm).c_str(), strategy::format_duration(row.time_s).c_str(),
                           row.algbw_bytes_per_s / 1e9, row.busbw_bytes_per_s / 1e9);
      if (row.candidates.size() > 1)
        for (const CollectiveCandidate& c : row.candidates)
          out << printf_string("%12s    %-11s %12s%s\n", "", algorithm_text(c.algorithm).c_str(),
                               strategy::format_duration(c.time_s).c_str(), c.exact ? "" : "  (approximate fold)");
    }
    out << printf_string("\nsimulated in %.2f s\n", r.wall_seconds);
    return out.str();
  }
  out << printf_string("  step time              %s\n", strategy::format_duration(r.step_time_s).c_str());
  out << printf_string("  throughput             %.0f tokens/s\n", r.tokens_per_s);
  out << printf_string("  MFU                    %.1f %%\n", 100 * r.mfu);
  out << printf_string("  model TFLOP/s per GPU  %.1f\n", r.model_tflops_per_gpu);
  out << printf_string("  hardware TFLOP/s/GPU   %.1f (recomputation included)\n", r.hardware_tflops_per_gpu);
  out << "  memory                 " << format_memory(r.memory) << "\n";
  out << "\n  where the step goes (critical rank class)\n";
  const Breakdown& b = r.breakdown;
  const std::pair<const char*, double> parts[] = {
      {"compute", b.compute},           {"exposed TP comm", b.exposed_tp_comm},
      {"exposed DP comm", b.exposed_dp_comm}, {"exposed PP comm", b.exposed_pp_comm},
      {"exposed CP comm", b.exposed_cp_comm}, {"pipeline bubble", b.bubble},
      {"optimizer", b.optimizer},             {"outer sync", b.outer_sync}};
  for (const auto& [name, seconds] : parts) {
    if (!r.outer.present && std::string(name) == "outer sync") continue;
    out << printf_string("    %-20s %12s  %5.1f %%\n", name, strategy::format_duration(seconds).c_str(),
                         r.step_time_s > 0 ? 100 * seconds / r.step_time_s : 0.0);
  }
  if (r.outer.present) {
    const OuterTiming& o = r.outer;
    out << printf_string("\n  outer synchronisation (%s, every %d inner steps%s)\n", r.outer_method.c_str(), o.period,
                         o.overlap_steps > 0 ? printf_string(", overlapping %d", o.overlap_steps).c_str() : "");
    out << printf_string("    %-20s %12s\n", "inner step", strategy::format_duration(o.inner_step_s).c_str());
    out << printf_string("    %-20s %12s  (exchange; the update %s)\n", "one sync",
                         strategy::format_duration(o.exchange_s).c_str(), strategy::format_duration(o.update_s).c_str());
    out << printf_string("    %-20s %12s  (the step that waits for it: %s)\n", "exposed per sync",
                         strategy::format_duration(o.exposed_s).c_str(), strategy::format_duration(o.sync_step_s).c_str());
    out << printf_string("    %-20s %12s  (average)\n", "time per step", strategy::format_duration(r.step_time_s).c_str());
  }
  if (r.wan.present) {
    const WanTraffic& w = r.wan;
    out << "\n  wide-area link (between sites)\n";
    out << printf_string("    %-20s %12s  (inner step %s, one sync %s)\n", "bytes per step",
                         strategy::format_bytes(w.bytes_per_step).c_str(),
                         strategy::format_bytes(w.inner_bytes_per_step).c_str(), strategy::format_bytes(w.sync_bytes).c_str());
    out << printf_string("    %-20s %12s  (busiest link direction)\n", "peak bandwidth need",
                         strategy::format_bandwidth(w.peak_bandwidth_bytes_per_s).c_str());
    out << printf_string("    %-20s %12s\n", "average bandwidth", strategy::format_bandwidth(w.average_bandwidth_bytes_per_s).c_str());
  }
  if (r.training_days)
    out << printf_string("\n  time to train %.3g tokens: %.1f days, %.0f GPU-hours\n", *scenario.training.tokens,
                         *r.training_days, *r.training_gpu_hours);
  out << printf_string("\n  simulated %zu %s in %.2f s (%zu flows, %zu collectives simulated, %zu replayed)\n",
                       r.statistics.simulated_ranks, r.folded ? "rank classes (folded)" : "ranks (unfolded)",
                       r.wall_seconds, r.statistics.flows, r.statistics.collectives_simulated,
                       r.statistics.collectives_cached);
  if (!r.statistics.folding_exact) out << "  note: some collectives were folded by sampling (approximate)\n";
  return out.str();
}

std::string format_sweep(const std::vector<SweepResult>& results) {
  std::vector<const SweepResult*> simulated;
  std::vector<const SweepResult*> failed;
  for (const SweepResult& point : results) (point.simulated ? simulated : failed).push_back(&point);
  const bool collective = !simulated.empty() && simulated.front()->result.collective;
  auto key_of = [&](const SweepResult* p) {
    if (collective)
      return p->result.collective_rows.empty() ? 0.0 : p->result.collective_rows.back().time_s;
    return p->result.step_time_s;
  };
  std::stable_sort(simulated.begin(), simulated.end(), [&](auto* a, auto* b) { return key_of(a) < key_of(b); });
  auto overrides_text = [](const SweepResult* p) {
    std::string text;
    for (const auto& [key, value] : p->overrides) text += (text.empty() ? "" : " ") + key + "=" + value;
    return text.empty() ? std::string("(as written)") : text;
  };
  std::ostringstream out;
  std::size_t width = 10;
  for (const SweepResult& p : results) width = std::max(width, overrides_text(&p).size());
  if (collective) {
    out << printf_string("%-*s %14s %14s\n", static_cast<int>(width), "configuration", "time (largest)", "busbw");
    for (const SweepResult* p : simulated) {
      const auto& row = p->result.collective_rows.back();
      out << printf_string("%-*s %14s %9.2f GB/s\n", static_cast<int>(width), overrides_text(p).c_str(),
                           strategy::format_duration(row.time_s).c_str(), row.busbw_bytes_per_s / 1e9);
    }
  } else {
    const bool wan = std::any_of(simulated.begin(), simulated.end(), [](auto* p) { return p->result.wan.present; });
    out << printf_string("%-*s %12s %12s %7s %12s", static_cast<int>(width), "configuration", "step time",
                         "tokens/s", "MFU", "memory/GPU");
    if (wan) out << printf_string(" %12s %12s %12s", "WAN/step", "peak WAN bw", "sync time");
    out << "\n";
    for (const SweepResult* p : simulated) {
      const SimulationResult& r = p->result;
      out << printf_string("%-*s %12s %12.0f %6.1f%% %12s", static_cast<int>(width), overrides_text(p).c_str(),
                           strategy::format_duration(r.step_time_s).c_str(), r.tokens_per_s, 100 * r.mfu,
                           strategy::format_bytes(r.memory.peak_bytes_per_gpu).c_str());
      if (wan)
        out << printf_string(" %12s %12s %12s", strategy::format_bytes(r.wan.bytes_per_step).c_str(),
                             strategy::format_bandwidth(r.wan.peak_bandwidth_bytes_per_s).c_str(),
                             r.outer.present ? strategy::format_duration(r.outer.exchange_s).c_str() : "-");
      out << "  " << (p->feasible ? "" : "does not fit") << "\n";
    }
  }
  if (!failed.empty()) {
    out << "\ninfeasible:\n";
    for (const SweepResult* p : failed) out << "  " << overrides_text(p) << ": " << p->reason << "\n";
  }
  return out.str();
}

}  // namespace tandem::sim
