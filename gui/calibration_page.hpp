#pragma once
// Predicted against measured: every pair of a twin prediction and a real run found in the store
// — the simulation and training children of a 'validation' run with the same scenario, and
// `engine train` runs whose scenario carries the twin's `predicted:` section — as a scatter of
// step times with the y = x line and the mean absolute percentage error; selecting a pair whose
// runs both stored traces lays them side by side op by op (report::align_traces).

#include <memory>
#include <vector>

#include <QWidget>

#include "report/run_store.hpp"

class QLabel;
class QStandardItemModel;

namespace tandem::gui {

class ChartView;
class TableView;

struct CalibrationPair {
  QString name;
  QString source;          // "validation <id>" or "predicted: section"
  QString predicted_run;   // "" when the prediction came from the scenario
  QString measured_run;
  double predicted_s = 0;  // step time
  double measured_s = 0;
  double relativeError() const { return (predicted_s - measured_s) / measured_s; }
};

// Finds the pairs described above (reads the store on the calling thread).
std::vector<CalibrationPair> find_calibration_pairs(report::RunStore& store);

class CalibrationPage : public QWidget {
  Q_OBJECT

 public:
  explicit CalibrationPage(QWidget* parent = nullptr);
  void setStore(std::shared_ptr<report::RunStore> store);
  void refresh();
  // Op-by-op view of two stored runs (predicted = simulation, measured = real run).
  void alignRuns(const QString& predicted_run, const QString& measured_run);

  const std::vector<CalibrationPair>& pairs() const { return pairs_; }
  ChartView* stepChart() const { return step_chart_; }
  ChartView* opChart() const { return op_chart_; }
  QLabel* summary() const { return summary_; }

 private:
  void drawStepChart();

  std::shared_ptr<report::RunStore> store_;
  std::vector<CalibrationPair> pairs_;
  QLabel* summary_ = nullptr;
  QStandardItemModel* pairs_model_ = nullptr;
  TableView* pairs_view_ = nullptr;
  ChartView* step_chart_ = nullptr;
  ChartView* op_chart_ = nullptr;
  QLabel* op_summary_ = nullptr;
  QStandardItemModel* worst_model_ = nullptr;
  TableView* worst_view_ = nullptr;
};

}  // namespace tandem::gui
