// History, comparison, the result page and predicted-vs-measured on a run store written here:
// a simulation, a real training run (several steps, metrics) and a validation group. The
// numbers are test fixtures; what is checked is that the views show exactly what is stored.
#include <cmath>

#include <QComboBox>
#include <QFile>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSignalSpy>
#include <QStandardItemModel>
#include <QTemporaryDir>
#include <QThread>
#include <QtCharts/QChart>
#include <QtCharts/QLineSeries>
#include <QtCharts/QScatterSeries>

#include "gui/breakdown_chart.hpp"
#include "gui/calibration_page.hpp"
#include "gui/chart_view.hpp"
#include "gui/compare_view.hpp"
#include "gui/export.hpp"
#include "gui/format.hpp"
#include "gui/history_page.hpp"
#include "gui/result_page.hpp"
#include "gui/summary_panel.hpp"
#include "gui/table_view.hpp"
#include "gui/timeline_view.hpp"
#include "report/run_store.hpp"
#include "test_support.hpp"

using namespace tandem;
using namespace tandem::gui;

namespace {

const char* const kScenarioA = "name: alpha\nmodel: {preset: tiny}\ncluster: {gpu: cpu, nodes: 1, gpus_per_node: 2}\nstrategy: {tp: 2}\n";
const char* const kScenarioB =
    "name: beta\nmodel: {preset: tiny}\ncluster: {gpu: cpu, nodes: 1, gpus_per_node: 2}\nstrategy: {tp: 1}\n"
    "predicted: {step_time_s: 2.2}\n";
const char* const kScenarioTiny = "name: tiny\nmodel: {preset: tiny}\ncluster: {gpu: cpu, nodes: 1, gpus_per_node: 1}\n";

report::TraceRecord op(int rank, strategy::Stream stream, std::uint32_t id, strategy::OpCode code, double start, double end) {
  report::TraceRecord record;
  record.rank = rank;
  record.stream = stream;
  record.op_id = id;
  record.code = code;
  record.phase = strategy::Phase::Forward;
  record.start_s = start;
  record.end_s = end;
  return record;
}

}  // namespace

class HistoryTest : public QObject {
  Q_OBJECT

 private:
  QTemporaryDir scratch_;
  QString database_;
  std::string alpha_, beta_, tiny_simulation_, tiny_training_;

