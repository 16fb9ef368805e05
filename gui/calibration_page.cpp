#include "gui/calibration_page.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPushButton>
#include <QSplitter>
#include <QStandardItemModel>
#include <QVBoxLayout>
#include <QtCharts/QChart>
#include <QtCharts/QLineSeries>
#include <QtCharts/QLogValueAxis>
#include <QtCharts/QScatterSeries>
#include <QtCharts/QValueAxis>

#include <yaml-cpp/yaml.h>

#include "gui/chart_view.hpp"
#include "gui/export.hpp"
#include "gui/format.hpp"
#include "gui/table_view.hpp"
#include "report/compare.hpp"

namespace tandem::gui {
namespace {

constexpr double kMinimumMeasuredS = 1e-6;

QString q(const std::string& text) { return QString::fromStdString(text); }

std::optional<double> predictedStepTime(const std::string& scenario_yaml) {
  if (scenario_yaml.empty()) return std::nullopt;
  try {
    const YAML::Node document = YAML::Load(scenario_yaml);
    const YAML::Node value = document["predicted"]["step_time_s"];
    if (value && value.IsScalar()) return value.as<double>();
  } catch (const YAML::Exception&) {
  }
  return std::nullopt;
}

QStandardItem* cell(const QString& text, const QVariant& exact = {}) {
  auto* item = new QStandardItem(text);
  item->setData(exact.isValid() ? exact : QVariant(text), Qt::UserRole);
  return item;
}

QStandardItem* secondsCell(double seconds) {
  auto* item = cell(formatDuration(seconds), seconds);
  item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
  return item;
}

QStandardItem* percentCell(double fraction) {
  auto* item = cell(QStringLiteral("%1%2 %").arg(fraction >= 0 ? "+" : "").arg(fraction * 100, 0, 'f', 1), fraction);
  item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
  return item;
}

void addIdentityLine(QChart* chart, QAbstractAxis* x, QAbstractAxis* y, double low, double high) {
  auto* identity = new QLineSeries;
  identity->setName(QStringLiteral("y = x"));
  QPen pen(QColor(0x61, 0x61, 0x61));
  pen.setStyle(Qt::DashLine);
  identity->setPen(pen);
  identity->append(low, low);
  identity->append(high, high);
  chart->addSeries(identity);
  identity->attachAxis(x);
  identity->attachAxis(y);
}

}  // namespace

std::vector<CalibrationPair> find_calibration_pairs(report::RunStore& store) {
  std::vector<CalibrationPair> pairs;
  std::set<std::string> measured_in_pairs;

  // 1. Validation runs: their training children paired with the simulation child of the same
  //    scenario text (or, failing that, the same name).
  report::RunFilter validations;
  validations.kind = report::RunKind::Validation;
  validations.limit = 0;
  for (const report::RunSummary& parent : store.list_runs(validations)) {
    report::RunFilter children_filter;
    children_filter.parent_run = parent.id;
    children_filter.limit = 0;
    std::vector<report::RunRecord> simulations, trainings;
    for (const report::RunSummary& child : store.list_runs(children_filter)) {
      if (child.status != report::RunStatus::Finished) continue;
      if (child.kind == report::RunKind::Simulation) simulations.push_back(store.load_run(child.id));
      else if (child.kind == report::RunKind::Training) trainings.push_back(store.load_run(child.id));
    }
    for (const report::RunRecord& measured : trainings) {
      if (!measured.headline.step_time_s) continue;
      const report::RunRecord* match = nullptr;
      for (const auto& simulation : simulations)
        if (simulation.info.scenario_yaml == measured.info.scenario_yaml) match = &simulation;
      if (match == nullptr)
        for (const auto& simulation : simulations)
          if (simulation.info.name == measured.info.name) match = &simulation;
      if (match == nullptr || !match->headline.step_time_s) continue;
      CalibrationPair pair;
      pair.name = q(measured.info.name);
      pair.source = QStringLiteral("validation %1").arg(q(parent.id));
      pair.predicted_run = q(match->id);
      pair.measured_run = q(measured.id);
      pair.predicted_s = *match->headline.step_time_s;
      pair.measured_s = *measured.headline.step_time_s;
      if (pair.measured_s > 0) pairs.push_back(pair);
      measured_in_pairs.insert(measured.id);
    }
  }

  // 2. Real runs of a scenario the twin wrote (simrun --best): the prediction is in the scenario.
  report::RunFilter trainings;
  trainings.kind = report::RunKind::Training;
  trainings.status = report::RunStatus::Finished;
  trainings.limit = 0;
  for (const report::RunSummary& run : store.list_runs(trainings)) {
    if (measured_in_pairs.contains(run.id) || !run.headline.step_time_s) continue;
    const report::RunRecord record = store.load_run(run.id);
    const auto predicted = predictedStepTime(record.info.scenario_yaml);
    if (!predicted || *run.headline.step_time_s <= 0) continue;
    CalibrationPair pair;
    pair.name = q(run.name);
    pair.source = QStringLiteral("predicted: section");
    pair.measured_run = q(run.id);
    pair.predicted_s = *predicted;
    pair.measured_s = *run.headline.step_time_s;
    pairs.push_back(pair);
  }
  return pairs;
}

CalibrationPage::CalibrationPage(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  auto* bar = new QHBoxLayout;
  summary_ = new QLabel(this);
  summary_->setObjectName(QStringLiteral("calibrationSummary"));
  summary_->setWordWrap(true);
  auto* reload = new QPushButton(QStringLiteral("Refresh"), this);
  bar->addWidget(summary_, 1);
  bar->addWidget(reload);
  layout->addLayout(bar);

  auto* splitter = new QSplitter(Qt::Vertical, this);
  layout->addWidget(splitter, 1);
  auto* top = new QSplitter(Qt::Horizontal, splitter);
  pairs_model_ = new QStandardItemModel(this);
  pairs_view_ = new TableView(QStringLiteral("predicted-vs-measured"), top);
  pairs_view_->setObjectName(QStringLiteral("calibrationPairs"));
  pairs_view_->setModel(pairs_model_);
  pairs_view_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  pairs_view_->setSelectionMode(QAbstractItemView::SingleSelection);
  pairs_view_->setSortingEnabled(false);
  auto* step_holder = new QWidget(top);
  auto* step_layout = new QVBoxLayout(step_holder);
  step_layout->setContentsMargins(0, 0, 0, 0);
  step_chart_ = new ChartView(QStringLiteral("predictedVsMeasured"), step_holder);
  auto* step_bar = new QHBoxLayout;
  step_bar->addStretch(1);
  step_bar->addWidget(makeImageExportButton(step_chart_, QStringLiteral("predicted-vs-measured"), step_holder));
  step_layout->addLayout(step_bar);
  step_layout->addWidget(step_chart_, 1);
  top->addWidget(pairs_view_);
  top->addWidget(step_holder);
  top->setSizes({560, 700});

  auto* bottom = new QWidget(splitter);
  auto* bottom_layout = new QVBoxLayout(bottom);
  bottom_layout->setContentsMargins(0, 0, 0, 0);
  op_summary_ = new QLabel(QStringLiteral("Select a pair whose prediction is a stored simulation to compare them op by op."), bottom);
  op_summary_->setObjectName(QStringLiteral("opAlignmentSummary"));
  op_summary_->setWordWrap(true);
  bottom_layout->addWidget(op_summary_);
  auto* bottom_split = new QSplitter(Qt::Horizontal, bottom);
  op_chart_ = new ChartView(QStringLiteral("opsPredictedVsMeasured"), bottom_split);
  worst_model_ = new QStandardItemModel(this);
  worst_view_ = new TableView(QStringLiteral("worst-ops"), bottom_split);
  worst_view_->setModel(worst_model_);
  worst_view_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  worst_view_->setObjectName(QStringLiteral("worstOps"));
  bottom_split->addWidget(op_chart_);
  bottom_split->addWidget(worst_view_);
  bottom_split->setSizes({700, 560});
  bottom_layout->addWidget(bottom_split, 1);
  splitter->addWidget(top);
  splitter->addWidget(bottom);

  connect(reload, &QPushButton::clicked, this, &CalibrationPage::refresh);
  connect(pairs_view_->selectionModel(), &QItemSelectionModel::selectionChanged, this, [this] {
    const QModelIndexList rows = pairs_view_->selectionModel()->selectedRows();
    if (rows.isEmpty()) return;
    const CalibrationPair& pair = pairs_.at(static_cast<std::size_t>(rows.first().row()));
    if (pair.predicted_run.isEmpty()) {
      op_summary_->setText(QStringLiteral("This prediction came from the scenario's predicted: section, which has no trace to align."));
      return;
    }
    alignRuns(pair.predicted_run, pair.measured_run);
  });
  refresh();
}

void CalibrationPage::setStore(std::shared_ptr<report::RunStore> store) {
  store_ = std::move(store);
  refresh();
}

void CalibrationPage::refresh() {
  pairs_.clear();
  pairs_model_->clear();
  pairs_model_->setHorizontalHeaderLabels({QStringLiteral("name"), QStringLiteral("predicted"),
                                           QStringLiteral("measured"), QStringLiteral("error"),
                                           QStringLiteral("source")});
  if (!store_) {
    summary_->setText(QStringLiteral("No run store is open."));
    drawStepChart();
    return;
  }
  try {
    pairs_ = find_calibration_pairs(*store_);
  } catch (const std::exception& error) {
    summary_->setText(QString::fromUtf8(error.what()));
    drawStepChart();
    return;
  }
  double absolute_errors = 0;
  for (const CalibrationPair& pair : pairs_) {
    pairs_model_->appendRow({cell(pair.name), secondsCell(pair.predicted_s), secondsCell(pair.measured_s),
                             percentCell(pair.relativeError()), cell(pair.source)});
    absolute_errors += std::fabs(pair.relativeError());
  }
  if (pairs_.empty()) {
    summary_->setText(QStringLiteral(
        "No calibration data in this store yet: predicted-vs-measured pairs come from "
        "`tandem-calibrate validate` (validation runs) and from `engine train` runs of a scenario "
        "written by `simrun --best` (a predicted: section)."));
  } else {
    summary_->setText(QStringLiteral("<b>%1 pair%2</b> of a prediction and a measurement. Mean absolute "
                                     "percentage error of the step time: <b>%3 %</b>.")
                          .arg(pairs_.size())
                          .arg(pairs_.size() == 1 ? "" : "s")
                          .arg(absolute_errors / static_cast<double>(pairs_.size()) * 100, 0, 'f', 1));
  }
  pairs_view_->horizontalHeader()->resizeSection(0, 200);
  drawStepChart();
}

void CalibrationPage::drawStepChart() {
  auto* chart = new QChart;
  chart->setAnimationOptions(QChart::NoAnimation);
  chart->setTitle(QStringLiteral("Step time: predicted by the twin against measured"));
  if (pairs_.empty()) {
    chart->legend()->hide();
    step_chart_->setChart(chart);
    return;
  }
  double highest = 0;
  for (const auto& pair : pairs_) highest = std::max({highest, pair.predicted_s, pair.measured_s});
  const bool seconds = highest >= 1;
  const double scale = seconds ? 1 : 1e3;
  const QString unit = seconds ? QStringLiteral("s") : QStringLiteral("ms");
  auto* points = new QScatterSeries;
  points->setName(QStringLiteral("runs"));
  points->setMarkerSize(10);
  points->setColor(QColor(0x42, 0x85, 0xf4));
  for (const auto& pair : pairs_) points->append(pair.measured_s * scale, pair.predicted_s * scale);
  chart->addSeries(points);
  auto* x = new QValueAxis;
  x->setTitleText(QStringLiteral("measured step time (%1)").arg(unit));
  auto* y = new QValueAxis;
  y->setTitleText(QStringLiteral("predicted step time (%1)").arg(unit));
  x->setRange(0, highest * scale * 1.1);
  x->applyNiceNumbers();
  const double top = x->max();
  y->setRange(0, top);
  y->setTickCount(x->tickCount());
  chart->addAxis(x, Qt::AlignBottom);
  chart->addAxis(y, Qt::AlignLeft);
  points->attachAxis(x);
  points->attachAxis(y);
  addIdentityLine(chart, x, y, 0, top);
  chart->legend()->setAlignment(Qt::AlignBottom);
  step_chart_->setChart(chart);
}

void CalibrationPage::alignRuns(const QString& predicted_run, const QString& measured_run) {
  worst_model_->clear();
  auto* chart = new QChart;
  chart->setAnimationOptions(QChart::NoAnimation);
  chart->setTitle(QStringLiteral("Per-op duration: predicted against measured"));
  if (!store_) {
    op_chart_->setChart(chart);
    return;
  }
  try {
    const report::Trace predicted = store_->load_trace(predicted_run.toStdString());
    const report::Trace measured = store_->load_trace(measured_run.toStdString());
    if (predicted.records.empty() || measured.records.empty()) {
      op_summary_->setText(QStringLiteral("One of the two runs stored no trace."));
      op_chart_->setChart(chart);
      return;
    }
    // Flat validation runs align rank by rank; a folded prediction by rank class.
    report::AlignOptions options;
    const report::TraceAlignment alignment = report::align_traces(predicted.records, measured.records, options);
    auto* points = new QScatterSeries;
    points->setName(QStringLiteral("ops"));
    points->setMarkerSize(6);
    points->setColor(QColor(0xfb, 0x8c, 0x00));
    points->setBorderColor(Qt::transparent);
    double low = std::numeric_limits<double>::infinity();
    double high = 0;
    double absolute = 0;
    std::size_t counted = 0;
    for (const report::OpAlignment& op : alignment.ops) {
      if (op.predicted_s <= 0 || op.measured_s <= 0) continue;
      points->append(op.measured_s * 1e6, op.predicted_s * 1e6);
      low = std::min({low, op.predicted_s, op.measured_s});
      high = std::max({high, op.predicted_s, op.measured_s});
      // Sub-microsecond ops (timer resolution, launch noise) would dominate a mean of ratios.
      if (op.relative_error && op.measured_s >= kMinimumMeasuredS) {
        absolute += std::fabs(*op.relative_error);
        ++counted;
      }
    }
    if (points->count() == 0) {
      delete points;
      op_summary_->setText(QStringLiteral("No op was timed on both sides."));
      op_chart_->setChart(chart);
      return;
    }
    chart->addSeries(points);
    auto* x = new QLogValueAxis;
    x->setTitleText(QStringLiteral("measured (µs)"));
    x->setLabelFormat(QStringLiteral("%g"));
    auto* y = new QLogValueAxis;
    y->setTitleText(QStringLiteral("predicted (µs)"));
    y->setLabelFormat(QStringLiteral("%g"));
    x->setRange(low * 1e6 / 1.5, high * 1e6 * 1.5);
    y->setRange(low * 1e6 / 1.5, high * 1e6 * 1.5);
    chart->addAxis(x, Qt::AlignBottom);
    chart->addAxis(y, Qt::AlignLeft);
    points->attachAxis(x);
    points->attachAxis(y);
    addIdentityLine(chart, x, y, low * 1e6 / 1.5, high * 1e6 * 1.5);
    chart->legend()->setAlignment(Qt::AlignBottom);
    op_summary_->setText(QStringLiteral("%1 ops aligned by op id (%2 only predicted, %3 only measured); "
                                        "mean absolute error per op %4 % (ops measured at 1 µs or more).")
                             .arg(alignment.ops.size())
                             .arg(alignment.only_predicted.size())
                             .arg(alignment.only_measured.size())
                             .arg(counted ? absolute / static_cast<double>(counted) * 100 : 0.0, 0, 'f', 1));
    worst_model_->setHorizontalHeaderLabels({QStringLiteral("op"), QStringLiteral("class"), QStringLiteral("predicted"),
                                             QStringLiteral("measured"), QStringLiteral("error")});
    for (const report::OpAlignment& op : report::worst_ops(alignment, 50, kMinimumMeasuredS)) {
      QString name = QString::fromUtf8(strategy::to_string(op.code).data());
      if (op.layer >= 0) name += QStringLiteral(" L%1").arg(op.layer);
      if (op.micro_batch >= 0) name += QStringLiteral(" mb%1").arg(op.micro_batch);
      worst_model_->appendRow({cell(QStringLiteral("%1 (#%2)").arg(name).arg(op.op_id)), cell(QString::number(op.group)),
                               secondsCell(op.predicted_s), secondsCell(op.measured_s),
                               percentCell(op.relative_error.value_or(0))});
    }
    worst_view_->horizontalHeader()->resizeSection(0, 220);
    worst_view_->horizontalHeader()->resizeSection(1, 50);
  } catch (const std::exception& error) {
    op_summary_->setText(QString::fromUtf8(error.what()));
  }
  op_chart_->setChart(chart);
}

}  // namespace tandem::gui
