#include "gui/screenshot_tour.hpp"

#include <cstdio>

#include <QApplication>
#include <QDir>
#include <QPixmap>
#include <QStandardItemModel>
#include <QTabWidget>
#include <QTimer>

#include "gui/calibration_page.hpp"
#include "gui/editor_page.hpp"
#include "gui/history_page.hpp"
#include "gui/main_window.hpp"
#include "gui/result_page.hpp"
#include "gui/run_panel.hpp"
#include "gui/scenario_document.hpp"
#include "gui/scenario_form.hpp"
#include "gui/simulation_service.hpp"
#include "gui/sweep_page.hpp"
#include "gui/table_view.hpp"
#include "gui/timeline_view.hpp"

namespace tandem::gui {
namespace {

constexpr int kStepTimeoutMs = 10 * 60 * 1000;

// Lets layouts and charts settle before a grab.
void settle() {
  for (int i = 0; i < 5; ++i) QApplication::processEvents();
}

}  // namespace

ScreenshotTour::ScreenshotTour(MainWindow* window, const QString& directory, const QStringList& sweep_arguments,
                               QObject* parent)
    : QObject(parent), window_(window), directory_(directory), sweep_arguments_(sweep_arguments) {
  deadline_ = new QTimer(this);
  deadline_->setSingleShot(true);
  connect(deadline_, &QTimer::timeout, this, [this] { fail(QStringLiteral("timed out waiting for the twin")); });
}

void ScreenshotTour::fail(const QString& message) {
  std::fprintf(stderr, "tandem-studio --screenshots: %s\n", message.toLocal8Bit().constData());
  QApplication::exit(1);
}

void ScreenshotTour::save(const QString& name) {
  settle();
  const QString path = QDir(directory_).filePath(name + QStringLiteral(".png"));
  if (!window_->grab().save(path, "PNG")) {
    fail(QStringLiteral("cannot write %1").arg(path));
    return;
  }
  saved_ << path;
  std::fprintf(stderr, "wrote %s\n", path.toLocal8Bit().constData());
}

void ScreenshotTour::start() {
  if (!QDir().mkpath(directory_)) {
    fail(QStringLiteral("cannot create %1").arg(directory_));
    return;
  }
  if (!window_->document()->validation().valid()) {
    window_->pages()->setCurrentWidget(window_->editorPage());
    save(QStringLiteral("editor"));
    fail(QStringLiteral("the scenario has problems; see editor.png"));
    return;
  }
  if (!SimulationService::available()) {
    save(QStringLiteral("editor"));
    fail(SimulationService::unavailableReason());
    return;
  }
  window_->pages()->setCurrentWidget(window_->editorPage());
  save(QStringLiteral("editor"));

  SimulationService* service = window_->service();
  connect(service, &SimulationService::runFinished, this, [this] { QTimer::singleShot(200, this, &ScreenshotTour::afterRun); },
          Qt::SingleShotConnection);
  connect(service, &SimulationService::failed, this, [this](const QString& message) { fail(message); });
  deadline_->start(kStepTimeoutMs);
  window_->runScenario();
}

void ScreenshotTour::afterRun() {
  ResultPage* result = window_->resultPage();
  window_->pages()->setCurrentWidget(result);
  settle();
  save(QStringLiteral("result"));

  // The timeline zoomed into the middle of the step with an op selected.
  TimelineView* timeline = result->timeline();
  const TimelineModel& model = timeline->model();
  if (!model.empty()) {
    const double span = model.endS() - model.beginS();
    timeline->setVisibleRange(model.beginS() + 0.45 * span, 0.08 * span);
    settle();
    const QPoint middle(TimelineView::kLabelWidth + (timeline->viewport()->width() - TimelineView::kLabelWidth) / 2,
                        TimelineView::kHeaderHeight + TimelineView::kLaneHeight / 2);
    if (const auto op = timeline->opAt(middle)) timeline->selectOp(op);
    save(QStringLiteral("timeline"));
  }

  // The sweep.
  SweepPage* sweep = window_->sweepPage();
  if (!sweep_arguments_.isEmpty()) {
    std::vector<strategy::SweepAxis> axes;
    for (const QString& argument : sweep_arguments_) {
      try {
        axes.push_back(strategy::parse_sweep_argument(argument.toStdString()));
      } catch (const strategy::ScenarioError& error) {
        fail(QString::fromUtf8(error.what()));
        return;
      }
    }
    sweep->setAxes(axes);
  }
  window_->pages()->setCurrentWidget(sweep);
  if (sweep->pointCount() == 0) {
    std::fprintf(stderr, "no sweep given (--sweep or a sweep: section): skipping the sweep view\n");
    afterSweep();
    return;
  }
  connect(window_->service(), &SimulationService::sweepFinished, this,
          [this] { QTimer::singleShot(200, this, &ScreenshotTour::afterSweep); }, Qt::SingleShotConnection);
  deadline_->start(kStepTimeoutMs);
  sweep->runPanel()->runRequested();
}

void ScreenshotTour::afterSweep() {
  deadline_->stop();
  SweepPage* sweep = window_->sweepPage();
  if (sweep->resultsModel()->rowCount() > 0) {
    sweep->resultsView()->selectRow(0);
    save(QStringLiteral("sweep"));
  }

  HistoryPage* history = window_->historyPage();
  history->refresh();
  window_->pages()->setCurrentWidget(history);
  // Compare the newest real run with the newest simulation of the same scenario name (the
  // twin's prediction against the measurement) when there is one, else the two newest
  // simulations of this session.
  const std::pair<QString, QString> pair = predictionAndMeasurement();
  QStringList ids;
  if (!pair.first.isEmpty()) ids << pair.first << pair.second;
  const QAbstractItemModel* runs = history->runsView()->model();
  for (int row = 0; ids.size() < 2 && row < runs->rowCount(); ++row) {
    const QString id = runs->index(row, 0).data(Qt::UserRole + 2).toString();
    if (runs->index(row, 1).data().toString() == QLatin1String("simulation") && !ids.contains(id)) ids << id;
  }
  history->selectRuns(ids);
  history->compareSelected();
  save(QStringLiteral("history"));

  window_->calibrationPage()->refresh();
  if (!pair.first.isEmpty()) window_->calibrationPage()->alignRuns(pair.first, pair.second);
  window_->pages()->setCurrentWidget(window_->calibrationPage());
  save(QStringLiteral("predicted-vs-measured"));
  finish();
}

std::pair<QString, QString> ScreenshotTour::predictionAndMeasurement() const {
  const auto store = window_->historyPage()->store();
  if (!store) return {};
  try {
    report::RunFilter trainings;
    trainings.kind = report::RunKind::Training;
    trainings.status = report::RunStatus::Finished;
    trainings.limit = 1;
    const auto measured = store->list_runs(trainings);
    if (measured.empty()) return {};
    report::RunFilter simulations;
    simulations.kind = report::RunKind::Simulation;
    simulations.status = report::RunStatus::Finished;
    simulations.name_contains = measured.front().name;
    for (const report::RunSummary& run : store->list_runs(simulations)) {
      if (run.name == measured.front().name && store->trace_size(run.id) > 0)
        return {QString::fromStdString(run.id), QString::fromStdString(measured.front().id)};
    }
  } catch (const std::exception&) {
  }
  return {};
}

void ScreenshotTour::finish() {
  std::fprintf(stderr, "%lld screenshots in %s\n", static_cast<long long>(saved_.size()),
               directory_.toLocal8Bit().constData());
  QApplication::exit(0);
}

}  // namespace tandem::gui
