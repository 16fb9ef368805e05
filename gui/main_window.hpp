#pragma once
// The main window of tandem-studio: pages for the editor, the result of the last run, sweeps,
// the run history and predicted-vs-measured; File/Run/View menus with the usual shortcuts
// (Ctrl+O open, Ctrl+S save, Ctrl+R run) and a recent-files menu. Sized for a 1280×800 screen.

#include <QMainWindow>

#include "gui/result_data.hpp"

class QAction;
class QLabel;
class QMenu;
class QTabWidget;

namespace tandem::gui {

class CalibrationPage;
class EditorPage;
class HistoryPage;
class ResultPage;
class RunPanel;
class ScenarioDocument;
class SimulationService;
class SweepPage;

class MainWindow : public QMainWindow {
  Q_OBJECT

 public:
  explicit MainWindow(QWidget* parent = nullptr);

  bool openScenario(const QString& path);
  void openBuiltin(const QString& name);
  void openText(const QString& yaml, const QString& title);
  bool save();
  bool saveAs(const QString& path);
  // Opens a run store for History, calibration and for storing runs made here.
  bool openDatabase(const QString& path, bool create);
  void runScenario();

  ScenarioDocument* document() const { return document_; }
  SimulationService* service() const { return service_; }
  EditorPage* editorPage() const { return editor_; }
  ResultPage* resultPage() const { return result_; }
  SweepPage* sweepPage() const { return sweep_; }
  HistoryPage* historyPage() const { return history_; }
  CalibrationPage* calibrationPage() const { return calibration_; }
  QTabWidget* pages() const { return pages_; }
  RunPanel* runPanel() const { return run_panel_; }
  QStringList recentFiles() const;

 protected:
  void closeEvent(QCloseEvent* event) override;

 private:
  void buildMenus();
  void refreshTitle();
  void refreshRecentMenu();
  void addRecentFile(const QString& path);
  bool confirmDiscard();
  void showRunResult(const ResultData& result);

  ScenarioDocument* document_ = nullptr;
  SimulationService* service_ = nullptr;
  QTabWidget* pages_ = nullptr;
  EditorPage* editor_ = nullptr;
  ResultPage* result_ = nullptr;
  SweepPage* sweep_ = nullptr;
  HistoryPage* history_ = nullptr;
  CalibrationPage* calibration_ = nullptr;
  RunPanel* run_panel_ = nullptr;
  QMenu* recent_menu_ = nullptr;
  QAction* run_action_ = nullptr;
  QAction* cancel_action_ = nullptr;
};

}  // namespace tandem::gui
