#include "gui/scenario_form.hpp"

#include <QCheckBox>
#include <QComboBox>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QScrollArea>
#include <QStyle>
#include <QVBoxLayout>

#include "gui/scenario_fields.hpp"

namespace tandem::gui {
namespace {

using strategy::ValueType;

// The first combo item stands for "not set": the key takes its default.
constexpr int kUnsetIndex = 0;

QString unsetLabel(const strategy::SchemaKey& key) {
  if (key.default_text.empty()) return QStringLiteral("(not set)");
  return QStringLiteral("(default: %1)").arg(QString::fromStdString(key.default_text));
}

QString fieldLabel(const FormField& field) {
  const std::string& path = field.key->path;
  const std::string shown = field.section.empty() ? path : path.substr(field.section.size() + 1);
  return QString::fromStdString(shown);
}

QString errorLine(const strategy::ValidationError& error) {
  if (error.value.empty()) return QStringLiteral("Expected %1").arg(QString::fromStdString(error.expected));
  return QStringLiteral("%1 is invalid: expected %2")
      .arg(QString::fromStdString(error.value), QString::fromStdString(error.expected));
}

void setInvalid(QWidget* editor, bool invalid) {
  if (editor->property("invalid").toBool() == invalid) return;
  editor->setProperty("invalid", invalid);
  editor->setStyleSheet(invalid ? QStringLiteral("border: 1px solid #c62828;") : QString());
}

}  // namespace

ScenarioForm::ScenarioForm(ScenarioDocument* document, QWidget* parent)
    : QWidget(parent), document_(document) {
  auto* outer = new QVBoxLayout(this);
  outer->setContentsMargins(0, 0, 0, 0);

  auto* top = new QHBoxLayout;
  top->setContentsMargins(6, 6, 6, 0);
  show_all_ = new QCheckBox(QStringLiteral("Show all fields"), this);
  show_all_->setObjectName(QStringLiteral("showAllFields"));
  show_all_->setToolTip(QStringLiteral(
      "Show every scalar key of the scenario schema, not only the common ones. Keys the "
      "scenario sets are always shown. Node groups and optimizer arguments are edited in the "
      "YAML tab."));
  top->addWidget(show_all_);
  top->addStretch(1);
  outer->addLayout(top);

  auto* scroll = new QScrollArea(this);
  scroll->setWidgetResizable(true);
  scroll->setFrameShape(QFrame::NoFrame);
  auto* body = new QWidget(scroll);
  auto* columns = new QHBoxLayout(body);
  auto* left = new QVBoxLayout;
  auto* right = new QVBoxLayout;
  columns->addLayout(left, 1);
  columns->addLayout(right, 1);
  scroll->setWidget(body);
  outer->addWidget(scroll, 1);

  // Rows are created once, in schema order, inside one group box per section.
  const auto& fields = form_fields();
  rows_.reserve(fields.size());
  for (const FormSection& section : form_sections()) {
    auto* group = new QGroupBox(QString::fromStdString(section.title), body);
    group->setObjectName(QStringLiteral("section_") +
                         QString::fromStdString(section.key.empty() ? "scenario" : section.key));
    auto* form = new QFormLayout(group);
    form->setFieldGrowthPolicy(QFormLayout::AllNonFixedFieldsGrow);
    form->setLabelAlignment(Qt::AlignRight | Qt::AlignTop);
    for (const FormField& field : fields) {
      if (field.section != section.key) continue;
      Row row;
      row.field = &field;
      row.group = group;
      rows_.push_back(row);
    }
    groups_.push_back(group);
    const bool left_column = section.key.empty() || section.key == "model" || section.key == "training";
    (left_column ? left : right)->addWidget(group);
  }
  left->addStretch(1);
  right->addStretch(1);
  for (Row& row : rows_) {
    auto* form = static_cast<QFormLayout*>(row.group->layout());
    row.label = new QLabel(fieldLabel(*row.field), row.group);
    row.label->setToolTip(QString::fromStdString(describe_key(*row.field->key)));
    form->addRow(row.label, buildRow(row));
  }

  connect(show_all_, &QCheckBox::toggled, this, [this] { refreshVisibility(); });
  connect(document_, &ScenarioDocument::documentChanged, this, [this](ChangeOrigin origin) {
    if (origin != ChangeOrigin::Form) {
      for (Row& row : rows_) row.typed_error.clear();
      refreshValues(true);
      refreshErrors();
    }
    refreshVisibility();
  });
  connect(document_, &ScenarioDocument::validated, this, [this] {
    refreshErrors();
    refreshValues();  // placeholders show values resolved from presets and defaults
  });
  refreshValues();
  refreshErrors();
  refreshVisibility();
}

QWidget* ScenarioForm::buildRow(Row& row) {
  const strategy::SchemaKey& key = *row.field->key;
  auto* container = new QWidget(row.group);
  row.container = container;
  auto* vertical = new QVBoxLayout(container);
  vertical->setContentsMargins(0, 0, 0, 0);
  vertical->setSpacing(1);
  auto* line_layout = new QHBoxLayout;
  line_layout->setContentsMargins(0, 0, 0, 0);
  vertical->addLayout(line_layout);

  const QString object_name = QStringLiteral("field:") + QString::fromStdString(key.path);
  const QString tooltip = QString::fromStdString(describe_key(key));
  QWidget* editor = nullptr;
  if (key.type == ValueType::Choice || key.type == ValueType::Boolean) {
    row.combo = new QComboBox(container);
    row.combo->addItem(unsetLabel(key), QString());
    const std::vector<std::string> values =
        key.type == ValueType::Boolean ? std::vector<std::string>{"true", "false"} : row.field->suggestions;
    for (const std::string& value : values)
      row.combo->addItem(QString::fromStdString(value), QString::fromStdString(value));
    Row* target = &row;
    connect(row.combo, &QComboBox::activated, this, [this, target](int index) {
      onEdited(*target, target->combo->itemData(index).toString());
    });
    editor = row.combo;
  } else if (!row.field->suggestions.empty()) {
    // Free text with suggestions (cluster.gpu: a built-in profile or a path).
    row.combo = new QComboBox(container);
    row.combo->setEditable(true);
    row.combo->setInsertPolicy(QComboBox::NoInsert);
    for (const std::string& value : row.field->suggestions)
      row.combo->addItem(QString::fromStdString(value), QString::fromStdString(value));
    Row* target = &row;
    connect(row.combo, &QComboBox::editTextChanged, this, [this, target](const QString& text) {
      if (!updating_) onEdited(*target, text);
    });
    editor = row.combo;
  } else {
    row.line = new QLineEdit(container);
    row.line->setClearButtonEnabled(true);
    Row* target = &row;
    connect(row.line, &QLineEdit::textEdited, this,
            [this, target](const QString& text) { onEdited(*target, text); });
    editor = row.line;
  }
  editor->setObjectName(object_name);
  editor->setToolTip(tooltip);
  editor->setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Fixed);
  line_layout->addWidget(editor, 1);
  // Every row reserves the unit column, so the editors line up.
  auto* unit = new QLabel(QString::fromStdString(key.unit), container);
  unit->setStyleSheet(QStringLiteral("color: palette(mid);"));
  unit->setFixedWidth(64);
  line_layout->addWidget(unit);

