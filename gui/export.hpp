#pragma once
// Export of what the views show: any chart or painted view as PNG or SVG, any table as CSV.
// The functions taking a path do the work (tests call them); the prompt* ones ask for a file
// first and report failures in a message box.

#include <QString>

class QAbstractItemModel;
class QWidget;

namespace tandem::gui {

// Renders `view` (a QChartView, the timeline, any widget) into `path`; the format follows the
// extension: .svg writes vector graphics, anything else a PNG at the widget's size.
bool exportImage(QWidget* view, const QString& path, QString* error);
// The model as CSV (RFC 4180 quoting), header row first, in the order the view shows it.
QString modelToCsv(const QAbstractItemModel& model);
bool exportCsv(const QAbstractItemModel& model, const QString& path, QString* error);

void promptExportImage(QWidget* view, const QString& suggested_name);
void promptExportCsv(QWidget* parent, const QAbstractItemModel& model, const QString& suggested_name);

// A small "Export" button offering PNG and SVG for `view`.
QWidget* makeImageExportButton(QWidget* view, const QString& suggested_name, QWidget* parent);

}  // namespace tandem::gui
