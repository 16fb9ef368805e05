#pragma once
// The headline numbers of a result: step time, tokens/s, MFU, model and hardware TFLOP/s per
// GPU, GPUs, memory (fits or not), time to train; for real training runs the losses. Each
// value label is named "summary:<key>" so tests and screen readers can find it.

#include <QWidget>

class QFormLayout;
class QLabel;

namespace tandem::gui {

struct ResultData;

class SummaryPanel : public QWidget {
  Q_OBJECT

 public:
  explicit SummaryPanel(QWidget* parent = nullptr);
  void showResult(const ResultData& result);
  void clear(const QString& message);
  // The text shown for a key ("" when the row is absent).
  QString valueText(const QString& key) const;

 private:
  void addRow(const QString& key, const QString& label, const QString& value, const QString& tooltip = {});

  QLabel* heading_ = nullptr;
  QFormLayout* form_ = nullptr;
};

}  // namespace tandem::gui
