#pragma once
// The history page: every run in a run store (report/run_store.hpp) — the default database or
// one opened from a file — simulations beside real `engine train` runs, filtered by name and
// kind. One selected run shows its scenario, result and provenance and opens in the result
// page (with its trace) or in the editor; two selected runs are compared side by side.

#include <memory>

#include <QWidget>

#include "gui/result_data.hpp"
#include "gui/result_page.hpp"

class QComboBox;
class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QPushButton;
class QStandardItemModel;
class QTabWidget;

namespace tandem::gui {

class CompareView;
class TableView;

class HistoryPage : public QWidget {
  Q_OBJECT

 public:
  explicit HistoryPage(QWidget* parent = nullptr);

  // Opens a store (creating it if `create`); false with a message otherwise.
  bool openDatabase(const QString& path, bool create, QString* error);
  std::shared_ptr<report::RunStore> store() const { return store_; }
  QString databasePath() const;

  void refresh();
  void setNameFilter(const QString& text);
  TableView* runsView() const { return table_; }
  QStandardItemModel* runsModel() const { return model_; }
  CompareView* compareView() const { return compare_; }
  // Selects runs by id (tests and "show in history").
  void selectRuns(const QStringList& ids);
  QStringList selectedRunIds() const;
  void compareSelected();

  // Builds what the result page shows for a stored run: its result, the trace of its last
  // stored step, its steps and metrics. Reads the store on the calling thread.
  static ResultData loadResult(report::RunStore& store, const std::string& run_id);

 signals:
  void databaseChanged(const QString& path);
  void showResultRequested(const tandem::gui::ResultData& result, tandem::gui::ResultPage::StepLoader loader);
  void openScenarioRequested(const QString& yaml, const QString& title);
  void statusMessage(const QString& message);
  // Two runs to lay side by side op by op: the simulation (predicted) and the other (measured).
  void alignRequested(const QString& predicted_run, const QString& measured_run);

 private:
  void showDetails();
  void showSelectedResult();

  std::shared_ptr<report::RunStore> store_;
  QLabel* database_ = nullptr;
  QLineEdit* filter_ = nullptr;
  QComboBox* kind_ = nullptr;
  QStandardItemModel* model_ = nullptr;
  TableView* table_ = nullptr;
  QTabWidget* tabs_ = nullptr;
  QPlainTextEdit* scenario_text_ = nullptr;
  QPlainTextEdit* result_text_ = nullptr;
  QLabel* provenance_ = nullptr;
  CompareView* compare_ = nullptr;
  QPushButton* show_result_ = nullptr;
  QPushButton* open_scenario_ = nullptr;
  QPushButton* compare_button_ = nullptr;
  QPushButton* align_button_ = nullptr;
  QLabel* count_ = nullptr;
};

}  // namespace tandem::gui
