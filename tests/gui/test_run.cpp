// Running the twin from the window (integration: simulations in child processes): Run shows the
// result the sim library computes for the same scenario, stores it in the run store with its
// trace, Cancel really ends the child while the window keeps handling events, and a sweep fills
// its table and opens a row as a scenario.
#include <csignal>
#include <dirent.h>
#include <fstream>
#include <unistd.h>

#include <QLabel>
#include <QPushButton>
#include <QSignalSpy>
#include <QStandardItemModel>
#include <QTemporaryDir>
#include <QTimer>

#include "gui/editor_page.hpp"
#include "gui/format.hpp"
#include "gui/history_page.hpp"
#include "gui/main_window.hpp"
#include "gui/result_page.hpp"
#include "gui/run_panel.hpp"
#include "gui/scenario_document.hpp"
#include "gui/simulation_service.hpp"
#include "gui/summary_panel.hpp"
#include "gui/sweep_page.hpp"
#include "gui/table_view.hpp"
#include "gui/timeline_view.hpp"
#include "report/run_store.hpp"
#include "sim/simulation.hpp"
#include "test_support.hpp"

using namespace tandem;
using namespace tandem::gui;

namespace {

// Live (not zombie) child processes of this process, from /proc.
int liveChildren() {
  int count = 0;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return -1;
  const std::string me = std::to_string(getpid());
  while (dirent* entry = readdir(proc)) {
    const std::string name = entry->d_name;
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat("/proc/" + name + "/stat");
    std::string pid, command, state, parent;
    stat >> pid >> command >> state >> parent;
    if (parent == me) ++count;
  }
  closedir(proc);
  return count;
}

}  // namespace

class RunTest : public QObject {
  Q_OBJECT

 private:
  QTemporaryDir scratch_;
  std::unique_ptr<MainWindow> window_;

 private slots:
  void init() {
    window_ = std::make_unique<MainWindow>();
    QVERIFY(window_->openDatabase(scratch_.filePath(QStringLiteral("runs.db")), true));
    window_->show();
    QVERIFY(QTest::qWaitForWindowExposed(window_.get()));
  }
  void cleanup() { window_.reset(); }

  void runShowsWhatTheTwinComputes() {
    QVERIFY(window_->openScenario(testing::sourcePath(QStringLiteral("scenarios/default.yaml"))));
    QPushButton* run = window_->runPanel()->runButton();
    QVERIFY(run->isEnabled());
    QSignalSpy finished(window_->service(), &SimulationService::runFinished);
    QSignalSpy failed(window_->service(), &SimulationService::failed);
    QTest::mouseClick(run, Qt::LeftButton);
    QVERIFY(window_->service()->busy());
    QVERIFY(!run->isEnabled());
    QVERIFY(window_->runPanel()->cancelButton()->isEnabled());
    QVERIFY2(finished.wait(300000), failed.isEmpty() ? "no result" : qPrintable(failed.first().first().toString()));
    QVERIFY(!window_->service()->busy());
    QCOMPARE(window_->pages()->currentWidget(), static_cast<QWidget*>(window_->resultPage()));

    // The same scenario through the sim library directly.
    const strategy::Scenario scenario = strategy::load_scenario(TANDEM_SOURCE_DIR "/scenarios/default.yaml");
    const sim::SimulationResult expected = sim::run_simulation_in_child(scenario, sim::SimulationOptions{});
    QVERIFY2(expected.ok, expected.error.c_str());
    const ResultData& shown = window_->resultPage()->result();
    QCOMPARE(shown.number(QStringLiteral("step_time_s")).value(), expected.step_time_s);
    QCOMPARE(shown.number(QStringLiteral("mfu")).value(), expected.mfu);
    SummaryPanel* summary = window_->resultPage()->summary();
    QCOMPARE(summary->valueText(QStringLiteral("step_time_s")), formatDuration(expected.step_time_s));
    QCOMPARE(summary->valueText(QStringLiteral("mfu")), formatPercent(expected.mfu));
    QVERIFY(summary->valueText(QStringLiteral("memory")).contains(expected.memory.fits ? QStringLiteral("fits") : QStringLiteral("does not fit")));
    QCOMPARE(window_->resultPage()->timeline()->model().recordCount(), expected.trace.size());

    // Stored like simrun stores it: a finished simulation with its trace.
    report::RunStore store = report::RunStore::open(scratch_.filePath(QStringLiteral("runs.db")).toStdString());
    const report::RunRecord record = store.load_run(shown.run_id.toStdString());
    QCOMPARE(record.status, report::RunStatus::Finished);
    QCOMPARE(record.headline.step_time_s.value(), expected.step_time_s);
    QCOMPARE(store.trace_size(record.id), expected.trace.size());
    QCOMPARE(window_->historyPage()->runsModel()->rowCount(), 1);
  }

