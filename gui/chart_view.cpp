#include "gui/chart_view.hpp"

#include <QContextMenuEvent>
#include <QMenu>

#include "gui/export.hpp"

namespace tandem::gui {

ChartView::ChartView(const QString& export_name, QWidget* parent)
    : QChartView(parent), export_name_(export_name) {
  setRenderHint(QPainter::Antialiasing);
  setObjectName(export_name);
  setMinimumSize(240, 160);
}

void ChartView::contextMenuEvent(QContextMenuEvent* event) {
  QMenu menu(this);
  menu.addAction(QStringLiteral("Export as PNG or SVG…"), this,
                 [this] { promptExportImage(this, export_name_); });
  menu.exec(event->globalPos());
}

}  // namespace tandem::gui
