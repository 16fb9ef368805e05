#include "gui/breakdown_chart.hpp"

#include <cmath>
#include <limits>

#include <QJsonObject>

#include <QHBoxLayout>
#include <QLabel>
#include <QVBoxLayout>
#include <QtCharts/QBarCategoryAxis>
#include <QtCharts/QBarSet>
#include <QtCharts/QChart>
#include <QtCharts/QHorizontalStackedBarSeries>
#include <QtCharts/QLineSeries>
#include <QtCharts/QLogValueAxis>
#include <QtCharts/QScatterSeries>
#include <QtCharts/QValueAxis>

#include "gui/chart_view.hpp"
#include "gui/export.hpp"
#include "gui/format.hpp"

namespace tandem::gui {
namespace {

QColor colorFor(const QString& key) {
  if (key == QLatin1String("compute")) return QColor(0x42, 0x85, 0xf4);
  if (key == QLatin1String("exposed_tp_comm")) return QColor(0x8e, 0x24, 0xaa);
  if (key == QLatin1String("exposed_cp_comm")) return QColor(0xd8, 0x1b, 0x60);
  if (key == QLatin1String("exposed_pp_comm")) return QColor(0x8d, 0x6e, 0x63);
  if (key == QLatin1String("exposed_dp_comm")) return QColor(0x00, 0x89, 0x7b);
  if (key == QLatin1String("bubble")) return QColor(0xbd, 0xbd, 0xbd);
  if (key == QLatin1String("optimizer")) return QColor(0x34, 0xa8, 0x53);
  return QColor::fromHsv(static_cast<int>(qHash(key) % 360), 120, 200);
}

QString labelFor(const QString& key) {
  QString label = key;
  label.replace(QLatin1String("exposed_"), QLatin1String("exposed "));
  label.replace(QLatin1String("_comm"), QLatin1String(" comm"));
  label.replace(QLatin1Char('_'), QLatin1Char(' '));
  return label;
}

}  // namespace

BreakdownChart::BreakdownChart(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  auto* header = new QHBoxLayout;
  note_ = new QLabel(this);
  note_->setObjectName(QStringLiteral("breakdownNote"));
  note_->setWordWrap(true);
  header->addWidget(note_, 1);
  view_ = new ChartView(QStringLiteral("stepBreakdown"), this);
  header->addWidget(makeImageExportButton(view_, QStringLiteral("step-breakdown"), this));
  layout->addLayout(header);
  layout->addWidget(view_, 1);
  showMessage(QString());
}

void BreakdownChart::showMessage(const QString& message) {
  note_->setText(message);
  auto* chart = new QChart;
  chart->legend()->hide();
  view_->setChart(chart);
}

void BreakdownChart::setBreakdown(const std::vector<std::pair<QString, double>>& parts,
                                  double step_time_s) {
  if (parts.empty()) {
    showMessage(QStringLiteral("This result has no time breakdown."));
    return;
  }
  double total = 0;
  for (const auto& part : parts) total += part.second;
  const double scale = step_time_s >= 1 ? 1.0 : 1e3;  // seconds or milliseconds
  const QString unit = step_time_s >= 1 ? QStringLiteral("s") : QStringLiteral("ms");

  auto* chart = new QChart;
  chart->setTitle(QStringLiteral("Where the step's time goes"));
  chart->setAnimationOptions(QChart::NoAnimation);
  // On the right, one part per line: the labels stay readable in a narrow chart.
  chart->legend()->setAlignment(Qt::AlignRight);
  chart->setMargins(QMargins(4, 4, 4, 4));
  auto* series = new QHorizontalStackedBarSeries;
  series->setBarWidth(0.6);
  for (const auto& [key, seconds] : parts) {
    const double share = total > 0 ? seconds / total : 0;
    auto* set = new QBarSet(QStringLiteral("%1 %2").arg(labelFor(key), formatPercent(share)));
    set->setColor(colorFor(key));
    set->setBorderColor(colorFor(key).darker(120));
    *set << seconds * scale;
    series->append(set);
  }
  chart->addSeries(series);
  auto* category = new QBarCategoryAxis;
  category->append(QStringLiteral("step"));
  chart->addAxis(category, Qt::AlignLeft);
  series->attachAxis(category);
  auto* value = new QValueAxis;
  value->setTitleText(QStringLiteral("time (%1)").arg(unit));
  value->setRange(0, std::max(total, step_time_s) * scale);
  value->applyNiceNumbers();
  chart->addAxis(value, Qt::AlignBottom);
  series->attachAxis(value);
  view_->setChart(chart);

  QString note = QStringLiteral("Step time %1").arg(formatDuration(step_time_s));
  if (step_time_s > 0 && std::fabs(total - step_time_s) > 1e-3 * step_time_s)
    note += QStringLiteral(" (the parts sum to %1)").arg(formatDuration(total));
  note_->setText(note);
}

void BreakdownChart::setCollectiveRows(const QJsonArray& rows, const QString& kind) {
  if (rows.isEmpty()) {
    showMessage(QStringLiteral("This result has no collective rows."));
    return;
  }
  auto* chart = new QChart;
  chart->setTitle(QStringLiteral("%1: bus bandwidth per message size").arg(kind));
  chart->setAnimationOptions(QChart::NoAnimation);
  chart->legend()->hide();
  chart->setMargins(QMargins(4, 4, 4, 4));
  auto* line = new QLineSeries;
  auto* points = new QScatterSeries;
  points->setMarkerSize(8);
  line->setColor(QColor(0x00, 0x89, 0x7b));
  points->setColor(QColor(0x00, 0x89, 0x7b));
  double smallest = std::numeric_limits<double>::infinity(), largest = 0, fastest = 0;
  QStringList notes;
  for (const QJsonValue& value : rows) {
    const QJsonObject row = value.toObject();
    const double size = row.value(QStringLiteral("size_bytes")).toDouble();
    const double busbw = row.value(QStringLiteral("busbw_GBps")).toDouble();
    if (size <= 0) continue;
    const double mebibytes = size / (1024.0 * 1024.0);
    line->append(mebibytes, busbw);
    points->append(mebibytes, busbw);
    smallest = std::min(smallest, mebibytes);
    largest = std::max(largest, mebibytes);
    fastest = std::max(fastest, busbw);
    notes << QStringLiteral("%1: %2 (%3)")
                 .arg(formatBytes(size), formatDuration(row.value(QStringLiteral("time_s")).toDouble()),
                      row.value(QStringLiteral("algorithm")).toString());
  }
  chart->addSeries(line);
  chart->addSeries(points);
  auto* x = new QLogValueAxis;
  x->setBase(4);
  x->setTitleText(QStringLiteral("message size (MiB)"));
  x->setLabelFormat(QStringLiteral("%g"));
  x->setRange(smallest / 2, largest * 2);
  auto* y = new QValueAxis;
  y->setTitleText(QStringLiteral("bus bandwidth (GB/s)"));
  y->setRange(0, std::max(fastest, 1e-9) * 1.15);
  y->applyNiceNumbers();
  chart->addAxis(x, Qt::AlignBottom);
  chart->addAxis(y, Qt::AlignLeft);
  for (QAbstractSeries* series : {static_cast<QAbstractSeries*>(line), static_cast<QAbstractSeries*>(points)}) {
    series->attachAxis(x);
    series->attachAxis(y);
  }
  view_->setChart(chart);
  note_->setText(notes.join(QStringLiteral(" · ")));
}

QStringList BreakdownChart::legendEntries() const {
  QStringList names;
  if (view_->chart() == nullptr) return names;
  for (QAbstractSeries* series : view_->chart()->series()) {
    if (auto* bars = qobject_cast<QHorizontalStackedBarSeries*>(series))
      for (QBarSet* set : bars->barSets()) names << set->label();
  }
  return names;
}

}  // namespace tandem::gui
