#include "gui/sweep_page.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <QComboBox>
#include <QCompleter>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSortFilterProxyModel>
#include <QSplitter>
#include <QStandardItemModel>
#include <QToolButton>
#include <QVBoxLayout>
#include <QtCharts/QBarCategoryAxis>
#include <QtCharts/QBarSeries>
#include <QtCharts/QBarSet>
#include <QtCharts/QChart>
#include <QtCharts/QLineSeries>
#include <QtCharts/QScatterSeries>
#include <QtCharts/QValueAxis>

#include "gui/chart_view.hpp"
#include "gui/export.hpp"
#include "gui/format.hpp"
#include "gui/run_panel.hpp"
#include "gui/table_view.hpp"
#include "strategy/schema.hpp"

namespace tandem::gui {
namespace {

constexpr int kSortRole = Qt::UserRole + 1;
constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

QStringList sweepableKeys() {
  QStringList keys;
  for (const strategy::SchemaKey& key : strategy::scenario_schema())
    if (key.sweepable && key.path.find("[]") == std::string::npos) keys << QString::fromStdString(key.path);
  return keys;
}

QStandardItem* numberItem(std::optional<double> value, const QString& shown) {
  auto* item = new QStandardItem(value ? shown : QStringLiteral("—"));
  if (value) item->setData(*value, Qt::UserRole);
  else item->setData(QString(), Qt::UserRole);
  // Missing values sort after every number.
  item->setData(value ? *value : std::numeric_limits<double>::max(), kSortRole);
  item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
  return item;
}

QStandardItem* textItem(const QString& text) {
  auto* item = new QStandardItem(text);
  item->setData(text, Qt::UserRole);
  bool numeric = false;
  const double number = text.toDouble(&numeric);
  if (numeric) item->setData(number, kSortRole);
  else item->setData(text, kSortRole);
  return item;
}

QString pointLabel(const std::vector<std::pair<std::string, std::string>>& overrides) {
  QStringList parts;
  for (const auto& [key, value] : overrides) {
    const auto dot = key.rfind('.');
    parts << QString::fromStdString((dot == std::string::npos ? key : key.substr(dot + 1)) + "=" + value);
  }
  return parts.join(QStringLiteral(", "));
}

std::optional<double> jsonNumber(const QJsonObject& object, const QString& path) {
  QJsonValue value = object;
  for (const QString& part : path.split(QLatin1Char('.'))) value = value.toObject().value(part);
  if (value.isDouble()) return value.toDouble();
  return std::nullopt;
}

}  // namespace

struct SweepPage::AxisRow {
  QWidget* widget = nullptr;
  QComboBox* key = nullptr;
  QLineEdit* values = nullptr;
  QLabel* error = nullptr;
};

SweepPage::SweepPage(ScenarioDocument* document, SimulationService* service, QWidget* parent)
    : QWidget(parent), document_(document), service_(service) {
  auto* layout = new QHBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  auto* splitter = new QSplitter(Qt::Horizontal, this);
  layout->addWidget(splitter);

  // Left: the axes and the run controls.
  auto* left = new QWidget(splitter);
  auto* left_layout = new QVBoxLayout(left);
  left_layout->setContentsMargins(0, 0, 4, 0);
  auto* axes_box = new QGroupBox(QStringLiteral("Swept fields"), left);
  auto* axes_box_layout = new QVBoxLayout(axes_box);
  auto* hint = new QLabel(QStringLiteral("Every combination of the values below is simulated on the "
                                         "scenario in the editor. Values are comma-separated, "
                                         "written as in YAML (2, 4, 8 · 1f1b, interleaved · 25MB, 100MB)."),
                          axes_box);
  hint->setWordWrap(true);
  axes_box_layout->addWidget(hint);
  axes_layout_ = new QVBoxLayout;
  axes_box_layout->addLayout(axes_layout_);
  auto* axis_buttons = new QHBoxLayout;
  auto* add = new QPushButton(QStringLiteral("Add field"), axes_box);
  add->setObjectName(QStringLiteral("addAxis"));
  auto* from_scenario = new QPushButton(QStringLiteral("Use the scenario's sweep"), axes_box);
  from_scenario->setToolTip(QStringLiteral("Replace these fields by the scenario's sweep: section"));
  axis_buttons->addWidget(add);
  axis_buttons->addWidget(from_scenario);
  axis_buttons->addStretch(1);
  axes_box_layout->addLayout(axis_buttons);
  count_ = new QLabel(axes_box);
  count_->setObjectName(QStringLiteral("sweepCount"));
  axes_box_layout->addWidget(count_);
  left_layout->addWidget(axes_box);
  run_panel_ = new RunPanel(service_, QStringLiteral("Run sweep"), left);
  left_layout->addWidget(run_panel_);
  left_layout->addStretch(1);
  splitter->addWidget(left);

  // Right: table and chart.
  auto* right = new QSplitter(Qt::Vertical, splitter);
  auto* table_holder = new QWidget(right);
  auto* table_layout = new QVBoxLayout(table_holder);
  table_layout->setContentsMargins(0, 0, 0, 0);
  model_ = new QStandardItemModel(this);
  proxy_ = new QSortFilterProxyModel(this);
  proxy_->setSourceModel(model_);
  proxy_->setSortRole(kSortRole);
  table_ = new TableView(QStringLiteral("sweep-results"), table_holder);
  table_->setObjectName(QStringLiteral("sweepTable"));
  table_->setModel(proxy_);
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table_->setSelectionMode(QAbstractItemView::SingleSelection);
  auto* table_bar = new QHBoxLayout;
  table_bar->addWidget(new QLabel(QStringLiteral("<b>Results</b> — click a header to sort; double-click a row to open it as a scenario"), table_holder));
  table_bar->addStretch(1);
  open_row_ = new QPushButton(QStringLiteral("Open as scenario"), table_holder);
  open_row_->setObjectName(QStringLiteral("openSweepRow"));
  open_row_->setEnabled(false);
  table_bar->addWidget(open_row_);
  auto* csv = new QToolButton(table_holder);
  csv->setText(QStringLiteral("Export CSV…"));
  csv->setAutoRaise(true);
  table_bar->addWidget(csv);
  table_layout->addLayout(table_bar);
  table_layout->addWidget(table_, 1);
  right->addWidget(table_holder);

  auto* chart_holder = new QWidget(right);
  auto* chart_layout = new QVBoxLayout(chart_holder);
  chart_layout->setContentsMargins(0, 0, 0, 0);
  chart_view_ = new ChartView(QStringLiteral("sweepChart"), chart_holder);
  auto* chart_bar = new QHBoxLayout;
  chart_bar->addStretch(1);
  chart_bar->addWidget(makeImageExportButton(chart_view_, QStringLiteral("sweep"), chart_holder));
  chart_layout->addLayout(chart_bar);
  chart_layout->addWidget(chart_view_, 1);
  right->addWidget(chart_holder);
  right->setSizes({330, 400});
  splitter->addWidget(right);
  splitter->setStretchFactor(0, 1);
  splitter->setStretchFactor(1, 3);
  splitter->setSizes({360, 900});

  connect(add, &QPushButton::clicked, this, [this] { addAxis(); });
  connect(from_scenario, &QPushButton::clicked, this, &SweepPage::loadAxesFromDocument);
  connect(csv, &QToolButton::clicked, this, [this] { promptExportCsv(this, *proxy_, QStringLiteral("sweep")); });
  connect(open_row_, &QPushButton::clicked, this, &SweepPage::openSelectedRow);
  connect(table_, &QTableView::doubleClicked, this, [this] { openSelectedRow(); });
  connect(table_->selectionModel(), &QItemSelectionModel::selectionChanged, this,
          [this] { open_row_->setEnabled(table_->selectionModel()->hasSelection()); });
  connect(run_panel_, &RunPanel::runRequested, this, &SweepPage::startSweep);
  connect(document_, &ScenarioDocument::documentChanged, this, [this](ChangeOrigin origin) {
    if (origin == ChangeOrigin::Load) loadAxesFromDocument();
  });
  connect(document_, &ScenarioDocument::validated, this, [this] { refreshCount(); });
  connect(service_, &SimulationService::sweepStarted, this, [this](int points) {
    run_panel_->setStatus(QStringLiteral("Simulating %1 configurations…").arg(points));
  });
  connect(service_, &SimulationService::sweepPointFinished, this, &SweepPage::addOutcome);
  connect(service_, &SimulationService::sweepFinished, this, [this](int completed, int total) {
    run_panel_->setStatus(QStringLiteral("%1 of %2 configurations simulated.").arg(completed).arg(total));
    table_->sortByColumn(static_cast<int>(result_keys_.size()) + 1, Qt::AscendingOrder);
    table_->resizeColumnsToContents();
  });
  loadAxesFromDocument();
  rebuildColumns();
  refreshChart();
}

void SweepPage::addAxis(const QString& key, const QString& values) {
  auto row = std::make_shared<AxisRow>();
  row->widget = new QWidget(this);
  row->widget->setObjectName(QStringLiteral("axis%1").arg(axis_rows_.size()));
  auto* vertical = new QVBoxLayout(row->widget);
  vertical->setContentsMargins(0, 0, 0, 0);
  auto* line = new QHBoxLayout;
  row->key = new QComboBox(row->widget);
  row->key->setObjectName(QStringLiteral("axisKey"));
  row->key->setEditable(true);
  row->key->addItems(sweepableKeys());
  row->key->setInsertPolicy(QComboBox::NoInsert);
  row->key->completer()->setFilterMode(Qt::MatchContains);
  row->key->setCurrentText(key.isEmpty() ? QStringLiteral("strategy.tp") : key);
  row->key->setMinimumWidth(170);
  row->values = new QLineEdit(values, row->widget);
  row->values->setObjectName(QStringLiteral("axisValues"));
  row->values->setPlaceholderText(QStringLiteral("2, 4, 8"));
  auto* remove = new QToolButton(row->widget);
  remove->setText(QStringLiteral("✕"));
  remove->setToolTip(QStringLiteral("Remove this field"));
  line->addWidget(row->key);
  line->addWidget(row->values, 1);
  line->addWidget(remove);
  vertical->addLayout(line);
  row->error = new QLabel(row->widget);
  row->error->setWordWrap(true);
  row->error->setStyleSheet(QStringLiteral("color: #c62828;"));
  row->error->setVisible(false);
  vertical->addWidget(row->error);
  axes_layout_->addWidget(row->widget);
  axis_rows_.push_back(row);
  connect(row->key, &QComboBox::currentTextChanged, this, [this] { refreshCount(); });
  connect(row->values, &QLineEdit::textChanged, this, [this] { refreshCount(); });
  AxisRow* raw = row.get();
  connect(remove, &QToolButton::clicked, this, [this, raw] {
    auto it = std::find_if(axis_rows_.begin(), axis_rows_.end(), [raw](const auto& r) { return r.get() == raw; });
    if (it == axis_rows_.end()) return;
    (*it)->widget->deleteLater();
    axis_rows_.erase(it);
    refreshCount();
  });
  refreshCount();
}

int SweepPage::axisCount() const { return static_cast<int>(axis_rows_.size()); }

void SweepPage::setAxes(const std::vector<strategy::SweepAxis>& axes) {
  for (const auto& row : axis_rows_) row->widget->deleteLater();
  axis_rows_.clear();
  for (const strategy::SweepAxis& axis : axes) {
    QStringList values;
    for (const std::string& value : axis.values) values << QString::fromStdString(value);
    addAxis(QString::fromStdString(axis.key), values.join(QStringLiteral(", ")));
  }
  refreshCount();
}

void SweepPage::loadAxesFromDocument() {
  std::vector<strategy::SweepAxis> axes;
  const YAML::Node& document = document_->document();
  const YAML::Node sweep = document.IsMap() ? document["sweep"] : YAML::Node();
  if (sweep && sweep.IsMap()) {
    for (auto it = sweep.begin(); it != sweep.end(); ++it) {
      strategy::SweepAxis axis;
      axis.key = it->first.Scalar();
      const YAML::Node values = it->second;
      if (values.IsSequence())
        for (const auto& value : values) axis.values.push_back(value.IsScalar() ? value.Scalar() : std::string());
      axes.push_back(std::move(axis));
    }
  }
  setAxes(axes);
}

std::vector<strategy::SweepAxis> SweepPage::axes(QStringList* errors) const {
  std::vector<strategy::SweepAxis> out;
  for (const auto& row : axis_rows_) {
    const QString key = row->key->currentText().trimmed();
    QStringList values;
    for (const QString& value : row->values->text().split(QLatin1Char(','), Qt::SkipEmptyParts))
      if (!value.trimmed().isEmpty()) values << value.trimmed();
    QString message;
    if (values.isEmpty()) {
      message = QStringLiteral("Enter at least one value.");
    } else {
      try {
        out.push_back(strategy::parse_sweep_argument((key + QLatin1Char('=') + values.join(QLatin1Char(','))).toStdString()));
      } catch (const strategy::ScenarioError& error) {
        QStringList lines;
        for (const auto& item : error.errors()) lines << QString::fromStdString(item.message());
        message = lines.join(QLatin1Char('\n'));
      }
    }
    row->error->setText(message);
    row->error->setVisible(!message.isEmpty());
    if (!message.isEmpty() && errors) *errors << message;
  }
  return out;
}

int SweepPage::pointCount() const {
  QStringList errors;
  const auto valid = axes(&errors);
  if (!errors.isEmpty() || valid.empty()) return 0;
  return static_cast<int>(strategy::sweep_points(valid).size());
}

void SweepPage::refreshCount() {
  QStringList errors;
  const auto valid = axes(&errors);
  const ValidationState& validation = document_->validation();
  QString why_not;
  if (!validation.valid()) why_not = QStringLiteral("Fix the scenario's problems in the editor first.");
  else if (!errors.isEmpty()) why_not = QStringLiteral("Fix the swept fields first.");
  else if (valid.empty()) why_not = QStringLiteral("Add a field to sweep.");
  const int points = errors.isEmpty() && !valid.empty() ? static_cast<int>(strategy::sweep_points(valid).size()) : 0;
  count_->setText(points > 0 ? QStringLiteral("%1 configuration%2").arg(points).arg(points == 1 ? "" : "s")
                             : why_not);
  run_panel_->setReady(why_not.isEmpty(), why_not);
}

void SweepPage::startSweep() {
  QStringList errors;
  auto valid = axes(&errors);
  const ValidationState& validation = document_->validation();
  if (!errors.isEmpty() || valid.empty() || !validation.valid()) {
    refreshCount();
    return;
  }
  clearResults();
  base_document_ = YAML::Clone(document_->document());
  if (base_document_.IsMap()) base_document_.remove("sweep");
  result_keys_.clear();
  for (const auto& axis : valid) result_keys_.push_back(axis.key);
  rebuildColumns();
  if (!service_->startSweep(validation.scenario, valid, document_->title()))
    run_panel_->setStatus(service_->busy() ? QStringLiteral("A simulation is already running.")
                                           : SimulationService::unavailableReason(), true);
}

void SweepPage::clearResults() {
  model_->removeRows(0, model_->rowCount());
  row_overrides_.clear();
  outcomes_.clear();
  capacity_bytes_ = 0;
  refreshChart();
}

void SweepPage::rebuildColumns() {
  QStringList headers;
  for (const std::string& key : result_keys_) headers << QString::fromStdString(key);
  headers << QStringLiteral("feasible") << QStringLiteral("step time") << QStringLiteral("tokens/s")
          << QStringLiteral("MFU") << QStringLiteral("peak memory/GPU") << QStringLiteral("fits")
          << QStringLiteral("reason");
  model_->setColumnCount(headers.size());
  model_->setHorizontalHeaderLabels(headers);
}

void SweepPage::addOutcome(const SweepPointOutcome& outcome) {
  if (result_keys_.empty()) {
    for (const auto& [key, value] : outcome.overrides) result_keys_.push_back(key);
    rebuildColumns();
  }
  QList<QStandardItem*> items;
  for (const std::string& key : result_keys_) {
    QString value;
    for (const auto& [k, v] : outcome.overrides)
      if (k == key) value = QString::fromStdString(v);
    items << textItem(value);
  }
  items << textItem(outcome.feasible ? QStringLiteral("yes") : QStringLiteral("no"));
  const auto step = jsonNumber(outcome.json, QStringLiteral("step_time_s"));
  const auto tokens = jsonNumber(outcome.json, QStringLiteral("tokens_per_s"));
  const auto mfu = jsonNumber(outcome.json, QStringLiteral("mfu"));
  const auto peak = jsonNumber(outcome.json, QStringLiteral("memory.peak_bytes_per_gpu"));
  const auto capacity = jsonNumber(outcome.json, QStringLiteral("memory.capacity_bytes"));
  if (capacity) capacity_bytes_ = std::max(capacity_bytes_, *capacity);
  const QJsonValue fits = outcome.json.value(QStringLiteral("memory")).toObject().value(QStringLiteral("fits"));
  items << numberItem(step, step ? formatDuration(*step) : QString());
  items << numberItem(tokens, tokens ? formatCount(*tokens) : QString());
  items << numberItem(mfu, mfu ? formatPercent(*mfu) : QString());
  items << numberItem(peak, peak ? formatBytes(*peak) : QString());
  items << textItem(fits.isBool() ? (fits.toBool() ? QStringLiteral("yes") : QStringLiteral("no")) : QString());
  items << textItem(outcome.reason);
  if (!outcome.feasible)
    for (QStandardItem* item : items) item->setForeground(QColor(0x9e, 0x9e, 0x9e));
  for (QStandardItem* item : items) item->setData(static_cast<int>(row_overrides_.size()), Qt::UserRole + 2);
  model_->appendRow(items);
  row_overrides_.push_back(outcome.overrides);
  outcomes_.push_back(outcome);
  refreshChart();
}

void SweepPage::refreshChart() {
  auto* chart = new QChart;
  chart->setAnimationOptions(QChart::NoAnimation);
  chart->setMargins(QMargins(4, 4, 4, 4));
  if (outcomes_.empty()) {
    chart->setTitle(QStringLiteral("Step time and memory per configuration appear here as the sweep runs."));
    chart->legend()->hide();
    chart_view_->setChart(chart);
    return;
  }
  // Sweep order (the cartesian product as written): the swept values read left to right.
  std::vector<const SweepPointOutcome*> ordered;
  for (const auto& outcome : outcomes_) ordered.push_back(&outcome);
  std::sort(ordered.begin(), ordered.end(), [](auto a, auto b) { return a->index < b->index; });
  double longest = 0;
  for (const auto* outcome : ordered)
    longest = std::max(longest, jsonNumber(outcome->json, QStringLiteral("step_time_s")).value_or(0));
  const bool seconds = longest >= 1;
  const double scale = seconds ? 1 : 1e3;

  chart->setTitle(QStringLiteral("Step time and peak memory per GPU against the swept values"));
  auto* steps = new QBarSet(QStringLiteral("step time (%1)").arg(seconds ? "s" : "ms"));
  steps->setColor(QColor(0x42, 0x85, 0xf4));
  auto* memory = new QLineSeries;
  memory->setName(QStringLiteral("peak memory per GPU (GiB)"));
  memory->setPen(QPen(QColor(0xab, 0x47, 0xbc), 2));
  auto* infeasible = new QScatterSeries;
  infeasible->setName(QStringLiteral("infeasible"));
  infeasible->setMarkerShape(QScatterSeries::MarkerShapeRectangle);
  infeasible->setMarkerSize(9);
  infeasible->setColor(QColor(0xc6, 0x28, 0x28));
  QStringList categories;
  double highest_memory = capacity_bytes_;
  for (std::size_t i = 0; i < ordered.size(); ++i) {
    const auto* outcome = ordered[i];
    // One line per swept key keeps the labels readable under narrow bars.
    categories << pointLabel(outcome->overrides).replace(QStringLiteral(", "), QStringLiteral("<br>"));
    const auto step = jsonNumber(outcome->json, QStringLiteral("step_time_s"));
    *steps << (outcome->feasible && step ? *step * scale : 0.0);
    const auto peak = jsonNumber(outcome->json, QStringLiteral("memory.peak_bytes_per_gpu"));
    if (peak) {
      memory->append(static_cast<double>(i), *peak / kGiB);
      highest_memory = std::max(highest_memory, *peak);
    }
    if (!outcome->feasible) infeasible->append(static_cast<double>(i), 0);
  }
  auto* bars = new QBarSeries;
  bars->append(steps);
  chart->addSeries(bars);
  chart->addSeries(memory);
  auto* x = new QBarCategoryAxis;
  x->append(categories);
  if (categories.size() > 12) x->setLabelsAngle(-60);
  chart->addAxis(x, Qt::AlignBottom);
  auto* time_axis = new QValueAxis;
  time_axis->setTitleText(QStringLiteral("step time (%1)").arg(seconds ? "s" : "ms"));
  time_axis->setRange(0, std::max(longest * scale, 1e-9) * 1.1);
  time_axis->applyNiceNumbers();
  chart->addAxis(time_axis, Qt::AlignLeft);
  auto* memory_axis = new QValueAxis;
  memory_axis->setTitleText(QStringLiteral("GiB per GPU"));
  memory_axis->setRange(0, std::max(highest_memory / kGiB, 1.0) * 1.1);
  memory_axis->applyNiceNumbers();
  chart->addAxis(memory_axis, Qt::AlignRight);
  bars->attachAxis(x);
  bars->attachAxis(time_axis);
  memory->attachAxis(x);
  memory->attachAxis(memory_axis);
  if (infeasible->count() > 0) {
    chart->addSeries(infeasible);
    infeasible->attachAxis(x);
    infeasible->attachAxis(time_axis);
  } else {
    delete infeasible;
  }
  if (capacity_bytes_ > 0) {
    auto* capacity = new QLineSeries;
    capacity->setName(QStringLiteral("capacity %1").arg(formatBytes(capacity_bytes_)));
    QPen pen(QColor(0xc6, 0x28, 0x28));
    pen.setStyle(Qt::DashLine);
    capacity->setPen(pen);
    capacity->append(-0.5, capacity_bytes_ / kGiB);
    capacity->append(static_cast<double>(ordered.size()) - 0.5, capacity_bytes_ / kGiB);
    chart->addSeries(capacity);
    capacity->attachAxis(x);
    capacity->attachAxis(memory_axis);
  }
  chart->legend()->setAlignment(Qt::AlignBottom);
  chart_view_->setChart(chart);
}

QString SweepPage::scenarioYamlForRow(int source_row) const {
  if (source_row < 0 || source_row >= static_cast<int>(row_overrides_.size())) return {};
  YAML::Node document = YAML::Clone(base_document_);
  if (!document || !document.IsMap()) document = YAML::Clone(document_->document());
  if (document.IsMap()) document.remove("sweep");
  for (const auto& [key, value] : row_overrides_[static_cast<std::size_t>(source_row)]) {
    try {
      document = strategy::with_override(document, key, value);
    } catch (const strategy::ScenarioError&) {
      // The value was accepted when the sweep started; keep the rest.
    }
  }
  return QString::fromStdString(strategy::document_to_yaml(document));
}

void SweepPage::openSelectedRow() {
  const QModelIndexList rows = table_->selectionModel()->selectedRows();
  if (rows.isEmpty()) return;
  const QModelIndex source = proxy_->mapToSource(rows.first());
  const int row = model_->item(source.row(), 0)->data(Qt::UserRole + 2).toInt();
  const QString yaml = scenarioYamlForRow(row);
  if (yaml.isEmpty()) return;
  const QString title = QStringLiteral("sweep point (%1).yaml").arg(pointLabel(row_overrides_[static_cast<std::size_t>(row)]));
  emit openScenarioRequested(yaml, title);
}

}  // namespace tandem::gui
