#pragma once
// The scenario form: one row per scalar key of the schema (gui/scenario_fields.hpp), grouped in
// sections, each with its editor (combo box for choices and booleans, text otherwise), its unit,
// a tooltip from the schema's documentation and, beneath it, the validation errors whose path
// names it — checked as the user types.

#include <string>
#include <vector>

#include <QWidget>

#include "gui/scenario_document.hpp"

class QCheckBox;
class QComboBox;
class QGroupBox;
class QLabel;
class QLineEdit;

namespace tandem::gui {

struct FormField;

class ScenarioForm : public QWidget {
  Q_OBJECT

 public:
  explicit ScenarioForm(ScenarioDocument* document, QWidget* parent = nullptr);

  // The editor of a key (QLineEdit or QComboBox), nullptr when the key has no field.
  QWidget* editorFor(const QString& path) const;
  // The error text shown under a field ("" when none).
  QString errorTextFor(const QString& path) const;
  bool isFieldVisible(const QString& path) const;
  void focusField(const QString& path);
  void setShowAllFields(bool show);

 private:
  struct Row {
    const FormField* field = nullptr;
    QWidget* container = nullptr;
    QLabel* label = nullptr;
    QLineEdit* line = nullptr;
    QComboBox* combo = nullptr;
    QLabel* error = nullptr;
    QGroupBox* group = nullptr;
    std::string typed_error;  // from checking what was typed, before the whole document
  };

  QWidget* buildRow(Row& row);
  void onEdited(Row& row, const QString& text);
  // `force`: also fields being edited (a new document replaces what is typed).
  void refreshValues(bool force = false);
  void refreshErrors();
  void refreshVisibility();
  QString currentText(const Row& row) const;
  const Row* findRow(const QString& path) const;

  ScenarioDocument* document_;
  QCheckBox* show_all_ = nullptr;
  std::vector<Row> rows_;
  std::vector<QGroupBox*> groups_;
  bool updating_ = false;
};

}  // namespace tandem::gui
