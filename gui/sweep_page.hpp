#pragma once
// The sweep page: choose scenario keys and the values to try (initially the scenario's own
// `sweep:` section), run every combination in the twin with progress, and read the results as
// a sortable table and a chart of step time and peak memory against the swept values. A row
// opens as a scenario of its own.

#include <memory>
#include <vector>

#include <QWidget>

#include "gui/scenario_document.hpp"
#include "gui/simulation_service.hpp"

class QLabel;
class QPushButton;
class QStandardItemModel;
class QSortFilterProxyModel;
class QVBoxLayout;

namespace tandem::gui {

class ChartView;
class RunPanel;
class TableView;

class SweepPage : public QWidget {
  Q_OBJECT

 public:
  SweepPage(ScenarioDocument* document, SimulationService* service, QWidget* parent = nullptr);

  // The axes as entered; errors (unknown key, bad value) go to *errors and those axes are left out.
  std::vector<strategy::SweepAxis> axes(QStringList* errors = nullptr) const;
  void setAxes(const std::vector<strategy::SweepAxis>& axes);
  void addAxis(const QString& key = {}, const QString& values = {});
  int axisCount() const;
  int pointCount() const;

  // Rows from a finished sweep (or from a stored sweep run), for tests and History.
  void addOutcome(const SweepPointOutcome& outcome);
  void clearResults();
  QStandardItemModel* resultsModel() const { return model_; }
  TableView* resultsView() const { return table_; }
  ChartView* chartView() const { return chart_view_; }
  RunPanel* runPanel() const { return run_panel_; }
  // The scenario a results row stands for: the base document with the row's overrides.
  QString scenarioYamlForRow(int source_row) const;

 signals:
  void openScenarioRequested(const QString& yaml, const QString& title);

 private:
  struct AxisRow;
  void startSweep();
  void refreshCount();
  void rebuildColumns();
  void refreshChart();
  void openSelectedRow();
  void loadAxesFromDocument();

  ScenarioDocument* document_;
  SimulationService* service_;
  QVBoxLayout* axes_layout_ = nullptr;
  std::vector<std::shared_ptr<AxisRow>> axis_rows_;
  QLabel* count_ = nullptr;
  RunPanel* run_panel_ = nullptr;
  QStandardItemModel* model_ = nullptr;
  QSortFilterProxyModel* proxy_ = nullptr;
  TableView* table_ = nullptr;
  ChartView* chart_view_ = nullptr;
  QPushButton* open_row_ = nullptr;
  // The sweep whose results the table shows.
  YAML::Node base_document_;
  std::vector<std::string> result_keys_;
  std::vector<std::vector<std::pair<std::string, std::string>>> row_overrides_;
  std::vector<SweepPointOutcome> outcomes_;
  double capacity_bytes_ = 0;
};

}  // namespace tandem::gui