 private slots:
  void initTestCase() {
    database_ = scratch_.filePath(QStringLiteral("runs.db"));
    report::RunStore store = report::RunStore::open(database_.toStdString());

    report::RunInfo info;
    info.kind = report::RunKind::Simulation;
    info.name = "alpha";
    info.scenario_yaml = kScenarioA;
    alpha_ = store.begin_run(info);
    const std::vector<report::TraceRecord> alpha_trace{
        op(0, strategy::Stream::Compute, 1, strategy::OpCode::QkvForward, 0.0, 1.0),
        op(0, strategy::Stream::Compute, 2, strategy::OpCode::MlpUpForward, 1.0, 1.5),
        op(0, strategy::Stream::TpComm, 3, strategy::OpCode::TpMlpOutputForward, 1.5, 2.0)};
    store.add_trace(alpha_, 0, alpha_trace);
    report::Headline headline;
    headline.step_time_s = 2.0;
    headline.tokens_per_s = 1000;
    headline.mfu = 0.5;
    store.finish_run(alpha_,
                     R"({"step_time_s": 2.0, "tokens_per_s": 1000, "mfu": 0.5, "gpus": 2,
                         "memory": {"peak_bytes_per_gpu": 3e9, "weights": 1e9, "gradients": 1e9, "optimizer": 0.5e9,
                                    "activations": 0.5e9, "capacity_bytes": 8e9, "fits": true, "worst_stage": 0},
                         "breakdown_s": {"compute": 1.5, "bubble": 0.5}})",
                     headline);

    QThread::msleep(20);  // distinct creation times: the comparison puts the older run first
    info.kind = report::RunKind::Training;
    info.name = "beta";
    info.scenario_yaml = kScenarioB;
    beta_ = store.begin_run(info);
    for (std::int64_t step = 0; step < 2; ++step) {
      const double offset = 3.0 * static_cast<double>(step);
      const std::vector<report::TraceRecord> records{
          op(0, strategy::Stream::Compute, 1, strategy::OpCode::QkvForward, offset, offset + 1.2),
          op(0, strategy::Stream::Compute, 2, strategy::OpCode::MlpUpForward, offset + 1.2, offset + 2.5)};
      store.add_trace(beta_, step, records);
    }
    std::vector<report::MetricPoint> metrics;
    for (int step = 1; step <= 5; ++step) metrics.push_back({step, "loss", 5.0 - step * 0.5});
    store.add_metrics(beta_, metrics);
    headline = {};
    headline.step_time_s = 2.5;
    headline.tokens_per_s = 800;
    store.finish_run(beta_, R"({"steps": 5, "losses": [4.5, 4.0, 3.5, 3.0, 2.5], "step_time_s": 2.5, "tokens_per_s": 800})",
                     headline);

    info = {};
    info.kind = report::RunKind::Validation;
    info.name = "validation";
    const std::string parent = store.begin_run(info);
    info.parent_run = parent;
    info.scenario_yaml = kScenarioTiny;
    info.name = "tiny";
    info.kind = report::RunKind::Simulation;
    tiny_simulation_ = store.begin_run(info);
    store.add_trace(tiny_simulation_, 0,
                    std::vector<report::TraceRecord>{op(0, strategy::Stream::Compute, 1, strategy::OpCode::QkvForward, 0, 0.4),
                                                     op(0, strategy::Stream::Compute, 2, strategy::OpCode::MlpUpForward, 0.4, 1.0)});
    headline = {};
    headline.step_time_s = 1.0;
    store.finish_run(tiny_simulation_, R"({"step_time_s": 1.0})", headline);
    info.kind = report::RunKind::Training;
    tiny_training_ = store.begin_run(info);
    store.add_trace(tiny_training_, 0,
                    std::vector<report::TraceRecord>{op(0, strategy::Stream::Compute, 1, strategy::OpCode::QkvForward, 0, 0.5),
                                                     op(0, strategy::Stream::Compute, 2, strategy::OpCode::MlpUpForward, 0.5, 1.1)});
    headline.step_time_s = 1.1;
    store.finish_run(tiny_training_, R"({"step_time_s": 1.1})", headline);
    store.finish_run(parent, "{}", {});
  }

  void listsFiltersAndExportsRuns() {
    HistoryPage page;
    QString error;
    QVERIFY2(page.openDatabase(database_, false, &error), qPrintable(error));
    QCOMPARE(page.runsModel()->rowCount(), 5);
    page.setNameFilter(QStringLiteral("ALP"));  // case-insensitive substring
    QCOMPARE(page.runsModel()->rowCount(), 1);
    QCOMPARE(page.runsModel()->item(0, 0)->text(), QStringLiteral("alpha"));
    QCOMPARE(page.runsModel()->item(0, 4)->text(), formatDuration(2.0));
    page.setNameFilter(QString());
    auto* kind = page.findChild<QComboBox*>(QStringLiteral("historyKind"));
    kind->setCurrentIndex(kind->findData(QStringLiteral("training")));
    QCOMPARE(page.runsModel()->rowCount(), 2);  // beta and the validation's training child
    const QString csv = modelToCsv(*page.runsView()->model());
    QVERIFY(csv.startsWith(QStringLiteral("name,kind,status")));
    QVERIFY(csv.contains(QStringLiteral("beta,training,finished")));
    QVERIFY(csv.contains(QStringLiteral(",2.5,")));  // exact stored value, not "2.5 s"
    // A missing file is refused, not created.
    QVERIFY(!page.openDatabase(scratch_.filePath(QStringLiteral("missing.db")), false, &error));
    QVERIFY(error.contains(QStringLiteral("missing.db")));
  }

  void comparesTwoRunsSideBySide() {
    HistoryPage page;
    QString error;
    QVERIFY(page.openDatabase(database_, false, &error));
    page.selectRuns({QString::fromStdString(alpha_), QString::fromStdString(beta_)});
    QCOMPARE(page.selectedRunIds().size(), 2);
    page.compareSelected();
    QStandardItemModel* settings = page.compareView()->settingsModel();
    bool tp = false;
    for (int row = 0; row < settings->rowCount(); ++row) {
      if (settings->item(row, 0)->text() != QLatin1String("strategy.tp")) continue;
      tp = true;
      QCOMPARE(settings->item(row, 1)->text(), QStringLiteral("2"));  // A = the older run (alpha)
      QCOMPARE(settings->item(row, 2)->text(), QStringLiteral("1"));
    }
    QVERIFY(tp);
    QStandardItemModel* results = page.compareView()->resultsModel();
    bool step = false;
    for (int row = 0; row < results->rowCount(); ++row) {
      if (results->item(row, 0)->text() != QLatin1String("step_time_s")) continue;
      step = true;
      QCOMPARE(results->item(row, 3)->data(Qt::UserRole).toDouble(), 0.5);
      QCOMPARE(results->item(row, 4)->data(Qt::UserRole).toDouble(), 0.25);
    }
    QVERIFY(step);
  }

  void showResultLoadsTheRunInTheBackground() {
    HistoryPage page;
    QString error;
    QVERIFY(page.openDatabase(database_, false, &error));
    QSignalSpy shown(&page, &HistoryPage::showResultRequested);
    page.selectRuns({QString::fromStdString(beta_)});
    page.findChild<QPushButton*>(QStringLiteral("showResult"))->click();
    QVERIFY(shown.wait(10000));
    const auto result = shown.first().first().value<ResultData>();
    QCOMPARE(result.run_id, QString::fromStdString(beta_));
    QCOMPARE(result.kind, QStringLiteral("training"));
    QCOMPARE(result.trace->size(), std::size_t{2});
    QCOMPARE(result.number(QStringLiteral("step_time_s")).value(), 2.5);
  }

  void resultPageShowsAStoredSimulation() {
    report::RunStore store = report::RunStore::open(database_.toStdString());
    const ResultData result = HistoryPage::loadResult(store, alpha_);
    ResultPage page;
    page.resize(1280, 760);
    page.show();
    page.showResult(result);
    QCOMPARE(page.summary()->valueText(QStringLiteral("step_time_s")), formatDuration(2.0));
    QCOMPARE(page.summary()->valueText(QStringLiteral("mfu")), formatPercent(0.5));
    QVERIFY(page.summary()->valueText(QStringLiteral("memory")).contains(QStringLiteral("fits")));
    QCOMPARE(page.breakdown()->legendEntries(),
             (QStringList{QStringLiteral("compute 75.0 %"), QStringLiteral("bubble 25.0 %")}));
    QCOMPARE(page.timeline()->model().opCount(), std::size_t{3});
    QCOMPARE(page.timeline()->model().lanes().size(), std::size_t{2});
  }

  void resultPageShowsARealRunWithItsStepsAndMetrics() {
    report::RunStore store = report::RunStore::open(database_.toStdString());
    const ResultData result = HistoryPage::loadResult(store, beta_);
    QCOMPARE(result.trace_steps, (std::vector<std::int64_t>{0, 1}));
    QCOMPARE(result.trace_step, std::int64_t{1});
    QCOMPARE(result.metrics.size(), std::size_t{5});
    ResultPage page;
    page.show();
    auto shared = std::make_shared<report::RunStore>(report::RunStore::open(database_.toStdString()));
    const std::string id = beta_;
    page.showResult(result, [shared, id](std::int64_t step) {
      return std::make_shared<const std::vector<report::TraceRecord>>(shared->load_trace(id, step).records);
    });
    QCOMPARE(page.summary()->valueText(QStringLiteral("step_time_s")), formatDuration(2.5));
    QCOMPARE(page.summary()->valueText(QStringLiteral("final_loss")), formatNumber(2.5, 5));
    QCOMPARE(page.timeline()->model().beginS(), 3.0);  // the last step
    auto* steps = page.findChild<QComboBox*>(QStringLiteral("traceStep"));
    QCOMPARE(steps->count(), 2);
    steps->setCurrentIndex(0);
    emit steps->activated(0);
    QCOMPARE(page.timeline()->model().beginS(), 0.0);
    auto* metrics = page.findChild<ChartView*>(QStringLiteral("metrics"));
    QLineSeries* loss = nullptr;
    for (auto* series : metrics->chart()->series())
      if (auto* line = qobject_cast<QLineSeries*>(series)) loss = line;
    QVERIFY(loss != nullptr);
    QCOMPARE(loss->count(), 5);
    QCOMPARE(loss->at(4), QPointF(5, 2.5));
  }

  void findsPredictedAgainstMeasuredPairs() {
    report::RunStore store = report::RunStore::open(database_.toStdString());
    const std::vector<CalibrationPair> pairs = find_calibration_pairs(store);
    QCOMPARE(pairs.size(), std::size_t{2});
    const CalibrationPair* validation = nullptr;
    const CalibrationPair* predicted_section = nullptr;
    for (const auto& pair : pairs) (pair.predicted_run.isEmpty() ? predicted_section : validation) = &pair;
    QVERIFY(validation && predicted_section);
    QCOMPARE(validation->predicted_run, QString::fromStdString(tiny_simulation_));
    QCOMPARE(validation->measured_run, QString::fromStdString(tiny_training_));
    QCOMPARE(validation->predicted_s, 1.0);
    QCOMPARE(validation->measured_s, 1.1);
    QCOMPARE(predicted_section->predicted_s, 2.2);
    QCOMPARE(predicted_section->measured_s, 2.5);

    CalibrationPage page;
    page.setStore(std::make_shared<report::RunStore>(report::RunStore::open(database_.toStdString())));
    const double mape = (std::fabs(1.0 - 1.1) / 1.1 + std::fabs(2.2 - 2.5) / 2.5) / 2 * 100;
    QVERIFY2(page.summary()->text().contains(QStringLiteral("%1 %").arg(mape, 0, 'f', 1)), qPrintable(page.summary()->text()));
    QScatterSeries* points = nullptr;
    for (auto* series : page.stepChart()->chart()->series())
      if (auto* scatter = qobject_cast<QScatterSeries*>(series)) points = scatter;
    QVERIFY(points != nullptr);
    QCOMPARE(points->count(), 2);

    // Op by op: the two ops of the validation pair line up by op id.
    page.alignRuns(QString::fromStdString(tiny_simulation_), QString::fromStdString(tiny_training_));
    auto* summary = page.findChild<QLabel*>(QStringLiteral("opAlignmentSummary"));
    QVERIFY2(summary->text().startsWith(QStringLiteral("2 ops aligned")), qPrintable(summary->text()));
    const double op_error = (std::fabs(0.4 - 0.5) / 0.5 + std::fabs(0.6 - 0.6) / 0.6) / 2 * 100;
    QVERIFY2(summary->text().contains(QStringLiteral("%1 %").arg(op_error, 0, 'f', 1)), qPrintable(summary->text()));
  }
};

TANDEM_GUI_TEST_MAIN(HistoryTest)
#include "test_history.moc"
