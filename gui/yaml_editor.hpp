#pragma once
// The YAML tab: the scenario as text, kept in sync with the form through ScenarioDocument.
// Typing reparses after a short pause; lines that validation errors point to are underlined
// and the syntax error (if any) is shown under the text.

#include <QWidget>

#include "gui/scenario_document.hpp"

class QLabel;
class QPlainTextEdit;
class QTimer;

namespace tandem::gui {

class YamlEditor : public QWidget {
  Q_OBJECT

 public:
  explicit YamlEditor(ScenarioDocument* document, QWidget* parent = nullptr);

  QPlainTextEdit* textEdit() const { return text_; }
  // Applies pending typing now (the pause is skipped); tests and Save call it.
  void flush();
  // Moves the cursor to the line of a key path ("strategy.tp") and focuses the text.
  void goToPath(const QString& path);

 private:
  void showDocumentText();
  void markErrors();

  ScenarioDocument* document_;
  QPlainTextEdit* text_ = nullptr;
  QLabel* status_ = nullptr;
  QTimer* pause_ = nullptr;
  bool updating_ = false;
};

}  // namespace tandem::gui
