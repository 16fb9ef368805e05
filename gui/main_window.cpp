#include "gui/main_window.hpp"

#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QKeySequence>
#include <QMenu>
#include <QMenuBar>
#include <QMessageBox>
#include <QSettings>
#include <QStatusBar>
#include <QTabWidget>
#include <QToolBar>

#include "gui/calibration_page.hpp"
#include "gui/editor_page.hpp"
#include "gui/history_page.hpp"
#include "gui/result_page.hpp"
#include "gui/run_panel.hpp"
#include "gui/scenario_document.hpp"
#include "gui/simulation_service.hpp"
#include "gui/sweep_page.hpp"
#include "strategy/embedded_files.hpp"
#include "strategy/scenario.hpp"
#include "tandem/version.hpp"

namespace tandem::gui {
namespace {

constexpr int kMaximumRecentFiles = 10;
const char* const kRecentFilesKey = "recentFiles";

}  // namespace

MainWindow::MainWindow(QWidget* parent) : QMainWindow(parent) {
  setObjectName(QStringLiteral("mainWindow"));
  document_ = new ScenarioDocument(this);
  service_ = new SimulationService(this);

  pages_ = new QTabWidget(this);
  pages_->setObjectName(QStringLiteral("pages"));
  pages_->setDocumentMode(true);
  editor_ = new EditorPage(document_, pages_);
  run_panel_ = new RunPanel(service_, QStringLiteral("Run simulation"), editor_);
  editor_->setRunControls(run_panel_);
  result_ = new ResultPage(pages_);
  sweep_ = new SweepPage(document_, service_, pages_);
  history_ = new HistoryPage(pages_);
  calibration_ = new CalibrationPage(pages_);
  pages_->addTab(editor_, QStringLiteral("Scenario"));
  pages_->addTab(result_, QStringLiteral("Result"));
  pages_->addTab(sweep_, QStringLiteral("Sweep"));
  pages_->addTab(history_, QStringLiteral("History"));
  pages_->addTab(calibration_, QStringLiteral("Predicted vs measured"));
  setCentralWidget(pages_);

  buildMenus();
  statusBar()->showMessage(QStringLiteral("Ready"));

  connect(document_, &ScenarioDocument::modificationChanged, this, [this] { refreshTitle(); });
  connect(document_, &ScenarioDocument::filePathChanged, this, [this] { refreshTitle(); });
  connect(document_, &ScenarioDocument::validated, this, [this] {
    const ValidationState& validation = document_->validation();
    run_panel_->setReady(validation.valid(), QStringLiteral("Fix the problems listed above to run."));
    run_action_->setEnabled(validation.valid() && !service_->busy() && SimulationService::available());
  });
  connect(run_panel_, &RunPanel::runRequested, this, &MainWindow::runScenario);
  connect(service_, &SimulationService::busyChanged, this, [this](bool busy) {
    run_action_->setEnabled(!busy && document_->validation().valid() && SimulationService::available());
    cancel_action_->setEnabled(busy);
  });
  connect(service_, &SimulationService::runFinished, this, &MainWindow::showRunResult);
  connect(service_, &SimulationService::failed, this,
          [this](const QString& message) { statusBar()->showMessage(message, 10000); });
  connect(service_, &SimulationService::sweepFinished, this, [this] { history_->refresh(); });
  connect(sweep_, &SweepPage::openScenarioRequested, this, &MainWindow::openText);
  connect(history_, &HistoryPage::openScenarioRequested, this, &MainWindow::openText);
  connect(history_, &HistoryPage::statusMessage, this,
          [this](const QString& message) { statusBar()->showMessage(message, 10000); });
  connect(history_, &HistoryPage::showResultRequested, this,
          [this](const ResultData& result, ResultPage::StepLoader loader) {
            result_->showResult(result, std::move(loader));
            pages_->setCurrentWidget(result_);
          });
  connect(history_, &HistoryPage::alignRequested, this, [this](const QString& predicted, const QString& measured) {
    calibration_->alignRuns(predicted, measured);
    pages_->setCurrentWidget(calibration_);
  });
  connect(history_, &HistoryPage::databaseChanged, this, [this](const QString& path) {
    service_->setDatabasePath(path);
    calibration_->setStore(history_->store());
    statusBar()->showMessage(QStringLiteral("Run store: %1").arg(path), 5000);
  });

  resize(1280, 800);
  refreshTitle();
}

void MainWindow::buildMenus() {
  QMenu* file = menuBar()->addMenu(QStringLiteral("&File"));
  QAction* new_action = file->addAction(QStringLiteral("&New from the default scenario"), this, [this] {
    if (confirmDiscard()) openBuiltin(QStringLiteral("default"));
  });
  new_action->setShortcut(QKeySequence::New);
  QAction* open = file->addAction(QStringLiteral("&Open…"), this, [this] {
    if (!confirmDiscard()) return;
    const QString start = document_->filePath().isEmpty() ? QDir::currentPath() : QFileInfo(document_->filePath()).absolutePath();
    const QString path = QFileDialog::getOpenFileName(this, QStringLiteral("Open a scenario"), start,
                                                      QStringLiteral("Scenarios (*.yaml *.yml);;All files (*)"));
    if (!path.isEmpty()) openScenario(path);
  });
  open->setShortcut(QKeySequence::Open);
  QMenu* builtin = file->addMenu(QStringLiteral("Open &built-in"));
  for (const std::string& name : strategy::builtin_scenario_names()) {
    const QString shown = QString::fromStdString(name);
    builtin->addAction(shown, this, [this, shown] {
      if (confirmDiscard()) openBuiltin(shown);
    });
  }
  recent_menu_ = file->addMenu(QStringLiteral("Open &recent"));
  recent_menu_->setObjectName(QStringLiteral("recentMenu"));
  file->addSeparator();
  QAction* save_action = file->addAction(QStringLiteral("&Save"), this, [this] { save(); });
  save_action->setShortcut(QKeySequence::Save);
  QAction* save_as = file->addAction(QStringLiteral("Save &as…"), this, [this] {
    const QString path = QFileDialog::getSaveFileName(this, QStringLiteral("Save the scenario"),
                                                      document_->filePath().isEmpty() ? document_->title() : document_->filePath(),
                                                      QStringLiteral("Scenarios (*.yaml *.yml)"));
    if (!path.isEmpty()) saveAs(path);
  });
  save_as->setShortcut(QKeySequence::SaveAs);
  file->addSeparator();
  file->addAction(QStringLiteral("Open run &database…"), this, [this] {
    const QString path = QFileDialog::getOpenFileName(this, QStringLiteral("Open a Tandem run store"), QString(),
                                                      QStringLiteral("SQLite run stores (*.db *.sqlite *.sqlite3);;All files (*)"));
    if (!path.isEmpty()) openDatabase(path, false);
  });
  file->addSeparator();
  QAction* quit = file->addAction(QStringLiteral("&Quit"), this, &QWidget::close);
  quit->setShortcut(QKeySequence::Quit);

  QMenu* run = menuBar()->addMenu(QStringLiteral("&Run"));
  run_action_ = run->addAction(QStringLiteral("&Run simulation"), this, &MainWindow::runScenario);
  run_action_->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_R));
  run_action_->setEnabled(false);
  QAction* sweep = run->addAction(QStringLiteral("&Sweep…"), this, [this] { pages_->setCurrentWidget(sweep_); });
  sweep->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_R));
  cancel_action_ = run->addAction(QStringLiteral("&Cancel"), service_, &SimulationService::cancel);
  cancel_action_->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_Period));
  cancel_action_->setEnabled(false);

  QMenu* view = menuBar()->addMenu(QStringLiteral("&View"));
  for (int page = 0; page < pages_->count(); ++page) {
    QAction* action = view->addAction(pages_->tabText(page), this, [this, page] { pages_->setCurrentIndex(page); });
    action->setShortcut(QKeySequence(Qt::CTRL | static_cast<Qt::Key>(Qt::Key_1 + page)));
  }

  QMenu* help = menuBar()->addMenu(QStringLiteral("&Help"));
  help->addAction(QStringLiteral("&Keyboard shortcuts"), this, [this] {
    QMessageBox::information(
        this, QStringLiteral("Keyboard shortcuts"),
        QStringLiteral("Ctrl+N  new from the default scenario\nCtrl+O  open a scenario\nCtrl+S  save\n"
                       "Ctrl+Shift+S  save as\nCtrl+R  run the simulation\nCtrl+.  cancel it\n"
                       "Ctrl+Shift+R  sweep page\nCtrl+1…5  pages\n\nTimeline: wheel zooms, drag pans, "
                       "Shift+wheel scrolls lanes, + / - / 0 zoom in, out and fit, click selects, "
                       "double-click zooms to an op."));
  });
  help->addAction(QStringLiteral("&About tandem-studio"), this, [this] {
    QMessageBox::about(this, QStringLiteral("About tandem-studio"),
                       QStringLiteral("tandem-studio %1 (git %2)\nScenario editor, twin runs, sweeps and run history for Tandem.")
                           .arg(QLatin1String(tandem::kVersion), QLatin1String(tandem::kGitRevision)));
  });

  QToolBar* toolbar = addToolBar(QStringLiteral("Main"));
  toolbar->setObjectName(QStringLiteral("mainToolbar"));
  toolbar->setMovable(false);
  toolbar->setToolButtonStyle(Qt::ToolButtonTextOnly);
  toolbar->addAction(open);
  toolbar->addAction(save_action);
  toolbar->addSeparator();
  toolbar->addAction(run_action_);
  toolbar->addAction(cancel_action_);
  refreshRecentMenu();
}