  void cancelEndsTheChildAndTheWindowStaysResponsive() {
    // GPT-3 175B on Selene with four times the global batch: seconds of simulation.
    const strategy::Scenario selene = strategy::load_builtin_scenario("gpt3-175b-selene");
    const YAML::Node document = strategy::with_override(selene.document, "strategy.global_batch", "256");
    window_->openText(QString::fromStdString(strategy::document_to_yaml(document)), QStringLiteral("slow.yaml"));
    QVERIFY(window_->document()->validation().valid());

    int ticks = 0;
    QTimer ticker;
    connect(&ticker, &QTimer::timeout, [&ticks] { ++ticks; });
    ticker.start(10);
    QSignalSpy cancelled(window_->service(), &SimulationService::cancelled);
    QSignalSpy finished(window_->service(), &SimulationService::runFinished);
    window_->activateWindow();
    QVERIFY(QTest::qWaitForWindowActive(window_.get()));
    QTest::keySequence(window_.get(), QKeySequence(Qt::CTRL | Qt::Key_R));  // Run
    QVERIFY(window_->service()->busy());
    QTest::qWait(1000);
    QVERIFY(liveChildren() >= 1);        // the simulation's child process
    QVERIFY(ticks >= 10);                // the event loop kept running while it simulated
    QTest::mouseClick(window_->runPanel()->cancelButton(), Qt::LeftButton);
    QVERIFY(cancelled.wait(30000));
    QCOMPARE(finished.count(), 0);
    QVERIFY(!window_->service()->busy());
    QCOMPARE(liveChildren(), 0);
    QVERIFY(window_->runPanel()->statusLabel()->text().contains(QStringLiteral("Cancelled")));
    // The store says so.
    report::RunStore store = report::RunStore::open(scratch_.filePath(QStringLiteral("runs.db")).toStdString());
    report::RunFilter filter;
    filter.name_contains = "gpt3";
    const auto runs = store.list_runs(filter);
    QVERIFY(!runs.empty());
    QCOMPARE(runs.front().status, report::RunStatus::Failed);
  }

  void sweepFillsTheTableAndOpensARow() {
    QVERIFY(window_->openScenario(testing::sourcePath(QStringLiteral("scenarios/default.yaml"))));
    SweepPage* sweep = window_->sweepPage();
    std::vector<strategy::SweepAxis> axes{strategy::parse_sweep_argument("strategy.micro_batch=1,2")};
    sweep->setAxes(axes);
    QCOMPARE(sweep->pointCount(), 2);
    QSignalSpy finished(window_->service(), &SimulationService::sweepFinished);
    QTest::mouseClick(sweep->runPanel()->runButton(), Qt::LeftButton);
    QVERIFY(finished.wait(300000));
    QCOMPARE(finished.first().at(1).toInt(), 2);
    QCOMPARE(sweep->resultsModel()->rowCount(), 2);

    // Each row is what the library's sweep computes.
    const strategy::Scenario scenario = strategy::load_scenario(TANDEM_SOURCE_DIR "/scenarios/default.yaml");
    const auto expected = sim::run_sweep(scenario, axes, sim::SweepOptions{});
    for (int row = 0; row < 2; ++row) {
      const QString value = sweep->resultsModel()->item(row, 0)->text();
      const auto& point = expected[value == QLatin1String("1") ? 0 : 1];
      QCOMPARE(sweep->resultsModel()->item(row, 2)->data(Qt::UserRole).toDouble(), point.result.step_time_s);
    }
    // Open a row as a scenario: the editor holds the base scenario with that value.
    sweep->resultsView()->selectRow(0);
    const QString chosen = sweep->resultsView()->model()->index(0, 0).data().toString();
    sweep->findChild<QPushButton*>(QStringLiteral("openSweepRow"))->click();
    QCOMPARE(window_->document()->field("strategy.micro_batch").value(), chosen.toStdString());
    QVERIFY(!window_->document()->field("sweep"));
    QVERIFY(window_->document()->validation().valid());
  }
};

TANDEM_GUI_TEST_MAIN(RunTest)
#include "test_run.moc"
