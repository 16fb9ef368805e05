#pragma once
// A QTableView with a right-click menu to export the table as CSV or copy the selection as
// tab-separated text, and a name used for the suggested file name.

#include <QTableView>

namespace tandem::gui {

class TableView : public QTableView {
  Q_OBJECT

 public:
  TableView(const QString& export_name, QWidget* parent = nullptr);
  void copySelection() const;

 protected:
  void contextMenuEvent(QContextMenuEvent* event) override;
  void keyPressEvent(QKeyEvent* event) override;

 private:
  QString export_name_;
};

}  // namespace tandem::gui
