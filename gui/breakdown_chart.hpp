#pragma once
// Where a step's time goes: one horizontal stacked bar of the result's breakdown_s (compute,
// exposed tensor/context/pipeline/data-parallel communication, pipeline bubble, optimizer),
// which sums to the step time; the legend gives each part's share.

#include <utility>
#include <vector>

#include <QJsonArray>
#include <QWidget>

class QLabel;

namespace tandem::gui {

class ChartView;

class BreakdownChart : public QWidget {
  Q_OBJECT

 public:
  explicit BreakdownChart(QWidget* parent = nullptr);
  void setBreakdown(const std::vector<std::pair<QString, double>>& parts, double step_time_s);
  // A collective what-if instead: bus bandwidth against message size (nccl-tests conventions),
  // from the result's "collective" rows {size_bytes, algorithm, time_s, busbw_GBps}.
  void setCollectiveRows(const QJsonArray& rows, const QString& kind);
  void showMessage(const QString& message);
  ChartView* chartView() const { return view_; }
  // Names of the bar sets shown ("compute 61.2 %"), for tests.
  QStringList legendEntries() const;

 private:
  ChartView* view_ = nullptr;
  QLabel* note_ = nullptr;
};

}  // namespace tandem::gui