  row.error = new QLabel(container);
  row.error->setObjectName(QStringLiteral("error:") + QString::fromStdString(key.path));
  row.error->setWordWrap(true);
  row.error->setStyleSheet(QStringLiteral("color: #c62828;"));
  row.error->setVisible(false);
  vertical->addWidget(row.error);
  return container;
}

void ScenarioForm::onEdited(Row& row, const QString& text) {
  if (updating_) return;
  // Check what was typed against the schema at once; the whole document (cross-field rules)
  // is checked by the document right after.
  row.typed_error.clear();
  const std::string value = text.trimmed().toStdString();
  if (!value.empty()) {
    const auto errors = check_field_text(*row.field->key, value);
    if (!errors.empty()) row.typed_error = errorLine(errors.front()).toStdString();
  }
  document_->setField(row.field->key->path, text);
}

void ScenarioForm::refreshValues(bool force) {
  updating_ = true;
  const ValidationState& validation = document_->validation();
  for (Row& row : rows_) {
    const std::string& path = row.field->key->path;
    const std::optional<std::string> value = document_->field(path);
    const QString text = value ? QString::fromStdString(*value) : QString();
    std::optional<std::string> resolved;
    if (validation.scenario) resolved = resolved_text(*validation.scenario, path);
    if (row.line != nullptr) {
      if (row.line->text() != text && (force || !row.line->hasFocus())) row.line->setText(text);
      QString placeholder;
      if (resolved) placeholder = QStringLiteral("%1 (resolved)").arg(QString::fromStdString(*resolved));
      else if (!row.field->key->default_text.empty())
        placeholder = QStringLiteral("default: %1").arg(QString::fromStdString(row.field->key->default_text));
      else if (row.field->key->required) placeholder = QStringLiteral("required");
      row.line->setPlaceholderText(placeholder);
    } else if (row.combo != nullptr && row.combo->isEditable()) {
      if (row.combo->currentText() != text && (force || !row.combo->hasFocus())) row.combo->setEditText(text);
    } else if (row.combo != nullptr) {
      int index = text.isEmpty() ? kUnsetIndex : row.combo->findData(text);
      if (index < 0) {
        // A value outside the choices (the error says so): show it as written.
        row.combo->addItem(text, text);
        index = row.combo->count() - 1;
      }
      if (resolved && text.isEmpty())
        row.combo->setItemText(kUnsetIndex, QStringLiteral("(%1)").arg(QString::fromStdString(*resolved)));
      else
        row.combo->setItemText(kUnsetIndex, unsetLabel(*row.field->key));
      row.combo->setCurrentIndex(index);
    }
  }
  updating_ = false;
}

