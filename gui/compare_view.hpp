#pragma once
// Two runs side by side: what differs in their scenarios (report::diff_scenarios) and in their
// results (report::diff_results, with the absolute and relative change), each as a table that
// exports to CSV.

#include <QWidget>

#include "report/run_store.hpp"

class QCheckBox;
class QLabel;
class QStandardItemModel;

namespace tandem::gui {

class TableView;

class CompareView : public QWidget {
  Q_OBJECT

 public:
  explicit CompareView(QWidget* parent = nullptr);
  void compare(const report::RunRecord& a, const report::RunRecord& b);

  QStandardItemModel* settingsModel() const { return settings_; }
  QStandardItemModel* resultsModel() const { return results_; }

 private:
  void fillResults();

  QLabel* heading_ = nullptr;
  QCheckBox* unchanged_ = nullptr;
  QStandardItemModel* settings_ = nullptr;
  QStandardItemModel* results_ = nullptr;
  TableView* settings_view_ = nullptr;
  TableView* results_view_ = nullptr;
  std::string json_a_, json_b_;
};

}  // namespace tandem::gui
