#pragma once
// The editor page: the scenario as a form and as YAML (two tabs of one document), the list of
// problems the strategy layer finds as the user types, and the live memory estimate — what
// `simrun --check` prints — as a chart per pipeline stage.

#include <QWidget>

#include "gui/scenario_document.hpp"

class QLabel;
class QListWidget;
class QTabWidget;

namespace tandem::gui {

class MemoryChart;
class ScenarioForm;
class YamlEditor;

class EditorPage : public QWidget {
  Q_OBJECT

 public:
  EditorPage(ScenarioDocument* document, QWidget* parent = nullptr);

  ScenarioForm* form() const { return form_; }
  YamlEditor* yamlEditor() const { return yaml_; }
  QListWidget* problems() const { return problems_; }
  MemoryChart* memoryChart() const { return memory_; }
  QTabWidget* tabs() const { return tabs_; }
  // Before saving or running: applies text typed in the YAML tab that is still pending.
  void flushEdits();
  // Shows the form field of `path` (or its YAML line when the form has no such field).
  void revealPath(const QString& path);
  // A widget the main window places under the problems (the run controls).
  void setRunControls(QWidget* controls);

 private:
  void showValidation();

  ScenarioDocument* document_;
  QTabWidget* tabs_ = nullptr;
  ScenarioForm* form_ = nullptr;
  YamlEditor* yaml_ = nullptr;
  QListWidget* problems_ = nullptr;
  QLabel* problems_title_ = nullptr;
  MemoryChart* memory_ = nullptr;
  QLabel* memory_details_ = nullptr;
  QWidget* side_ = nullptr;
};

}  // namespace tandem::gui
