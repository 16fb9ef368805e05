// tandem-calibrate fit-nccl: network parameters of a GPU profile from raw nccl-tests logs.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>

#include <spdlog/spdlog.h>

#include "calibration/commands.hpp"
#include "calibration/network_fit.hpp"
#include "report/atomic_file.hpp"
#include "strategy/units.hpp"
#include "strategy/validation_error.hpp"

namespace tandem::calibration {
namespace fs = std::filesystem;

namespace {

// Files as given; folders searched (recursively) for *.log / *.txt, in name order.
std::vector<fs::path> expand_logs(const std::vector<std::string>& arguments, std::string& error) {
  std::vector<fs::path> files;
  for (const std::string& argument : arguments) {
    const fs::path path(argument);
    std::error_code code;
    if (fs::is_directory(path, code)) {
      std::vector<fs::path> found;
      for (const auto& entry : fs::recursive_directory_iterator(path, code)) {
        const auto extension = entry.path().extension();
        if (entry.is_regular_file() && (extension == ".log" || extension == ".txt")) found.push_back(entry.path());
      }
      std::sort(found.begin(), found.end());
      if (found.empty()) {
        error = "no *.log or *.txt file under " + argument;
        return {};
      }
      files.insert(files.end(), found.begin(), found.end());
    } else if (fs::is_regular_file(path, code)) {
      files.push_back(path);
    } else {
      error = "no such file or folder: " + argument;
      return {};
    }
  }
  return files;
}

std::string percent(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%+.1f%%", value);
  return text;
}

std::string microseconds(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2fus", seconds * 1e6);
  return text;
}

std::string gbps(double bytes_per_s) {
  if (bytes_per_s <= 0) return "none";
  char text[32];
  std::snprintf(text, sizeof text, "%.1fGB/s", bytes_per_s / 1e9);
  return text;
}

}  // namespace

int run_fit_nccl(const FitNcclArguments& arguments, const CommonOptions& common) {
  (void)common;
  double min_size = 0;
  try {
    min_size = strategy::parse_bytes(arguments.min_size);
  } catch (const std::exception& error) {
    std::cerr << "error: --min-size " << arguments.min_size << ": " << error.what() << "\n";
    return kExitBadInput;
  }
  strategy::HardwareProfile base;
  try {
    base = strategy::load_hardware_profile(arguments.gpu, fs::current_path(), "--gpu");
  } catch (const strategy::ScenarioError& error) {
    for (const auto& e : error.errors()) std::cerr << "error: " << e.message() << "\n";
    return kExitBadInput;
  }
  if (base.backend != "cuda") {
    std::cerr << "error: --gpu " << arguments.gpu << ": a " << base.backend
              << " profile; nccl-tests logs describe a GPU cluster (give a cuda profile, e.g. a100-40gb)\n";
    return kExitBadInput;
  }

  std::vector<NcclPoint> points;
  std::vector<std::string> skipped;
  std::set<std::string> models;
  for (const bool held_out : {false, true}) {
    std::string error;
    const auto files = expand_logs(held_out ? arguments.held_out : arguments.logs, error);
    if (!error.empty()) {
      std::cerr << "error: " << (held_out ? "--held-out: " : "") << error << "\n";
      return kExitBadInput;
    }
    std::vector<NcclLog> logs;
    for (const fs::path& file : files) {
      try {
        logs.push_back(read_nccl_log(file));
      } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << "\n";
        return kExitBadInput;
      }
      for (const std::string& warning : logs.back().warnings) spdlog::debug("{}", warning);
      if (logs.back().sections.empty()) spdlog::warn("{}: no nccl-tests result table found", file.string());
      for (const auto& section : logs.back().sections)
        if (!section.gpu_model.empty()) models.insert(section.gpu_model);
    }
    auto found = points_from_logs(logs, base, held_out, &skipped);
    points.insert(points.end(), found.begin(), found.end());
  }
  for (const std::string& why : skipped) spdlog::info("skipped {}", why);
  for (const std::string& model : models) spdlog::info("logs measured on {}; base profile {}", model, base.name);

  NetworkFitOptions options;
  options.min_size_bytes = min_size;
  options.verbose = common.verbose;
  NetworkFitResult fit;
  try {
    fit = fit_network(points, base, options);
  } catch (const std::invalid_argument& error) {
    std::cerr << "error: " << error.what() << " (" << points.size() << " points parsed; sizes >= "
              << arguments.min_size << " are fitted)\n";
    return kExitBadInput;
  }