void MainWindow::refreshTitle() {
  setWindowTitle(QStringLiteral("%1[*] — Tandem Studio").arg(document_->title()));
  setWindowModified(document_->isModified());
}

QStringList MainWindow::recentFiles() const {
  return QSettings().value(QLatin1String(kRecentFilesKey)).toStringList();
}

void MainWindow::addRecentFile(const QString& path) {
  QStringList files = recentFiles();
  files.removeAll(path);
  files.prepend(path);
  while (files.size() > kMaximumRecentFiles) files.removeLast();
  QSettings().setValue(QLatin1String(kRecentFilesKey), files);
  refreshRecentMenu();
}

void MainWindow::refreshRecentMenu() {
  recent_menu_->clear();
  const QStringList files = recentFiles();
  for (int i = 0; i < files.size(); ++i) {
    const QString path = files[i];
    QAction* action = recent_menu_->addAction(QStringLiteral("&%1 %2").arg(i + 1).arg(path), this, [this, path] {
      if (confirmDiscard()) openScenario(path);
    });
    action->setEnabled(QFileInfo::exists(path));
  }
  if (!files.isEmpty()) {
    recent_menu_->addSeparator();
    recent_menu_->addAction(QStringLiteral("Clear the list"), this, [this] {
      QSettings().remove(QLatin1String(kRecentFilesKey));
      refreshRecentMenu();
    });
  }
  recent_menu_->setEnabled(!files.isEmpty());
}

