#pragma once
// A run's result as the views read it: the JSON the CLI prints (simrun --json, engine train
// --json, stored in the run store's results table) plus, when present, its per-op trace and
// metrics. The views are written against the documented keys (step_time_s, tokens_per_s, mfu,
// model/hardware_tflops_per_gpu, gpus, memory {...}, breakdown_s {...}) and show whatever else
// the JSON holds in an "All fields" tree, so a result from a newer Tandem still displays.

#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include <QJsonObject>
#include <QMetaType>
#include <QString>

#include "gui/memory_chart.hpp"
#include "report/run_store.hpp"
#include "report/trace_record.hpp"

namespace tandem::gui {

struct ResultData {
  QString title;         // "default — simulation 20250101-120000-1a2b3c4d"
  QString run_id;        // "" when not stored
  QString kind;          // "simulation", "training", ...
  QJsonObject json;      // the result
  std::shared_ptr<const std::vector<report::TraceRecord>> trace;  // may be null or empty
  std::vector<std::int64_t> trace_steps;  // steps stored for this run (engine runs: many)
  std::int64_t trace_step = 0;            // the step `trace` holds
  std::vector<report::MetricPoint> metrics;

  // A number at a dotted path ("memory.peak_bytes_per_gpu"); booleans read as 0/1.
  std::optional<double> number(const QString& path) const;
  std::optional<bool> boolean(const QString& path) const;
  // breakdown_s in the documented order first, then any other keys; zero parts included.
  std::vector<std::pair<QString, double>> breakdown() const;
  // Memory per GPU: one bar per pipeline stage when the result lists stages, else one bar for
  // the worst stage. capacity/worst/fits from the result.
  struct Memory {
    std::vector<MemoryBar> bars;
    double capacity_bytes = 0;
    int worst_index = 0;
    std::optional<bool> fits;
  };
  std::optional<Memory> memory() const;
};

// Parses result JSON; returns false with a message for text that is not a JSON object.
bool parseResultJson(const QString& text, QJsonObject* object, QString* error);

}  // namespace tandem::gui

Q_DECLARE_METATYPE(tandem::gui::ResultData)
