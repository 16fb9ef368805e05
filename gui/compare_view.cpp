#include "gui/compare_view.hpp"

#include <cmath>

#include <QCheckBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QSplitter>
#include <QStandardItemModel>
#include <QVBoxLayout>

#include "gui/table_view.hpp"
#include "report/compare.hpp"

namespace tandem::gui {
namespace {

QStandardItem* cell(const QString& text) {
  auto* item = new QStandardItem(text);
  item->setData(text, Qt::UserRole);
  return item;
}

QStandardItem* numberCell(const std::optional<double>& value, bool percent = false) {
  if (!value) return cell(QStringLiteral("—"));
  const QString text = percent ? QStringLiteral("%1%2 %").arg(*value >= 0 ? "+" : "").arg(*value * 100, 0, 'f', 2)
                               : QString::number(*value, 'g', 8);
  auto* item = new QStandardItem(text);
  item->setData(*value, Qt::UserRole);
  item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
  return item;
}

}  // namespace

CompareView::CompareView(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(2, 2, 2, 2);
  heading_ = new QLabel(QStringLiteral("Select two runs in the table above and press Compare."), this);
  heading_->setObjectName(QStringLiteral("compareHeading"));
  heading_->setWordWrap(true);
  heading_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  layout->addWidget(heading_);
  auto* splitter = new QSplitter(Qt::Horizontal, this);
  auto* left = new QWidget(splitter);
  auto* left_layout = new QVBoxLayout(left);
  left_layout->setContentsMargins(0, 0, 0, 0);
  left_layout->addWidget(new QLabel(QStringLiteral("<b>Settings</b> (scenario keys that differ)"), left));
  settings_ = new QStandardItemModel(this);
  settings_view_ = new TableView(QStringLiteral("settings-diff"), left);
  settings_view_->setObjectName(QStringLiteral("settingsDiff"));
  settings_view_->setModel(settings_);
  settings_view_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  left_layout->addWidget(settings_view_);
  auto* right = new QWidget(splitter);
  auto* right_layout = new QVBoxLayout(right);
  right_layout->setContentsMargins(0, 0, 0, 0);
  auto* results_bar = new QHBoxLayout;
  results_bar->addWidget(new QLabel(QStringLiteral("<b>Results</b> (B − A)"), right));
  results_bar->addStretch(1);
  unchanged_ = new QCheckBox(QStringLiteral("Show unchanged"), right);
  results_bar->addWidget(unchanged_);
  right_layout->addLayout(results_bar);
  results_ = new QStandardItemModel(this);
  results_view_ = new TableView(QStringLiteral("results-diff"), right);
  results_view_->setObjectName(QStringLiteral("resultsDiff"));
  results_view_->setModel(results_);
  results_view_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  right_layout->addWidget(results_view_);
  splitter->addWidget(left);
  splitter->addWidget(right);
  layout->addWidget(splitter, 1);
  connect(unchanged_, &QCheckBox::toggled, this, &CompareView::fillResults);
}

void CompareView::compare(const report::RunRecord& a, const report::RunRecord& b) {
  auto describe = [](const report::RunRecord& run) {
    return QStringLiteral("%1 (%2, %3)")
        .arg(QString::fromStdString(run.info.name), QString::fromUtf8(report::to_string(run.info.kind).data()),
             QString::fromStdString(run.id));
  };
  heading_->setText(QStringLiteral("<b>A</b> = %1<br><b>B</b> = %2").arg(describe(a).toHtmlEscaped(), describe(b).toHtmlEscaped()));

  settings_->clear();
  settings_->setHorizontalHeaderLabels({QStringLiteral("key"), QStringLiteral("A"), QStringLiteral("B")});
  try {
    const auto differences = report::diff_scenarios(a.info.scenario_yaml, b.info.scenario_yaml);
    for (const auto& difference : differences) {
      settings_->appendRow({cell(QString::fromStdString(difference.key)),
                            cell(difference.value_a ? QString::fromStdString(*difference.value_a) : QStringLiteral("(absent)")),
                            cell(difference.value_b ? QString::fromStdString(*difference.value_b) : QStringLiteral("(absent)"))});
    }
    if (differences.empty()) settings_->appendRow({cell(QStringLiteral("(the scenarios are the same)")), cell({}), cell({})});
  } catch (const std::exception& error) {
    settings_->appendRow({cell(QString::fromUtf8(error.what())), cell({}), cell({})});
  }
  settings_view_->horizontalHeader()->resizeSection(0, 220);
  json_a_ = a.result_json.empty() ? "{}" : a.result_json;
  json_b_ = b.result_json.empty() ? "{}" : b.result_json;
  fillResults();
}

void CompareView::fillResults() {
  results_->clear();
  results_->setHorizontalHeaderLabels({QStringLiteral("field"), QStringLiteral("A"), QStringLiteral("B"),
                                       QStringLiteral("B − A"), QStringLiteral("change")});
  if (json_a_.empty() && json_b_.empty()) return;
  try {
    for (const auto& difference : report::diff_results(json_a_, json_b_)) {
      if (!unchanged_->isChecked() && !difference.changed()) continue;
      QList<QStandardItem*> row{cell(QString::fromStdString(difference.key)), numberCell(difference.value_a),
                                numberCell(difference.value_b), numberCell(difference.absolute),
                                numberCell(difference.relative, true)};
      if (difference.relative && std::fabs(*difference.relative) >= 0.05)
        row[4]->setForeground(*difference.relative > 0 ? QColor(0xc6, 0x28, 0x28) : QColor(0x2e, 0x7d, 0x32));
      results_->appendRow(row);
    }
  } catch (const std::exception& error) {
    results_->appendRow(cell(QString::fromUtf8(error.what())));
  }
  results_view_->horizontalHeader()->resizeSection(0, 240);
}

}  // namespace tandem::gui