  // The written profile: the base with the fitted numbers, its sources saying where they came from.
  strategy::HardwareProfile profile = fit.profile;
  profile.name = arguments.name.empty() ? base.name + "-fitted" : arguments.name;
  std::set<std::string> fitted_files;
  for (const NcclPoint& p : points)
    if (!p.held_out) fitted_files.insert(fs::path(p.file).filename().string());
  std::string file_list;
  for (const std::string& f : fitted_files) file_list += (file_list.empty() ? "" : ", ") + f;
  char line[512];
  std::snprintf(line, sizeof line,
                "tandem-calibrate fit-nccl on %zu busbw points >= %s (%s): collective_efficiency %.4f, "
                "intra_node.latency %.2f us, nic_efficiency %.4f, nic.latency %.2f us, collective_latency %.2f us, "
                "tree_bandwidth %.1f GB/s, ll_tree_bandwidth %.1f GB/s, ll_latency_saving %.2f us, "
                "p2p_bandwidth %.1f GB/s (rms log error %.3f -> %.3f)",
                fit.fitted_points, arguments.min_size.c_str(), file_list.c_str(), fit.fitted.nvlink_efficiency,
                fit.fitted.nvlink_latency_s * 1e6, fit.fitted.nic_efficiency, fit.fitted.nic_latency_s * 1e6,
                fit.fitted.collective_latency_s * 1e6, fit.fitted.tree_bandwidth / 1e9,
                fit.fitted.ll_tree_bandwidth / 1e9, fit.fitted.ll_latency_saving_s * 1e6, fit.fitted.p2p_bandwidth / 1e9,
                fit.initial_rms_log_error,
                fit.final_rms_log_error);
  profile.sources.insert(profile.sources.begin(), line);
  profile.origin = arguments.out;
  try {
    report::write_file_atomically(arguments.out, strategy::hardware_profile_to_yaml(profile));
    // What a scenario's cluster.gpu will read: the predictions below use exactly this.
    profile = strategy::load_hardware_profile(fs::absolute(arguments.out).string(), fs::current_path(), "--out");
  } catch (const std::exception& error) {
    std::cerr << "error: --out " << arguments.out << ": " << error.what() << "\n";
    return kExitFailure;
  }

  try {
    predict(points, profile, PredictionEngine::Twin, arguments.jobs);
  } catch (const std::exception& error) {
    std::cerr << "error: " << error.what() << "\n";
    return kExitFailure;
  }
  const double fitted_mape = busbw_mape(points, false, min_size);
  const bool any_held_out = std::any_of(points.begin(), points.end(), [](const NcclPoint& p) { return p.held_out; });
  const double held_out_mape = busbw_mape(points, true, min_size);
  // Per (file, gpus): the mean error over sizes >= min_size.
  struct Group {
    int gpus = 0;
    bool held_out = false;
    double total = 0;
    int count = 0;
  };
  std::map<std::pair<std::string, std::string>, Group> groups;  // (collective, file)
  for (const NcclPoint& p : points) {
    Group& g = groups[{p.collective, p.file}];
    g.gpus = p.gpus;
    g.held_out = p.held_out;
    if (p.size_bytes >= min_size) {
      g.total += std::abs(p.error_percent());
      ++g.count;
    }
  }

  if (arguments.json) {
    nlohmann::json per_log = nlohmann::json::array();
    for (const auto& [key, g] : groups)
      per_log.push_back({{"collective", key.first},
                         {"file", key.second},
                         {"gpus", g.gpus},
                         {"held_out", g.held_out},
                         {"busbw_mape", g.count > 0 ? g.total / g.count : 0.0}});
    nlohmann::json out{{"busbw_mape", fitted_mape},
                       {"min_size_bytes", min_size},
                       {"profile", arguments.out},
                       {"parameters",
                        {{"collective_efficiency", fit.fitted.nvlink_efficiency},
                         {"intra_node_latency_s", fit.fitted.nvlink_latency_s},
                         {"nic_efficiency", fit.fitted.nic_efficiency},
                         {"nic_latency_s", fit.fitted.nic_latency_s},
                         {"collective_latency_s", fit.fitted.collective_latency_s},
                         {"tree_bandwidth_bytes_per_s", fit.fitted.tree_bandwidth},
                         {"ll_tree_bandwidth_bytes_per_s", fit.fitted.ll_tree_bandwidth},
                         {"ll_latency_saving_s", fit.fitted.ll_latency_saving_s},
                         {"p2p_bandwidth_bytes_per_s", fit.fitted.p2p_bandwidth}}},
                       {"iterations", fit.iterations},
                       {"per_log", per_log},
                       {"points", points_to_json(points)}};
    if (any_held_out) out["held_out_busbw_mape"] = held_out_mape;
    std::cout << out.dump(2) << "\n";
    return 0;
  }

