#include "gui/export.hpp"

#include <QAbstractItemModel>
#include <QFileDialog>
#include <QGraphicsView>
#include <QImage>
#include <QMessageBox>
#include <QPainter>
#include <QSaveFile>
#include <QStandardPaths>
#include <QSvgGenerator>
#include <QToolButton>

namespace tandem::gui {
namespace {

QString csvField(const QString& text) {
  if (!text.contains(QLatin1Char(',')) && !text.contains(QLatin1Char('"')) &&
      !text.contains(QLatin1Char('\n')) && !text.contains(QLatin1Char('\r')))
    return text;
  QString quoted = text;
  quoted.replace(QLatin1String("\""), QLatin1String("\"\""));
  return QLatin1Char('"') + quoted + QLatin1Char('"');
}

// A chart view renders its scene; any other widget paints itself.
void renderInto(QWidget* view, QPainter& painter, const QRect& target) {
  if (auto* graphics = qobject_cast<QGraphicsView*>(view)) {
    graphics->render(&painter, QRectF(target), graphics->viewport()->rect());
  } else {
    view->render(&painter, QPoint(), QRegion(), QWidget::DrawChildren);
  }
}

QString documentsFolder() {
  return QStandardPaths::writableLocation(QStandardPaths::DocumentsLocation);
}

}  // namespace

bool exportImage(QWidget* view, const QString& path, QString* error) {
  const QSize size = view->size().isEmpty() ? QSize(1200, 700) : view->size();
  if (path.endsWith(QLatin1String(".svg"), Qt::CaseInsensitive)) {
    QSvgGenerator generator;
    generator.setFileName(path);
    generator.setSize(size);
    generator.setViewBox(QRect(QPoint(0, 0), size));
    generator.setTitle(view->windowTitle().isEmpty() ? view->objectName() : view->windowTitle());
    generator.setDescription(QStringLiteral("Exported by tandem-studio"));
    QPainter painter;
    if (!painter.begin(&generator)) {
      if (error) *error = QStringLiteral("Cannot write %1").arg(path);
      return false;
    }
    renderInto(view, painter, QRect(QPoint(0, 0), size));
    painter.end();
    return true;
  }
  QImage image(size * 2, QImage::Format_ARGB32_Premultiplied);  // 2x for sharp text
  image.setDevicePixelRatio(2.0);
  image.fill(Qt::white);
  {
    QPainter painter(&image);
    painter.setRenderHint(QPainter::Antialiasing);
    renderInto(view, painter, QRect(QPoint(0, 0), size));
  }
  if (!image.save(path, "PNG")) {
    if (error) *error = QStringLiteral("Cannot write %1").arg(path);
    return false;
  }
  return true;
}

QString modelToCsv(const QAbstractItemModel& model) {
  QString out;
  QStringList header;
  for (int column = 0; column < model.columnCount(); ++column)
    header << csvField(model.headerData(column, Qt::Horizontal, Qt::DisplayRole).toString());
  out += header.join(QLatin1Char(',')) + QLatin1String("\r\n");
  for (int row = 0; row < model.rowCount(); ++row) {
    QStringList fields;
    for (int column = 0; column < model.columnCount(); ++column) {
      const QModelIndex index = model.index(row, column);
      // Exact values where the model keeps them (Qt::UserRole), else what is displayed.
      QVariant value = model.data(index, Qt::UserRole);
      if (!value.isValid()) value = model.data(index, Qt::DisplayRole);
      fields << csvField(value.toString());
    }
    out += fields.join(QLatin1Char(',')) + QLatin1String("\r\n");
  }
  return out;
}

bool exportCsv(const QAbstractItemModel& model, const QString& path, QString* error) {
  QSaveFile file(path);
  if (!file.open(QIODevice::WriteOnly)) {
    if (error) *error = QStringLiteral("Cannot write %1: %2").arg(path, file.errorString());
    return false;
  }
  file.write(modelToCsv(model).toUtf8());
  if (!file.commit()) {
    if (error) *error = QStringLiteral("Cannot write %1: %2").arg(path, file.errorString());
    return false;
  }
  return true;
}

void promptExportImage(QWidget* view, const QString& suggested_name) {
  QString selected;
  const QString path = QFileDialog::getSaveFileName(
      view, QStringLiteral("Export image"), documentsFolder() + QLatin1Char('/') + suggested_name + QStringLiteral(".png"),
      QStringLiteral("PNG image (*.png);;SVG image (*.svg)"), &selected);
  if (path.isEmpty()) return;
  QString final_path = path;
  if (!final_path.contains(QLatin1Char('.')))
    final_path += selected.contains(QLatin1String("svg")) ? QStringLiteral(".svg") : QStringLiteral(".png");
  QString error;
  if (!exportImage(view, final_path, &error))
    QMessageBox::warning(view, QStringLiteral("Export failed"), error);
}

void promptExportCsv(QWidget* parent, const QAbstractItemModel& model, const QString& suggested_name) {
  const QString path = QFileDialog::getSaveFileName(
      parent, QStringLiteral("Export table"), documentsFolder() + QLatin1Char('/') + suggested_name + QStringLiteral(".csv"),
      QStringLiteral("CSV (*.csv)"));
  if (path.isEmpty()) return;
  QString error;
  if (!exportCsv(model, path, &error)) QMessageBox::warning(parent, QStringLiteral("Export failed"), error);
}

QWidget* makeImageExportButton(QWidget* view, const QString& suggested_name, QWidget* parent) {
  auto* button = new QToolButton(parent);
  button->setText(QStringLiteral("Export…"));
  button->setToolTip(QStringLiteral("Save this chart as PNG or SVG"));
  button->setAutoRaise(true);
  QObject::connect(button, &QToolButton::clicked, view,
                   [view, suggested_name] { promptExportImage(view, suggested_name); });
  return button;
}

}  // namespace tandem::gui
