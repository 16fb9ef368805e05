#pragma once
// A QChartView with antialiasing, a right-click "Export as PNG/SVG" menu and a name used for
// the suggested file name.

#include <QtCharts/QChartView>

namespace tandem::gui {

class ChartView : public QChartView {
  Q_OBJECT

 public:
  ChartView(const QString& export_name, QWidget* parent = nullptr);

 protected:
  void contextMenuEvent(QContextMenuEvent* event) override;

 private:
  QString export_name_;
};

}  // namespace tandem::gui
