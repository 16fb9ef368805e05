#pragma once
// Memory per GPU against capacity: one stacked bar per pipeline stage (weights, gradients,
// optimizer state, activations) and the capacity as a dashed line, with a one-line verdict
// above. Shows the live estimate in the editor and a result's memory after a run.

#include <optional>
#include <vector>

#include <QWidget>

class QLabel;

namespace tandem::strategy {
struct MemoryEstimate;
}

namespace tandem::gui {

class ChartView;

struct MemoryBar {
  QString label;  // "stage 0"
  double weights = 0;  // bytes
  double gradients = 0;
  double optimizer = 0;
  double activations = 0;
  double other = 0;  // anything the source reports beyond the four (workspace, buffers)
  double total() const { return weights + gradients + optimizer + activations + other; }
};

class MemoryChart : public QWidget {
  Q_OBJECT

 public:
  MemoryChart(const QString& export_name, QWidget* parent = nullptr);

  void setBars(const QString& title, const std::vector<MemoryBar>& bars, double capacity_bytes,
               int worst_index, std::optional<bool> fits = std::nullopt);
  void setEstimate(const strategy::MemoryEstimate& estimate);
  void showMessage(const QString& message);

  QString verdictText() const;
  ChartView* chartView() const { return view_; }

 private:
  QLabel* verdict_ = nullptr;
  ChartView* view_ = nullptr;
};

}  // namespace tandem::gui
