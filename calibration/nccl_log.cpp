#include "calibration/nccl_log.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>

namespace tandem::calibration {
namespace {

// mpirun --tag-output prefixes: "[1,0]<stdout>:" (Open MPI), possibly several per line when two
// ranks' output interleaved.
std::string strip_mpi_prefixes(const std::string& line) {
  static const std::regex prefix(R"(\[\d+,\d+\]<std(?:out|err)>:)");
  return std::regex_replace(line, prefix, "");
}

std::vector<std::string> split_words(const std::string& text) {
  std::vector<std::string> words;
  std::istringstream in(text);
  for (std::string word; in >> word;) words.push_back(word);
  return words;
}

bool parse_double(const std::string& text, double& out) {
  if (text.empty()) return false;
  try {
    std::size_t used = 0;
    out = std::stod(text, &used);
    return used == text.size() && std::isfinite(out);
  } catch (const std::exception&) {
    return false;
  }
}

bool is_integer(const std::string& text) {
  if (text.empty()) return false;
  std::size_t i = text[0] == '-' ? 1 : 0;
  if (i == text.size()) return false;
  for (; i < text.size(); ++i)
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) return false;
  return true;
}

bool is_word(const std::string& text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_';
  }) && std::isalpha(static_cast<unsigned char>(text[0]));
}

// "all_reduce_perf" -> "all_reduce"; "alltoall_perf_mpi" -> "alltoall".
std::string collective_of_test(std::string test) {
  const auto at = test.find("_perf");
  if (at != std::string::npos) test.resize(at);
  return test;
}

// A test name mentioned in a file name (all_reduce_perf.log, ar-all_gather_perf-64.txt).
std::string test_in_file_name(const std::string& file) {
  static const std::regex test(R"((all_reduce|all_gather|reduce_scatter|alltoall|broadcast|reduce|sendrecv|scatter|gather|hypercube)_perf)");
  std::smatch match;
  const std::string name = std::filesystem::path(file).filename().string();
  if (std::regex_search(name, match, test)) return match[0];
  return "";
}

struct SectionBuilder {
  NcclSection section;
  std::map<int, std::string> rank_host;  // rank -> host
  std::string model;
  int header_gpus = 0;                   // nThread * nGpus from the header line
  bool has_root_column = false;
  bool saw_table_header = false;
};

NcclSection finish(SectionBuilder& builder, const std::string& file_test) {
  NcclSection section = std::move(builder.section);
  if (!builder.rank_host.empty()) {
    section.gpus = static_cast<int>(builder.rank_host.size());
    std::map<std::string, int> per_host;
    for (const auto& [rank, host] : builder.rank_host) ++per_host[host];
    section.nodes = static_cast<int>(per_host.size());
    const int first = per_host.begin()->second;
    const bool uniform = std::all_of(per_host.begin(), per_host.end(), [&](const auto& h) { return h.second == first; });
    section.gpus_per_node = uniform ? first : 0;
  } else {
    section.gpus = builder.header_gpus;
  }
  section.gpu_model = builder.model;
  if (section.test.empty()) section.test = file_test;
  if (!section.test.empty()) {
    section.collective = collective_of_test(section.test);
  } else {
    // Infer from busbw / algbw at the largest size with a measurable algbw, and the redop.
    section.collective_inferred = true;
    const int n = section.gpus;
    double ratio = 0;
    // The largest size with algbw >= 1 GB/s (2-decimal columns are precise there), else with any.
    for (double floor : {1.0, 1e-9}) {
      for (auto it = section.rows.rbegin(); it != section.rows.rend() && ratio == 0; ++it)
        if (it->out_of_place.algbw_gbps >= floor) ratio = it->out_of_place.busbw_gbps / it->out_of_place.algbw_gbps;
      if (ratio > 0) break;
    }
    const std::string redop = section.rows.empty() ? "" : section.rows.front().redop;
    const bool reduces = redop != "none" && !redop.empty();
    auto near = [&](double factor) { return factor > 0 && std::abs(ratio - factor) <= 0.02 * factor; };
    if (n <= 1) {
      section.collective = "all_reduce";  // a one-GPU run: nothing moves; nccl-tests' default test
    } else if (near(2.0 * (n - 1) / n)) {
      section.collective = "all_reduce";
    } else if (near(static_cast<double>(n - 1) / n)) {
      section.collective = reduces ? "reduce_scatter" : "all_gather";
    } else if (near(1.0)) {
      section.collective = reduces ? "reduce" : "broadcast";
    } else {
      section.collective = "unknown";
    }
  }
  return section;
}

}  // namespace

std::optional<strategy::CollectiveKind> NcclSection::kind() const {
  using strategy::CollectiveKind;
  if (collective == "all_reduce") return CollectiveKind::AllReduce;
  if (collective == "all_gather") return CollectiveKind::AllGather;
  if (collective == "reduce_scatter") return CollectiveKind::ReduceScatter;
  if (collective == "alltoall") return CollectiveKind::AllToAll;
  if (collective == "broadcast") return CollectiveKind::Broadcast;
  if (collective == "sendrecv") return CollectiveKind::SendRecv;
  return std::nullopt;
}

