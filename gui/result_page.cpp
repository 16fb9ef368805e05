#include "gui/result_page.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include <QComboBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QJsonArray>
#include <QLabel>
#include <QSplitter>
#include <QStandardItemModel>
#include <QTabWidget>
#include <QToolButton>
#include <QVBoxLayout>
#include <QtCharts/QChart>
#include <QtCharts/QLineSeries>
#include <QtCharts/QValueAxis>

#include "gui/breakdown_chart.hpp"
#include "gui/chart_view.hpp"
#include "gui/export.hpp"
#include "gui/format.hpp"
#include "gui/memory_chart.hpp"
#include "gui/summary_panel.hpp"
#include "gui/table_view.hpp"
#include "gui/timeline_view.hpp"

namespace tandem::gui {
namespace {

QString legendHtml() {
  struct Entry {
    const char* color;
    const char* name;
  };
  static const Entry entries[] = {
      {"#4285f4", "forward"},   {"#f4511e", "backward (input)"}, {"#fb8c00", "backward (weight)"},
      {"#34a853", "optimizer"}, {"#8e24aa", "tp comm"},          {"#d81b60", "cp comm"},
      {"#8d6e63", "pp comm"},   {"#00897b", "dp comm"},
  };
  QString html;
  for (const Entry& entry : entries)
    html += QStringLiteral("<span style='color:%1'>■</span>&nbsp;%2&nbsp;&nbsp; ")
                .arg(QLatin1String(entry.color), QLatin1String(entry.name));
  return html;
}

void addFlattened(QStandardItemModel* model, const QString& path, const QJsonValue& value) {
  if (value.isObject()) {
    const QJsonObject object = value.toObject();
    for (auto it = object.begin(); it != object.end(); ++it)
      addFlattened(model, path.isEmpty() ? it.key() : path + QLatin1Char('.') + it.key(), it.value());
    return;
  }
  if (value.isArray()) {
    const QJsonArray array = value.toArray();
    bool all_numbers = !array.isEmpty();
    for (const QJsonValue& item : array) all_numbers = all_numbers && item.isDouble();
    if (!all_numbers || array.size() <= 8) {
      for (int i = 0; i < array.size(); ++i) addFlattened(model, QStringLiteral("%1[%2]").arg(path).arg(i), array.at(i));
      return;
    }
    // Long numeric series (losses of every step): one row.
    QStringList numbers;
    for (const QJsonValue& item : array) numbers << QString::number(item.toDouble(), 'g', 8);
    auto* key = new QStandardItem(path);
    auto* shown = new QStandardItem(QStringLiteral("[%1 values: %2 … %3]")
                                        .arg(array.size())
                                        .arg(array.first().toDouble(), 0, 'g', 6)
                                        .arg(array.last().toDouble(), 0, 'g', 6));
    shown->setData(numbers.join(QLatin1Char(' ')), Qt::UserRole);
    model->appendRow({key, shown});
    return;
  }
  auto* key = new QStandardItem(path);
  QStandardItem* shown = nullptr;
  if (value.isDouble()) {
    shown = new QStandardItem(QString::number(value.toDouble(), 'g', 10));
    shown->setData(value.toDouble(), Qt::UserRole);
  } else if (value.isBool()) {
    shown = new QStandardItem(value.toBool() ? QStringLiteral("true") : QStringLiteral("false"));
  } else if (value.isNull()) {
    shown = new QStandardItem(QStringLiteral("null"));
  } else {
    shown = new QStandardItem(value.toString());
  }
  model->appendRow({key, shown});
}

}  // namespace

ResultPage::ResultPage(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  auto* splitter = new QSplitter(Qt::Vertical, this);
  layout->addWidget(splitter);

  auto* top = new QWidget(splitter);
  auto* top_layout = new QHBoxLayout(top);
  top_layout->setContentsMargins(0, 0, 0, 0);
  summary_ = new SummaryPanel(top);
  summary_->setMinimumWidth(300);
  top_layout->addWidget(summary_, 3);
  breakdown_ = new BreakdownChart(top);
  top_layout->addWidget(breakdown_, 4);
  memory_ = new MemoryChart(QStringLiteral("resultMemory"), top);
  top_layout->addWidget(memory_, 3);
  splitter->addWidget(top);

  tabs_ = new QTabWidget(splitter);
  tabs_->setObjectName(QStringLiteral("resultTabs"));

  // Timeline tab.
  auto* timeline_tab = new QWidget(tabs_);
  auto* timeline_layout = new QVBoxLayout(timeline_tab);
  timeline_layout->setContentsMargins(2, 2, 2, 2);
  auto* bar = new QHBoxLayout;
  step_ = new QComboBox(timeline_tab);
  step_->setObjectName(QStringLiteral("traceStep"));
  step_->setToolTip(QStringLiteral("The step of a real run whose trace is shown"));
  step_->setVisible(false);
  bar->addWidget(step_);
  auto addButton = [&](const QString& text, const QString& tip) {
    auto* button = new QToolButton(timeline_tab);
    button->setText(text);
    button->setToolTip(tip);
    button->setAutoRaise(true);
    bar->addWidget(button);
    return button;
  };
  QToolButton* fit = addButton(QStringLiteral("Fit"), QStringLiteral("Show the whole step (0, Home, double-click)"));
  QToolButton* zoom_in = addButton(QStringLiteral("+"), QStringLiteral("Zoom in (+, wheel)"));
  QToolButton* zoom_out = addButton(QStringLiteral("−"), QStringLiteral("Zoom out (-, wheel)"));
  auto* legend = new QLabel(legendHtml(), timeline_tab);
  legend->setTextFormat(Qt::RichText);
  bar->addWidget(legend, 1);
  trace_info_ = new QLabel(timeline_tab);
  trace_info_->setObjectName(QStringLiteral("traceInfo"));
  bar->addWidget(trace_info_);
  timeline_ = new TimelineView(timeline_tab);
  bar->addWidget(makeImageExportButton(timeline_, QStringLiteral("timeline"), timeline_tab));
  timeline_layout->addLayout(bar);
  timeline_layout->addWidget(timeline_, 1);
  op_details_ = new QLabel(timeline_tab);
  op_details_->setObjectName(QStringLiteral("opDetails"));
  op_details_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  op_details_->setText(QStringLiteral("Wheel: zoom · drag: pan · Shift+wheel: scroll lanes · hover: details · click: select"));
  timeline_layout->addWidget(op_details_);
  tabs_->addTab(timeline_tab, QStringLiteral("Timeline"));
  connect(fit, &QToolButton::clicked, timeline_, &TimelineView::fitAll);
  connect(zoom_in, &QToolButton::clicked, this,
          [this] { timeline_->zoom(2.0, TimelineView::kLabelWidth + (timeline_->viewport()->width() - TimelineView::kLabelWidth) / 2); });
  connect(zoom_out, &QToolButton::clicked, this,
          [this] { timeline_->zoom(0.5, TimelineView::kLabelWidth + (timeline_->viewport()->width() - TimelineView::kLabelWidth) / 2); });
  connect(timeline_, &TimelineView::opSelected, this, [this](std::optional<std::uint32_t> index) {
    if (!index) {
      op_details_->setText(QStringLiteral("No op selected."));
      return;
    }
    QString text = QString::fromStdString(op_details(timeline_->model().record(*index)));
    op_details_->setText(QStringLiteral("Selected: ") + text.replace(QLatin1Char('\n'), QStringLiteral(" · ")));
  });
  connect(step_, &QComboBox::activated, this, [this](int index) {
    if (!load_step_) return;
    const std::int64_t step = step_->itemData(index).toLongLong();
    result_.trace = load_step_(step);
    result_.trace_step = step;
    showTrace();
  });

  // Metrics tab (training runs).
  auto* metrics_tab = new QWidget(tabs_);
  auto* metrics_layout = new QVBoxLayout(metrics_tab);
  auto* metrics_bar = new QHBoxLayout;
  metric_ = new QComboBox(metrics_tab);
  metric_->setObjectName(QStringLiteral("metricName"));
  metrics_bar->addWidget(new QLabel(QStringLiteral("Metric:"), metrics_tab));
  metrics_bar->addWidget(metric_);
  metrics_bar->addStretch(1);
  metrics_view_ = new ChartView(QStringLiteral("metrics"), metrics_tab);
  metrics_bar->addWidget(makeImageExportButton(metrics_view_, QStringLiteral("metrics"), metrics_tab));
  metrics_layout->addLayout(metrics_bar);
  metrics_layout->addWidget(metrics_view_, 1);
  tabs_->addTab(metrics_tab, QStringLiteral("Metrics"));
  connect(metric_, &QComboBox::currentIndexChanged, this, [this] { showMetrics(); });

  // All fields tab.
  fields_ = new QStandardItemModel(this);
  fields_view_ = new TableView(QStringLiteral("result-fields"), tabs_);
  fields_view_->setModel(fields_);
  tabs_->addTab(fields_view_, QStringLiteral("All fields"));

  splitter->addWidget(tabs_);
  splitter->setStretchFactor(0, 2);
  splitter->setStretchFactor(1, 3);
  splitter->setSizes({290, 440});
  clear();
}

void ResultPage::clear() {
  result_ = {};
  load_step_ = {};
  summary_->clear(QStringLiteral("No result yet: run the scenario (Ctrl+R) or open a run from History."));
  breakdown_->showMessage(QString());
  memory_->showMessage(QString());
  timeline_->setRecords(nullptr);
  trace_info_->clear();
  step_->setVisible(false);
  fields_->clear();
  metric_->clear();
}

void ResultPage::showResult(const ResultData& result, StepLoader load_step) {
  result_ = result;
  load_step_ = std::move(load_step);
  summary_->showResult(result_);
  const std::vector<std::pair<QString, double>> parts = result_.breakdown();
  const QJsonArray collective = result_.json.value(QStringLiteral("collective")).toArray();
  if (!collective.isEmpty()) {
    breakdown_->setCollectiveRows(collective, result_.json.value(QStringLiteral("kind")).toString());
  } else if (parts.empty()) {
    breakdown_->showMessage(result_.kind == QLatin1String("training")
                                ? QStringLiteral("A measured run has no breakdown; see its timeline.")
                                : QStringLiteral("This result has no time breakdown."));
  } else {
    breakdown_->setBreakdown(parts, result_.number(QStringLiteral("step_time_s")).value_or(0));
  }
  if (const auto memory = result_.memory()) {
    memory_->setBars(memory->bars.size() > 1 ? QStringLiteral("Memory per GPU by pipeline stage")
                                             : QStringLiteral("Memory per GPU (worst stage)"),
                     memory->bars, memory->capacity_bytes,
                     memory->worst_index, memory->fits);
  } else {
    memory_->showMessage(collective.isEmpty() ? QStringLiteral("This result reports no memory.")
                                              : QStringLiteral("A collective what-if uses no training memory."));
  }

  step_->clear();
  for (std::int64_t step : result_.trace_steps) step_->addItem(QStringLiteral("step %1").arg(step), QVariant::fromValue<qlonglong>(step));
  step_->setCurrentIndex(step_->findData(QVariant::fromValue<qlonglong>(result_.trace_step)));
  step_->setVisible(result_.trace_steps.size() > 1 && static_cast<bool>(load_step_));
  showTrace();

  metric_->blockSignals(true);
  metric_->clear();
  std::set<std::string> names;
  for (const auto& point : result_.metrics) names.insert(point.name);
  for (const std::string& name : names) metric_->addItem(QString::fromStdString(name));
  const int loss = metric_->findText(QStringLiteral("loss"));
  if (loss >= 0) metric_->setCurrentIndex(loss);
  metric_->blockSignals(false);
  tabs_->setTabEnabled(1, !names.empty());
  showMetrics();
  showFields();
  tabs_->setCurrentIndex(0);
}

void ResultPage::showTrace() {
  timeline_->setRecords(result_.trace);
  const TimelineModel& model = timeline_->model();
  if (model.empty()) {
    trace_info_->setText(QStringLiteral("no trace stored"));
    op_details_->setText(QStringLiteral("This run has no per-op trace."));
    return;
  }
  trace_info_->setText(QStringLiteral("%1 ops · %2 lanes · %3")
                           .arg(model.opCount())
                           .arg(model.lanes().size())
                           .arg(formatDuration(model.endS() - model.beginS())));
  op_details_->setText(QStringLiteral("Wheel: zoom · drag: pan · Shift+wheel: scroll lanes · hover: details · click: select"));
}

void ResultPage::showMetrics() {
  auto* chart = new QChart;
  chart->setAnimationOptions(QChart::NoAnimation);
  chart->legend()->hide();
  const QString name = metric_->currentText();
  if (!name.isEmpty()) {
    auto* series = new QLineSeries;
    series->setName(name);
    double low = std::numeric_limits<double>::infinity();
    double high = -low;
    std::int64_t first = 0, last = 0;
    bool any = false;
    for (const auto& point : result_.metrics) {
      if (QString::fromStdString(point.name) != name || !std::isfinite(point.value)) continue;
      series->append(static_cast<double>(point.step), point.value);
      low = std::min(low, point.value);
      high = std::max(high, point.value);
      if (!any) first = point.step;
      last = point.step;
      any = true;
    }
    chart->addSeries(series);
    chart->setTitle(QStringLiteral("%1 per step").arg(name));
    auto* x = new QValueAxis;
    x->setTitleText(QStringLiteral("step"));
    x->setLabelFormat(QStringLiteral("%d"));
    x->setRange(static_cast<double>(first), static_cast<double>(std::max(last, first + 1)));
    auto* y = new QValueAxis;
    y->setTitleText(name);
    if (any) y->setRange(low, high > low ? high : low + 1);
    y->applyNiceNumbers();
    chart->addAxis(x, Qt::AlignBottom);
    chart->addAxis(y, Qt::AlignLeft);
    series->attachAxis(x);
    series->attachAxis(y);
  }
  metrics_view_->setChart(chart);
}

void ResultPage::showFields() {
  fields_->clear();
  fields_->setHorizontalHeaderLabels({QStringLiteral("field"), QStringLiteral("value")});
  addFlattened(fields_, QString(), result_.json);
  fields_view_->horizontalHeader()->resizeSection(0, 320);
}

}  // namespace tandem::gui
