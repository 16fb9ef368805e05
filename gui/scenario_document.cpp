#include "gui/scenario_document.hpp"

#include <QFile>
#include <QFileInfo>
#include <QSaveFile>

#include "gui/scenario_fields.hpp"

namespace tandem::gui {

ScenarioDocument::ScenarioDocument(QObject* parent) : QObject(parent) {
  document_ = YAML::Node(YAML::NodeType::Map);
  title_ = QStringLiteral("untitled.yaml");
  validate();
}

bool ScenarioDocument::loadFile(const QString& path, QString* error) {
  QFile file(path);
  if (!file.open(QIODevice::ReadOnly | QIODevice::Text)) {
    if (error) *error = QStringLiteral("Cannot read %1: %2").arg(path, file.errorString());
    return false;
  }
  const QString text = QString::fromUtf8(file.readAll());
  const QFileInfo info(path);
  loadText(text, info.absolutePath(), info.fileName());
  file_path_ = info.absoluteFilePath();
  emit filePathChanged(file_path_);
  return true;
}

void ScenarioDocument::loadText(const QString& yaml, const QString& base_directory,
                                const QString& title) {
  file_path_.clear();
  title_ = title;
  base_directory_ = std::filesystem::path(base_directory.toStdString());
  text_ = yaml;
  document_ = YAML::Node(YAML::NodeType::Map);
  parseText();
  setModified(false);
  emit filePathChanged(file_path_);
  validate();
  emit documentChanged(ChangeOrigin::Load);
}

bool ScenarioDocument::saveFile(const QString& path, QString* error) {
  QSaveFile file(path);
  if (!file.open(QIODevice::WriteOnly | QIODevice::Text)) {
    if (error) *error = QStringLiteral("Cannot write %1: %2").arg(path, file.errorString());
    return false;
  }
  file.write(text_.toUtf8());
  if (!file.commit()) {
    if (error) *error = QStringLiteral("Cannot write %1: %2").arg(path, file.errorString());
    return false;
  }
  const QFileInfo info(path);
  file_path_ = info.absoluteFilePath();
  title_ = info.fileName();
  const auto new_base = std::filesystem::path(info.absolutePath().toStdString());
  const bool base_changed = new_base != base_directory_;
  base_directory_ = new_base;
  setModified(false);
  emit filePathChanged(file_path_);
  if (base_changed) validate();  // relative paths now resolve elsewhere
  return true;
}

void ScenarioDocument::setYamlText(const QString& text) {
  if (text == text_) return;
  text_ = text;
  setModified(true);
  parseText();
  validate();
  // The form redraws only from a well-formed document; while the text is broken it keeps the
  // last good values and the error list shows the syntax error.
  if (well_formed_) emit documentChanged(ChangeOrigin::Yaml);
}

void ScenarioDocument::setField(const std::string& path, const QString& text) {
  const FormField* field = find_form_field(path);
  const strategy::ValueType type =
      field != nullptr ? field->key->type : strategy::ValueType::String;
  if (!document_ || !document_.IsMap()) document_ = YAML::Node(YAML::NodeType::Map);
  const std::string value = text.trimmed().toStdString();
  if (value.empty()) remove_value(document_, path);
  else set_value(document_, path, value, type);
  text_ = QString::fromStdString(strategy::document_to_yaml(document_));
  // Reparse the regenerated text so node positions (error lines in the YAML tab) match it.
  parseText();
  setModified(true);
  validate();
  emit documentChanged(ChangeOrigin::Form);
}

std::optional<std::string> ScenarioDocument::field(const std::string& path) const {
  return value_at(document_, path);
}

QString ScenarioDocument::title() const { return title_; }

void ScenarioDocument::setModified(bool modified) {
  if (modified_ == modified) return;
  modified_ = modified;
  emit modificationChanged(modified_);
}

void ScenarioDocument::parseText() {
  try {
    YAML::Node parsed = YAML::Load(text_.toStdString());
    if (!parsed || parsed.IsNull()) parsed = YAML::Node(YAML::NodeType::Map);
    document_ = parsed;
    well_formed_ = true;
    syntax_error_.reset();
  } catch (const YAML::Exception& exception) {
    well_formed_ = false;
    syntax_error_ = strategy::ValidationError{
        "(yaml)",
        "line " + std::to_string(exception.mark.line + 1) + ", column " +
            std::to_string(exception.mark.column + 1),
        "well-formed YAML (" + exception.msg + ")"};
  }
}

void ScenarioDocument::validate() {
  validation_ = {};
  if (!well_formed_) {
    if (syntax_error_) validation_.errors.push_back(*syntax_error_);
    emit validated();
    return;
  }
  try {
    auto scenario = std::make_shared<strategy::Scenario>(
        strategy::scenario_from_document(document_, base_directory_));
    if (scenario->model && scenario->strategy) {
      try {
        validation_.memory = strategy::estimate_memory(*scenario);
      } catch (const std::exception& exception) {
        validation_.memory_error = QString::fromStdString(exception.what());
      }
    }
    validation_.scenario = std::move(scenario);
  } catch (const strategy::ScenarioError& error) {
    validation_.errors = error.errors();
  } catch (const std::exception& exception) {
    validation_.errors.push_back({"(document)", "", exception.what()});
  }
  emit validated();
}

}  // namespace tandem::gui