  std::printf("%-14s %5s %-15s %12s %12s %8s  %s\n", "collective", "gpus", "size", "measured", "twin", "error",
              "algorithm");
  std::string last;
  for (const NcclPoint& p : points) {
    const std::string key = p.collective + p.file;
    if (key != last && !last.empty()) std::printf("\n");
    last = key;
    std::printf("%-14s %5d %-15s %7.2f GB/s %7.2f GB/s %8s  %s%s%s\n", p.collective.c_str(), p.gpus,
                strategy::format_bytes(p.size_bytes).c_str(), p.measured_busbw_gbps, p.predicted_busbw_gbps,
                percent(p.error_percent()).c_str(), p.algorithm.c_str(), p.held_out ? "  [held out]" : "",
                p.size_bytes < min_size ? "  (below --min-size: not fitted, not scored)" : "");
  }
  std::printf("\nfitted parameters (base %s -> fitted):\n", base.name.c_str());
  std::printf("  collective_efficiency (NVLink)  %.4f -> %.4f\n", fit.initial.nvlink_efficiency, fit.fitted.nvlink_efficiency);
  std::printf("  intra_node.latency              %s -> %s\n", microseconds(fit.initial.nvlink_latency_s).c_str(),
              microseconds(fit.fitted.nvlink_latency_s).c_str());
  std::printf("  nic_efficiency                  %.4f -> %.4f\n", fit.initial.nic_efficiency, fit.fitted.nic_efficiency);
  std::printf("  nic.latency                     %s -> %s\n", microseconds(fit.initial.nic_latency_s).c_str(),
              microseconds(fit.fitted.nic_latency_s).c_str());
  std::printf("  node.collective_latency          %s -> %s\n", microseconds(fit.initial.collective_latency_s).c_str(),
              microseconds(fit.fitted.collective_latency_s).c_str());
  std::printf("  node.tree_bandwidth              %s -> %s\n", gbps(fit.initial.tree_bandwidth).c_str(),
              gbps(fit.fitted.tree_bandwidth).c_str());
  std::printf("  node.ll_tree_bandwidth           %s -> %s\n", gbps(fit.initial.ll_tree_bandwidth).c_str(),
              gbps(fit.fitted.ll_tree_bandwidth).c_str());
  std::printf("  node.ll_latency_saving           %s -> %s\n", microseconds(fit.initial.ll_latency_saving_s).c_str(),
              microseconds(fit.fitted.ll_latency_saving_s).c_str());
  std::printf("  node.p2p_bandwidth               %s -> %s\n", gbps(fit.initial.p2p_bandwidth).c_str(),
              gbps(fit.fitted.p2p_bandwidth).c_str());
  std::printf("  (%zu points, %d iterations, rms log error %.3f -> %.3f)\n", fit.fitted_points, fit.iterations,
              fit.initial_rms_log_error, fit.final_rms_log_error);
  std::printf("\nmean |error| of busbw over sizes >= %s, per log:\n", strategy::format_bytes(min_size).c_str());
  for (const auto& [key, g] : groups)
    std::printf("  %-14s %5d GPUs  %6.2f%%  %s%s\n", key.first.c_str(), g.gpus, g.count > 0 ? g.total / g.count : 0.0,
                fs::path(key.second).filename().c_str(), g.held_out ? "  [held out]" : "");
  std::printf("fitted logs: %.2f%%", fitted_mape);
  if (any_held_out) std::printf("   held-out logs: %.2f%%", held_out_mape);
  std::printf("\nwrote %s (use it as cluster.gpu: %s)\n", arguments.out.c_str(), arguments.out.c_str());
  return 0;
}

}  // namespace tandem::calibration