void ScenarioForm::refreshErrors() {
  const auto& errors = document_->validation().errors;
  for (Row& row : rows_) {
    const std::string& path = row.field->key->path;
    QStringList lines;
    if (!row.typed_error.empty()) lines << QString::fromStdString(row.typed_error);
    for (const auto& error : errors) {
      // "collective.sizes[1]" belongs to the collective.sizes field.
      const bool mine = error.path == path || (error.path.starts_with(path) &&
                                               error.path.size() > path.size() &&
                                               error.path[path.size()] == '[');
      if (!mine) continue;
      const QString line = errorLine(error);
      if (!lines.contains(line)) lines << line;
    }
    row.error->setText(lines.join(QLatin1Char('\n')));
    row.error->setVisible(!lines.isEmpty());
    setInvalid(row.line != nullptr ? static_cast<QWidget*>(row.line) : row.combo, !lines.isEmpty());
  }
}

void ScenarioForm::refreshVisibility() {
  const bool show_all = show_all_->isChecked();
  const YAML::Node& document = document_->document();
  const bool collective = document.IsMap() && document["collective"] && !document["model"];
  for (Row& row : rows_) {
    const std::string& section = row.field->section;
    bool common = row.field->common;
    if (collective && (section == "model" || section == "strategy" || section == "training")) common = false;
    const bool set = document_->field(row.field->key->path).has_value();
    const bool visible = show_all || common || set || !row.error->text().isEmpty();
    row.label->setVisible(visible);
    row.container->setVisible(visible);
  }
  for (QGroupBox* group : groups_) {
    bool any = false;
    for (const Row& row : rows_)
      if (row.group == group && !row.container->isHidden()) any = true;
    group->setVisible(any);
  }
}

QString ScenarioForm::currentText(const Row& row) const {
  if (row.line != nullptr) return row.line->text();
  if (row.combo->isEditable()) return row.combo->currentText();
  return row.combo->currentData().toString();
}

const ScenarioForm::Row* ScenarioForm::findRow(const QString& path) const {
  const std::string key = path.toStdString();
  for (const Row& row : rows_)
    if (row.field->key->path == key) return &row;
  return nullptr;
}

QWidget* ScenarioForm::editorFor(const QString& path) const {
  const Row* row = findRow(path);
  if (row == nullptr) return nullptr;
  return row->line != nullptr ? static_cast<QWidget*>(row->line) : row->combo;
}

QString ScenarioForm::errorTextFor(const QString& path) const {
  const Row* row = findRow(path);
  return row == nullptr ? QString() : row->error->text();
}

bool ScenarioForm::isFieldVisible(const QString& path) const {
  const Row* row = findRow(path);
  return row != nullptr && !row->container->isHidden() && !row->group->isHidden();
}

void ScenarioForm::focusField(const QString& path) {
  const Row* row = findRow(path);
  if (row == nullptr) return;
  if (row->container->isHidden()) show_all_->setChecked(true);
  QWidget* editor = editorFor(path);
  editor->setFocus(Qt::OtherFocusReason);
  if (auto* scroll = findChild<QScrollArea*>()) scroll->ensureWidgetVisible(editor);
}

void ScenarioForm::setShowAllFields(bool show) { show_all_->setChecked(show); }

}  // namespace tandem::gui