double nccl_bus_factor(const std::string& collective, int n) {
  if (n < 1) return 0;
  if (collective == "all_reduce") return 2.0 * (n - 1) / n;
  if (collective == "all_gather" || collective == "reduce_scatter" || collective == "alltoall")
    return static_cast<double>(n - 1) / n;
  if (collective == "broadcast" || collective == "reduce" || collective == "sendrecv") return 1.0;
  return 0;
}

NcclLog parse_nccl_log(const std::string& text, const std::string& file) {
  NcclLog log;
  log.file = file;
  const std::string file_test = test_in_file_name(file);
  static const std::regex header(R"(#\s*nThread\s+(\d+)\s+nGpus\s+(\d+))");
  static const std::regex starting(R"(#\s*Collective test starting:\s*(\S+))");
  static const std::regex concluded(R"(#\s*Collective test concluded)");
  // "#  Rank  0 Group  0 Pid 123 on node-000000 device  0 [0x00] A100-SXM4-40GB"
  static const std::regex rank_line(R"(#\s*Rank\s+(\d+)\s+(?:Group\s+\d+\s+)?Pid\s+\d+\s+on\s+(\S+)\s+device\s+\d+\s+\[[^\]]*\]\s*(.*\S)?)");
  static const std::regex table_header(R"(#\s*size\s+count\s+type\s+redop(\s+root)?)");

  std::optional<SectionBuilder> current;
  std::string pending_test;  // a "starting" line seen before its header
  int index = 0;
  auto close = [&] {
    if (current && !current->section.rows.empty()) {
      current->section.file = file;
      current->section.index = index++;
      log.sections.push_back(finish(*current, file_test));
    }
    current.reset();
  };
  auto open = [&] {
    close();
    current.emplace();
    current->section.test = pending_test;
    pending_test.clear();
  };

  std::istringstream in(text);
  std::size_t line_number = 0;
  for (std::string raw; std::getline(in, raw);) {
    ++line_number;
    if (!raw.empty() && raw.back() == '\r') raw.pop_back();
    const std::string line = strip_mpi_prefixes(raw);
    std::smatch match;
    if (std::regex_search(line, match, starting)) {
      close();
      pending_test = match[1];
      continue;
    }
    if (std::regex_search(line, match, concluded)) {
      close();
      continue;
    }
    if (std::regex_search(line, match, header)) {
      open();  // every run of a test prints one header: it starts a section
      current->header_gpus = std::stoi(match[1]) * std::stoi(match[2]);
      continue;
    }
    if (std::regex_search(line, match, rank_line)) {
      if (!current) open();
      if (!current->section.rows.empty()) open();  // a device list after a table: a new run
      current->rank_host[std::stoi(match[1])] = match[2];
      if (match[3].matched && current->model.empty()) current->model = match[3];
      continue;
    }
    if (std::regex_search(line, match, table_header)) {
      if (!current) open();
      current->has_root_column = match[1].matched;
      current->saw_table_header = true;
      continue;
    }
    const auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    const std::vector<std::string> words = split_words(line);
    // A table row starts with two integers (size, count) and a type word.
    if (words.size() < 6 || !is_integer(words[0]) || !is_integer(words[1]) || !is_word(words[2])) continue;
    if (!current) open();
    NcclRow row;
    bool ok = parse_double(words[0], row.size_bytes) && parse_double(words[1], row.count);
    row.type = words[2];
    row.redop = words[3];
    std::size_t at = 4;
    // Root column: declared by the table header, or an integer where a time would be followed by
    // three more numbers (nccl-tests >= 2.13 always prints it).
    bool root = current->has_root_column;
    if (!current->saw_table_header && words.size() >= 13 && is_integer(words[4])) root = true;
    if (root) {
      if (words.size() <= at || !is_integer(words[at])) ok = false;
      else row.root = std::stoi(words[at]);
      ++at;
    }
    auto measurement = [&](std::size_t from, NcclMeasurement& m) {
      return words.size() >= from + 3 && parse_double(words[from], m.time_us) &&
             parse_double(words[from + 1], m.algbw_gbps) && parse_double(words[from + 2], m.busbw_gbps);
    };
    ok = ok && measurement(at, row.out_of_place) && row.size_bytes >= 0 && row.out_of_place.time_us > 0;
    if (!ok) {
      log.warnings.push_back(file + ":" + std::to_string(line_number) + ": not a result row: " + line);
      continue;
    }
    NcclMeasurement in_place;
    if (measurement(at + 4, in_place) && in_place.time_us > 0) row.in_place = in_place;
    current->section.rows.push_back(std::move(row));
  }
  close();
  return log;
}

NcclLog read_nccl_log(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read nccl-tests log " + path.string());
  std::stringstream buffer;
  buffer << in.rdbuf();
  return parse_nccl_log(buffer.str(), path.string());
}

}  // namespace tandem::calibration