bool MainWindow::confirmDiscard() {
  if (!document_->isModified()) return true;
  const auto answer = QMessageBox::question(
      this, QStringLiteral("Unsaved changes"),
      QStringLiteral("%1 has unsaved changes. Save them first?").arg(document_->title()),
      QMessageBox::Save | QMessageBox::Discard | QMessageBox::Cancel, QMessageBox::Save);
  if (answer == QMessageBox::Save) return save();
  return answer == QMessageBox::Discard;
}

bool MainWindow::openScenario(const QString& path) {
  QString error;
  if (!document_->loadFile(path, &error)) {
    QMessageBox::warning(this, QStringLiteral("Cannot open the scenario"), error);
    return false;
  }
  addRecentFile(document_->filePath());
  pages_->setCurrentWidget(editor_);
  statusBar()->showMessage(QStringLiteral("Opened %1").arg(document_->filePath()), 5000);
  return true;
}

void MainWindow::openBuiltin(const QString& name) {
  const strategy::EmbeddedFile* file =
      strategy::find_embedded(strategy::builtin_scenario_files(), name.toStdString());
  if (file == nullptr) return;
  // Relative paths in a built-in scenario resolve against the working directory, as in simrun.
  document_->loadText(QString::fromUtf8(file->contents), QDir::currentPath(), name + QStringLiteral(".yaml"));
  pages_->setCurrentWidget(editor_);
}

void MainWindow::openText(const QString& yaml, const QString& title) {
  if (!confirmDiscard()) return;
  const QString base = document_->baseDirectory().empty() ? QDir::currentPath()
                                                          : QString::fromStdString(document_->baseDirectory().string());
  document_->loadText(yaml, base, title);
  pages_->setCurrentWidget(editor_);
}

bool MainWindow::save() {
  editor_->flushEdits();
  if (document_->filePath().isEmpty()) {
    const QString path = QFileDialog::getSaveFileName(this, QStringLiteral("Save the scenario"), document_->title(),
                                                      QStringLiteral("Scenarios (*.yaml *.yml)"));
    if (path.isEmpty()) return false;
    return saveAs(path);
  }
  return saveAs(document_->filePath());
}

bool MainWindow::saveAs(const QString& path) {
  editor_->flushEdits();
  QString error;
  if (!document_->saveFile(path, &error)) {
    QMessageBox::warning(this, QStringLiteral("Cannot save the scenario"), error);
    return false;
  }
  addRecentFile(document_->filePath());
  statusBar()->showMessage(QStringLiteral("Saved %1").arg(document_->filePath()), 5000);
  return true;
}

bool MainWindow::openDatabase(const QString& path, bool create) {
  QString error;
  if (!history_->openDatabase(path, create, &error)) {
    statusBar()->showMessage(QStringLiteral("Run store not opened: %1").arg(error), 10000);
    return false;
  }
  return true;
}

void MainWindow::runScenario() {
  editor_->flushEdits();
  const ValidationState& validation = document_->validation();
  if (!validation.valid()) {
    pages_->setCurrentWidget(editor_);
    statusBar()->showMessage(QStringLiteral("The scenario has problems; fix them to run."), 5000);
    return;
  }
  if (service_->busy()) return;
  QString title = document_->title();
  if (title.endsWith(QLatin1String(".yaml"))) title.chop(5);
  if (service_->startRun(validation.scenario, title))
    run_panel_->setStatus(QStringLiteral("Simulating %1…").arg(title));
}

void MainWindow::showRunResult(const ResultData& result) {
  run_panel_->setStatus(QStringLiteral("Finished: %1").arg(result.title));
  result_->showResult(result);
  pages_->setCurrentWidget(result_);
  history_->refresh();
  calibration_->refresh();
}

void MainWindow::closeEvent(QCloseEvent* event) {
  if (!confirmDiscard()) {
    event->ignore();
    return;
  }
  service_->cancel();
  event->accept();
}

}  // namespace tandem::gui
