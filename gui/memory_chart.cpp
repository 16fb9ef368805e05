#include "gui/memory_chart.hpp"

#include <algorithm>

#include <QHBoxLayout>
#include <QLabel>
#include <QRegularExpression>
#include <QVBoxLayout>
#include <QtCharts/QBarCategoryAxis>
#include <QtCharts/QBarSet>
#include <QtCharts/QChart>
#include <QtCharts/QLineSeries>
#include <QtCharts/QStackedBarSeries>
#include <QtCharts/QValueAxis>

#include "gui/chart_view.hpp"
#include "gui/export.hpp"
#include "gui/format.hpp"
#include "strategy/memory_model.hpp"

namespace tandem::gui {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

}  // namespace

MemoryChart::MemoryChart(const QString& export_name, QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  auto* header = new QHBoxLayout;
  verdict_ = new QLabel(this);
  verdict_->setObjectName(export_name + QStringLiteral("Verdict"));
  verdict_->setWordWrap(true);
  verdict_->setTextFormat(Qt::RichText);
  header->addWidget(verdict_, 1);
  view_ = new ChartView(export_name, this);
  header->addWidget(makeImageExportButton(view_, export_name, this));
  layout->addLayout(header);
  layout->addWidget(view_, 1);
  showMessage(QStringLiteral("No memory estimate yet."));
}

void MemoryChart::showMessage(const QString& message) {
  verdict_->setText(message.toHtmlEscaped());
  auto* chart = new QChart;
  chart->legend()->hide();
  chart->setTitle(QString());
  view_->setChart(chart);  // the view owns and deletes the previous chart
}

void MemoryChart::setEstimate(const strategy::MemoryEstimate& estimate) {
  std::vector<MemoryBar> bars;
  for (const strategy::StageMemory& stage : estimate.stages) {
    MemoryBar bar;
    bar.label = QStringLiteral("stage %1").arg(stage.stage);
    bar.weights = stage.weights;
    bar.gradients = stage.gradients;
    bar.optimizer = stage.optimizer;
    bar.activations = stage.activations;
    bars.push_back(bar);
  }
  setBars(QStringLiteral("Memory per GPU by pipeline stage (estimate)"), bars,
          estimate.capacity_bytes, estimate.worst_stage, estimate.fits);
}

void MemoryChart::setBars(const QString& title, const std::vector<MemoryBar>& bars,
                          double capacity_bytes, int worst_index, std::optional<bool> fits_given) {
  if (bars.empty()) {
    showMessage(QStringLiteral("No memory figures."));
    return;
  }
  auto* chart = new QChart;
  chart->setTitle(title);
  chart->setAnimationOptions(QChart::NoAnimation);
  chart->legend()->setAlignment(Qt::AlignRight);
  chart->setMargins(QMargins(4, 4, 4, 4));

  auto* weights = new QBarSet(QStringLiteral("Weights"));
  auto* gradients = new QBarSet(QStringLiteral("Gradients"));
  auto* optimizer = new QBarSet(QStringLiteral("Optimizer"));
  auto* activations = new QBarSet(QStringLiteral("Activations"));
  auto* other = new QBarSet(QStringLiteral("Other"));
  weights->setColor(QColor(0x42, 0x85, 0xf4));
  gradients->setColor(QColor(0xfb, 0xbc, 0x05));
  optimizer->setColor(QColor(0x34, 0xa8, 0x53));
  activations->setColor(QColor(0xab, 0x47, 0xbc));
  other->setColor(QColor(0x9e, 0x9e, 0x9e));
  QStringList categories;
  double highest = 0;
  bool any_other = false;
  for (const MemoryBar& bar : bars) {
    *weights << bar.weights / kGiB;
    *gradients << bar.gradients / kGiB;
    *optimizer << bar.optimizer / kGiB;
    *activations << bar.activations / kGiB;
    *other << bar.other / kGiB;
    any_other = any_other || bar.other > 0;
    categories << bar.label;
    highest = std::max(highest, bar.total());
  }
  auto* series = new QStackedBarSeries;
  series->append(weights);
  series->append(gradients);
  series->append(optimizer);
  series->append(activations);
  if (any_other) series->append(other);
  else delete other;
  chart->addSeries(series);

  auto* x_axis = new QBarCategoryAxis;
  x_axis->append(categories);
  chart->addAxis(x_axis, Qt::AlignBottom);
  series->attachAxis(x_axis);
  auto* y_axis = new QValueAxis;
  y_axis->setTitleText(QStringLiteral("GiB per GPU"));
  y_axis->setRange(0, std::max(highest, capacity_bytes) / kGiB * 1.08);
  y_axis->applyNiceNumbers();
  chart->addAxis(y_axis, Qt::AlignLeft);
  series->attachAxis(y_axis);

  if (capacity_bytes > 0) {
    auto* capacity = new QLineSeries;
    capacity->setName(QStringLiteral("Capacity"));
    QPen pen(QColor(0xc6, 0x28, 0x28));
    pen.setStyle(Qt::DashLine);
    pen.setWidthF(2);
    capacity->setPen(pen);
    capacity->append(-0.5, capacity_bytes / kGiB);
    capacity->append(static_cast<double>(bars.size()) - 0.5, capacity_bytes / kGiB);
    chart->addSeries(capacity);
    capacity->attachAxis(x_axis);
    capacity->attachAxis(y_axis);
  }
  view_->setChart(chart);

  const int worst = std::clamp(worst_index, 0, static_cast<int>(bars.size()) - 1);
  const MemoryBar& peak = bars[static_cast<std::size_t>(worst)];
  // The source's own verdict when it gives one (it may count more than these bars show).
  const bool fits = fits_given.value_or(capacity_bytes <= 0 || peak.total() <= capacity_bytes);
  QString verdict = QStringLiteral("Peak <b>%1</b>").arg(formatBytes(peak.total()));
  if (bars.size() > 1) verdict += QStringLiteral(" (%1)").arg(peak.label.toHtmlEscaped());
  if (capacity_bytes > 0) {
    verdict += QStringLiteral(" of %1 — ").arg(formatBytes(capacity_bytes));
    verdict += fits ? QStringLiteral("<span style='color:#2e7d32'><b>fits</b></span>")
                    : QStringLiteral("<span style='color:#c62828'><b>does not fit</b></span>");
  }
  verdict_->setText(verdict);
}

QString MemoryChart::verdictText() const {
  return verdict_->text().remove(QRegularExpression(QStringLiteral("<[^>]*>")));
}

}  // namespace tandem::gui
