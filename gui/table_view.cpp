#include "gui/table_view.hpp"

#include <algorithm>

#include <QApplication>
#include <QClipboard>
#include <QContextMenuEvent>
#include <QHeaderView>
#include <QKeySequence>
#include <QMenu>

#include "gui/export.hpp"

namespace tandem::gui {

TableView::TableView(const QString& export_name, QWidget* parent)
    : QTableView(parent), export_name_(export_name) {
  setObjectName(export_name);
  setAlternatingRowColors(true);
  setSelectionBehavior(QAbstractItemView::SelectRows);
  setSortingEnabled(true);
  setWordWrap(false);
  verticalHeader()->setVisible(false);
  verticalHeader()->setDefaultSectionSize(fontMetrics().height() + 6);
  horizontalHeader()->setStretchLastSection(true);
  horizontalHeader()->setSectionResizeMode(QHeaderView::Interactive);
}

void TableView::copySelection() const {
  QModelIndexList indexes = selectionModel() ? selectionModel()->selectedIndexes() : QModelIndexList();
  if (indexes.isEmpty()) return;
  std::sort(indexes.begin(), indexes.end(), [](const QModelIndex& a, const QModelIndex& b) {
    return a.row() != b.row() ? a.row() < b.row() : a.column() < b.column();
  });
  QString text;
  int row = indexes.first().row();
  QStringList cells;
  for (const QModelIndex& index : indexes) {
    if (index.row() != row) {
      text += cells.join(QLatin1Char('\t')) + QLatin1Char('\n');
      cells.clear();
      row = index.row();
    }
    cells << index.data(Qt::DisplayRole).toString();
  }
  text += cells.join(QLatin1Char('\t')) + QLatin1Char('\n');
  QApplication::clipboard()->setText(text);
}

void TableView::contextMenuEvent(QContextMenuEvent* event) {
  QMenu menu(this);
  menu.addAction(QStringLiteral("Copy"), this, [this] { copySelection(); });
  if (model() != nullptr)
    menu.addAction(QStringLiteral("Export table as CSV…"), this,
                   [this] { promptExportCsv(this, *model(), export_name_); });
  menu.exec(event->globalPos());
}

void TableView::keyPressEvent(QKeyEvent* event) {
  if (event->matches(QKeySequence::Copy)) {
    copySelection();
    return;
  }
  QTableView::keyPressEvent(event);
}

}  // namespace tandem::gui
