#include "gui/editor_page.hpp"

#include <QGroupBox>
#include <QLabel>
#include <QListWidget>
#include <QSplitter>
#include <QTabWidget>
#include <QVBoxLayout>

#include "gui/format.hpp"
#include "gui/memory_chart.hpp"
#include "gui/scenario_fields.hpp"
#include "gui/scenario_form.hpp"
#include "gui/yaml_editor.hpp"

namespace tandem::gui {

EditorPage::EditorPage(ScenarioDocument* document, QWidget* parent)
    : QWidget(parent), document_(document) {
  auto* layout = new QHBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  auto* splitter = new QSplitter(Qt::Horizontal, this);
  layout->addWidget(splitter);

  tabs_ = new QTabWidget(splitter);
  tabs_->setObjectName(QStringLiteral("editorTabs"));
  form_ = new ScenarioForm(document_, tabs_);
  yaml_ = new YamlEditor(document_, tabs_);
  tabs_->addTab(form_, QStringLiteral("Form"));
  tabs_->addTab(yaml_, QStringLiteral("YAML"));
  connect(tabs_, &QTabWidget::currentChanged, this, [this] { yaml_->flush(); });
  splitter->addWidget(tabs_);

  side_ = new QWidget(splitter);
  auto* side_layout = new QVBoxLayout(side_);
  side_layout->setContentsMargins(4, 0, 0, 0);

  auto* problems_box = new QGroupBox(side_);
  auto* problems_layout = new QVBoxLayout(problems_box);
  problems_title_ = new QLabel(problems_box);
  problems_title_->setObjectName(QStringLiteral("problemsTitle"));
  problems_layout->addWidget(problems_title_);
  problems_ = new QListWidget(problems_box);
  problems_->setObjectName(QStringLiteral("problems"));
  problems_->setWordWrap(true);
  problems_->setToolTip(QStringLiteral("Double-click a problem to go to its field"));
  problems_layout->addWidget(problems_);
  connect(problems_, &QListWidget::itemActivated, this, [this](QListWidgetItem* item) {
    revealPath(item->data(Qt::UserRole).toString());
  });
  side_layout->addWidget(problems_box, 2);

  auto* memory_box = new QGroupBox(QStringLiteral("Memory estimate (simrun --check)"), side_);
  auto* memory_layout = new QVBoxLayout(memory_box);
  memory_ = new MemoryChart(QStringLiteral("memoryEstimate"), memory_box);
  memory_layout->addWidget(memory_, 1);
  memory_details_ = new QLabel(memory_box);
  memory_details_->setObjectName(QStringLiteral("memoryDetails"));
  memory_details_->setWordWrap(true);
  memory_layout->addWidget(memory_details_);
  side_layout->addWidget(memory_box, 5);

  splitter->addWidget(side_);
  splitter->setStretchFactor(0, 3);
  splitter->setStretchFactor(1, 2);
  splitter->setSizes({760, 500});

  connect(document_, &ScenarioDocument::validated, this, &EditorPage::showValidation);
  showValidation();
}

void EditorPage::setRunControls(QWidget* controls) {
  static_cast<QVBoxLayout*>(side_->layout())->insertWidget(0, controls);
}

void EditorPage::flushEdits() { yaml_->flush(); }

void EditorPage::revealPath(const QString& path) {
  if (find_form_field(path.toStdString()) != nullptr) {
    tabs_->setCurrentWidget(form_);
    form_->focusField(path);
  } else {
    tabs_->setCurrentWidget(yaml_);
    yaml_->goToPath(path);
  }
}

void EditorPage::showValidation() {
  const ValidationState& validation = document_->validation();
  problems_->clear();
  for (const auto& error : validation.errors) {
    auto* item = new QListWidgetItem(QString::fromStdString(error.message()), problems_);
    item->setData(Qt::UserRole, QString::fromStdString(error.path));
    item->setForeground(QColor(0xc6, 0x28, 0x28));
  }
  if (validation.errors.empty()) {
    problems_title_->setText(validation.scenario
                                 ? QStringLiteral("<span style='color:#2e7d32'>✔ The scenario is valid.</span>")
                                 : QString());
  } else {
    problems_title_->setText(QStringLiteral("<b>%1 problem%2</b> — double-click one to go to its field")
                                 .arg(validation.errors.size())
                                 .arg(validation.errors.size() == 1 ? "" : "s"));
  }

  if (validation.memory) {
    memory_->setEstimate(*validation.memory);
    const auto& worst = validation.memory->worst();
    memory_details_->setText(
        QStringLiteral("Worst stage %1: %2 parameters per GPU, %3 micro-batches of activations "
                       "in flight. Weights %4, gradients %5, optimizer state %6, activations %7.")
            .arg(worst.stage)
            .arg(formatCount(worst.parameters))
            .arg(worst.in_flight_micro_batches)
            .arg(formatBytes(worst.weights), formatBytes(worst.gradients),
                 formatBytes(worst.optimizer), formatBytes(worst.activations)));
  } else if (!validation.memory_error.isEmpty()) {
    memory_->showMessage(QStringLiteral("The memory estimate failed: ") + validation.memory_error);
    memory_details_->clear();
  } else if (validation.scenario && validation.scenario->is_collective()) {
    memory_->showMessage(QStringLiteral("A collective what-if has no training memory."));
    memory_details_->clear();
  } else {
    memory_->showMessage(QStringLiteral("Fix the problems to see the memory estimate."));
    memory_details_->clear();
  }
}

}  // namespace tandem::gui
