#pragma once
// The result page: the summary, where the step's time goes, memory per GPU against capacity,
// and below them the timeline (with the selected op's details), metrics for training runs, and
// every field of the result as a table.

#include <functional>

#include <QWidget>

#include "gui/result_data.hpp"

class QComboBox;
class QLabel;
class QStandardItemModel;
class QTabWidget;

namespace tandem::gui {

class BreakdownChart;
class ChartView;
class MemoryChart;
class SummaryPanel;
class TableView;
class TimelineView;

class ResultPage : public QWidget {
  Q_OBJECT

 public:
  explicit ResultPage(QWidget* parent = nullptr);

  // Loads the trace of another step of the same run (engine runs store every step).
  using StepLoader = std::function<std::shared_ptr<const std::vector<report::TraceRecord>>(std::int64_t)>;
  void showResult(const ResultData& result, StepLoader load_step = {});
  void clear();
  const ResultData& result() const { return result_; }

  SummaryPanel* summary() const { return summary_; }
  BreakdownChart* breakdown() const { return breakdown_; }
  MemoryChart* memory() const { return memory_; }
  TimelineView* timeline() const { return timeline_; }
  QTabWidget* tabs() const { return tabs_; }
  QLabel* opDetails() const { return op_details_; }

 private:
  void showTrace();
  void showMetrics();
  void showFields();

  ResultData result_;
  StepLoader load_step_;
  SummaryPanel* summary_ = nullptr;
  BreakdownChart* breakdown_ = nullptr;
  MemoryChart* memory_ = nullptr;
  QTabWidget* tabs_ = nullptr;
  TimelineView* timeline_ = nullptr;
  QLabel* op_details_ = nullptr;
  QLabel* trace_info_ = nullptr;
  QComboBox* step_ = nullptr;
  ChartView* metrics_view_ = nullptr;
  QComboBox* metric_ = nullptr;
  QStandardItemModel* fields_ = nullptr;
  TableView* fields_view_ = nullptr;
};

}  // namespace tandem::gui
