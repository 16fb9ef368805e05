#pragma once
// The scenario being edited: its YAML text, the document parsed from it, where it lives on
// disk, and the result of validating it (the strategy layer's structured errors, the resolved
// Scenario and its memory estimate). The form and the YAML tab both edit this one object, which
// is how they stay in sync: each edits it and redraws from its documentChanged signal.

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <QObject>
#include <QString>

#include "strategy/memory_model.hpp"
#include "strategy/scenario.hpp"

namespace tandem::gui {

enum class ChangeOrigin { Load, Form, Yaml };

struct ValidationState {
  std::vector<strategy::ValidationError> errors;       // empty = valid
  std::shared_ptr<const strategy::Scenario> scenario;  // when valid
  std::optional<strategy::MemoryEstimate> memory;      // valid training scenarios
  QString memory_error;                                // estimate_memory threw
  bool valid() const { return errors.empty() && scenario != nullptr; }
};

class ScenarioDocument : public QObject {
  Q_OBJECT

 public:
  explicit ScenarioDocument(QObject* parent = nullptr);

  // Reads a scenario file (its text is shown as written, comments included).
  bool loadFile(const QString& path, QString* error);
  // Replaces the document by `yaml` that has no file yet (a built-in scenario, a sweep point);
  // relative paths resolve against `base_directory`.
  void loadText(const QString& yaml, const QString& base_directory, const QString& title);
  bool saveFile(const QString& path, QString* error);

  QString yamlText() const { return text_; }
  // From the YAML tab: reparses; when the text is not well-formed YAML the document keeps its
  // last well-formed state and the validation holds the syntax error.
  void setYamlText(const QString& text);
  // From the form: sets (or, for empty text, removes) one key and regenerates the YAML text.
  void setField(const std::string& path, const QString& text);
  std::optional<std::string> field(const std::string& path) const;

  const YAML::Node& document() const { return document_; }
  bool yamlWellFormed() const { return well_formed_; }
  const ValidationState& validation() const { return validation_; }

  QString filePath() const { return file_path_; }
  QString title() const;
  bool isModified() const { return modified_; }
  std::filesystem::path baseDirectory() const { return base_directory_; }

 signals:
  void documentChanged(tandem::gui::ChangeOrigin origin);
  void validated();
  void modificationChanged(bool modified);
  void filePathChanged(const QString& path);

 private:
  void setModified(bool modified);
  void parseText();
  void validate();

  QString text_;
  YAML::Node document_;
  bool well_formed_ = true;
  std::optional<strategy::ValidationError> syntax_error_;
  QString file_path_;
  QString title_;
  std::filesystem::path base_directory_;
  bool modified_ = false;
  ValidationState validation_;
};

}  // namespace tandem::gui
