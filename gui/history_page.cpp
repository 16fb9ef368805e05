#include "gui/history_page.hpp"

#include <QComboBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFontDatabase>
#include <QFutureWatcher>
#include <QtConcurrent/QtConcurrentRun>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QJsonDocument>
#include <QLabel>
#include <QLineEdit>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSortFilterProxyModel>
#include <QSplitter>
#include <QStandardItemModel>
#include <QTabWidget>
#include <QToolButton>
#include <QVBoxLayout>

#include "gui/compare_view.hpp"
#include "gui/export.hpp"
#include "gui/format.hpp"
#include "gui/table_view.hpp"

namespace tandem::gui {
namespace {

constexpr int kIdRole = Qt::UserRole + 2;
constexpr int kSortRole = Qt::UserRole + 1;

enum Column { kName, kKind, kStatus, kCreated, kStep, kTokens, kMfu, kPeak, kFits, kGpus, kProfile, kId, kColumns };

QStandardItem* item(const QString& text, const QVariant& exact = {}) {
  auto* cell = new QStandardItem(text);
  cell->setData(exact.isValid() ? exact : QVariant(text), Qt::UserRole);
  cell->setData(exact.isValid() ? exact : QVariant(text), kSortRole);
  return cell;
}

QStandardItem* number(const std::optional<double>& value, QString (*format)(double)) {
  auto* cell = new QStandardItem(value ? format(*value) : QString());
  cell->setData(value ? QVariant(*value) : QVariant(QString()), Qt::UserRole);
  cell->setData(value ? *value : -1.0, kSortRole);
  cell->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
  return cell;
}

QString plainCount(double value) { return QString::number(value, 'g', 8); }

QString q(const std::string& text) { return QString::fromStdString(text); }

}  // namespace

HistoryPage::HistoryPage(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);

  auto* bar = new QHBoxLayout;
  database_ = new QLabel(this);
  database_->setObjectName(QStringLiteral("databasePath"));
  database_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  auto* open = new QPushButton(QStringLiteral("Open database…"), this);
  auto* use_default = new QPushButton(QStringLiteral("Default database"), this);
  use_default->setToolTip(QString::fromStdString(report::default_database_path().string()));
  auto* reload = new QPushButton(QStringLiteral("Refresh"), this);
  reload->setShortcut(QKeySequence::Refresh);
  bar->addWidget(new QLabel(QStringLiteral("Store:"), this));
  bar->addWidget(database_, 1);
  bar->addWidget(open);
  bar->addWidget(use_default);
  bar->addWidget(reload);
  layout->addLayout(bar);

  auto* filters = new QHBoxLayout;
  filter_ = new QLineEdit(this);
  filter_->setObjectName(QStringLiteral("historyFilter"));
  filter_->setPlaceholderText(QStringLiteral("Filter by name"));
  filter_->setClearButtonEnabled(true);
  kind_ = new QComboBox(this);
  kind_->setObjectName(QStringLiteral("historyKind"));
  kind_->addItem(QStringLiteral("all kinds"), QString());
  for (const char* kind : {"simulation", "training", "validation", "sweep", "profile"})
    kind_->addItem(QLatin1String(kind), QLatin1String(kind));
  count_ = new QLabel(this);
  filters->addWidget(filter_, 1);
  filters->addWidget(kind_);
  filters->addWidget(count_);
  layout->addLayout(filters);

  auto* splitter = new QSplitter(Qt::Vertical, this);
  layout->addWidget(splitter, 1);

  auto* table_holder = new QWidget(splitter);
  auto* table_layout = new QVBoxLayout(table_holder);
  table_layout->setContentsMargins(0, 0, 0, 0);
  model_ = new QStandardItemModel(this);
  model_->setHorizontalHeaderLabels({QStringLiteral("name"), QStringLiteral("kind"), QStringLiteral("status"),
                                     QStringLiteral("created (UTC)"), QStringLiteral("step time"),
                                     QStringLiteral("tokens/s"), QStringLiteral("MFU"),
                                     QStringLiteral("peak memory/GPU"), QStringLiteral("fits"),
                                     QStringLiteral("GPUs"), QStringLiteral("profile"), QStringLiteral("id")});
  auto* proxy = new QSortFilterProxyModel(this);
  proxy->setSourceModel(model_);
  proxy->setSortRole(kSortRole);
  table_ = new TableView(QStringLiteral("runs"), table_holder);
  table_->setObjectName(QStringLiteral("runsTable"));
  table_->setModel(proxy);
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table_->setSelectionMode(QAbstractItemView::ExtendedSelection);
  table_->sortByColumn(kCreated, Qt::DescendingOrder);  // newest first, as the store lists them
  table_->horizontalHeader()->resizeSection(kName, 200);
  table_->horizontalHeader()->resizeSection(kCreated, 170);
  table_layout->addWidget(table_, 1);
  auto* actions = new QHBoxLayout;
  show_result_ = new QPushButton(QStringLiteral("Show result"), table_holder);
  show_result_->setObjectName(QStringLiteral("showResult"));
  show_result_->setToolTip(QStringLiteral("Open the run's result and timeline (double-click)"));
  open_scenario_ = new QPushButton(QStringLiteral("Open scenario in editor"), table_holder);
  open_scenario_->setObjectName(QStringLiteral("openRunScenario"));
  compare_button_ = new QPushButton(QStringLiteral("Compare the two selected"), table_holder);
  compare_button_->setObjectName(QStringLiteral("compareRuns"));
  align_button_ = new QPushButton(QStringLiteral("Predicted vs measured, op by op"), table_holder);
  align_button_->setObjectName(QStringLiteral("alignRuns"));
  align_button_->setToolTip(QStringLiteral(
      "Align the traces of a simulation and a real run of the same program by op id"));
  auto* csv = new QToolButton(table_holder);
  csv->setText(QStringLiteral("Export CSV…"));
  csv->setAutoRaise(true);
  actions->addWidget(show_result_);
  actions->addWidget(open_scenario_);
  actions->addWidget(compare_button_);
  actions->addWidget(align_button_);
  actions->addStretch(1);
  actions->addWidget(new QLabel(QStringLiteral("Ctrl/Shift-click to select two runs"), table_holder));
  actions->addWidget(csv);
  table_layout->addLayout(actions);
  splitter->addWidget(table_holder);

  tabs_ = new QTabWidget(splitter);
  tabs_->setObjectName(QStringLiteral("historyTabs"));
  const QFont fixed = QFontDatabase::systemFont(QFontDatabase::FixedFont);
  scenario_text_ = new QPlainTextEdit(tabs_);
  scenario_text_->setReadOnly(true);
  scenario_text_->setFont(fixed);
  result_text_ = new QPlainTextEdit(tabs_);
  result_text_->setReadOnly(true);
  result_text_->setFont(fixed);
  provenance_ = new QLabel(tabs_);
  provenance_->setObjectName(QStringLiteral("provenance"));
  provenance_->setAlignment(Qt::AlignTop | Qt::AlignLeft);
  provenance_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  provenance_->setWordWrap(true);
  compare_ = new CompareView(tabs_);
  tabs_->addTab(scenario_text_, QStringLiteral("Scenario"));
  tabs_->addTab(result_text_, QStringLiteral("Result JSON"));
  tabs_->addTab(provenance_, QStringLiteral("Provenance"));
  tabs_->addTab(compare_, QStringLiteral("Compare"));
  splitter->addWidget(tabs_);
  splitter->setSizes({380, 330});

  connect(open, &QPushButton::clicked, this, [this] {
    const QString path = QFileDialog::getOpenFileName(this, QStringLiteral("Open a Tandem run store"), QString(),
                                                      QStringLiteral("SQLite run stores (*.db *.sqlite *.sqlite3);;All files (*)"));
    if (path.isEmpty()) return;
    QString error;
    if (!openDatabase(path, false, &error)) QMessageBox::warning(this, QStringLiteral("Cannot open the store"), error);
  });
  connect(use_default, &QPushButton::clicked, this, [this] {
    QString error;
    if (!openDatabase(QString::fromStdString(report::default_database_path().string()), true, &error))
      QMessageBox::warning(this, QStringLiteral("Cannot open the store"), error);
  });
  connect(reload, &QPushButton::clicked, this, &HistoryPage::refresh);
  connect(filter_, &QLineEdit::textChanged, this, &HistoryPage::refresh);
  connect(kind_, &QComboBox::currentIndexChanged, this, &HistoryPage::refresh);
  connect(table_->selectionModel(), &QItemSelectionModel::selectionChanged, this, &HistoryPage::showDetails);
  connect(table_, &QTableView::doubleClicked, this, &HistoryPage::showSelectedResult);
  connect(show_result_, &QPushButton::clicked, this, &HistoryPage::showSelectedResult);
  connect(open_scenario_, &QPushButton::clicked, this, [this] {
    const QStringList ids = selectedRunIds();
    if (ids.size() != 1 || !store_) return;
    try {
      const report::RunRecord record = store_->load_run(ids.first().toStdString());
      if (record.info.scenario_yaml.empty()) return;
      emit openScenarioRequested(q(record.info.scenario_yaml), q(record.info.name.empty() ? record.id : record.info.name) + QStringLiteral(".yaml"));
    } catch (const std::exception& error) {
      emit statusMessage(QString::fromUtf8(error.what()));
    }
  });
  connect(compare_button_, &QPushButton::clicked, this, &HistoryPage::compareSelected);
  connect(align_button_, &QPushButton::clicked, this, [this] {
    const QStringList ids = selectedRunIds();
    if (ids.size() != 2 || !store_) return;
    try {
      const report::RunRecord a = store_->load_run(ids[0].toStdString());
      const report::RunRecord b = store_->load_run(ids[1].toStdString());
      const bool a_predicts = a.info.kind == report::RunKind::Simulation && b.info.kind != report::RunKind::Simulation;
      const bool b_predicts = b.info.kind == report::RunKind::Simulation && a.info.kind != report::RunKind::Simulation;
      if (b_predicts && !a_predicts) emit alignRequested(ids[1], ids[0]);
      else emit alignRequested(ids[0], ids[1]);
    } catch (const std::exception& error) {
      emit statusMessage(QString::fromUtf8(error.what()));
    }
  });
  connect(csv, &QToolButton::clicked, this, [this] { promptExportCsv(this, *table_->model(), QStringLiteral("runs")); });
  database_->setText(QStringLiteral("(none)"));
  showDetails();
}

QString HistoryPage::databasePath() const {
  return store_ ? QString::fromStdString(store_->path().string()) : QString();
}

bool HistoryPage::openDatabase(const QString& path, bool create, QString* error) {
  if (!create && !QFileInfo::exists(path)) {
    if (error) *error = QStringLiteral("%1 does not exist.").arg(path);
    return false;
  }
  try {
    store_ = std::make_shared<report::RunStore>(report::RunStore::open(path.toStdString()));
  } catch (const std::exception& exception) {
    if (error) *error = QString::fromUtf8(exception.what());
    return false;
  }
  database_->setText(QString::fromStdString(store_->path().string()));
  refresh();
  emit databaseChanged(databasePath());
  return true;
}

void HistoryPage::setNameFilter(const QString& text) { filter_->setText(text); }

void HistoryPage::refresh() {
  const QStringList selected = selectedRunIds();
  model_->removeRows(0, model_->rowCount());
  if (!store_) {
    count_->setText(QStringLiteral("no store open"));
    return;
  }
  report::RunFilter filter;
  filter.name_contains = filter_->text().trimmed().toStdString();
  if (const auto kind = report::run_kind_from_name(kind_->currentData().toString().toStdString())) filter.kind = kind;
  filter.limit = 5000;
  std::vector<report::RunSummary> runs;
  try {
    runs = store_->list_runs(filter);
  } catch (const std::exception& error) {
    count_->setText(QString::fromUtf8(error.what()));
    return;
  }
  for (const report::RunSummary& run : runs) {
    const report::Headline& headline = run.headline;
    QList<QStandardItem*> row;
    row << item(q(run.name)) << item(q(std::string(report::to_string(run.kind))))
        << item(q(std::string(report::to_string(run.status)))) << item(q(run.created_at))
        << number(headline.step_time_s, &formatDuration) << number(headline.tokens_per_s, &formatCount)
        << number(headline.mfu, &formatPercent) << number(headline.peak_bytes_per_gpu, &formatBytes)
        << item(headline.fits ? (*headline.fits ? QStringLiteral("yes") : QStringLiteral("no")) : QString())
        << number(headline.gpus ? std::optional<double>(*headline.gpus) : std::nullopt, &plainCount)
        << item(q(run.profile_name)) << item(q(run.id));
    if (run.kind == report::RunKind::Training)
      for (QStandardItem* cell : row) cell->setForeground(QColor(0x1b, 0x5e, 0x20));
    if (run.status == report::RunStatus::Failed)
      for (QStandardItem* cell : row) cell->setForeground(QColor(0xc6, 0x28, 0x28));
    for (QStandardItem* cell : row) cell->setData(q(run.id), kIdRole);
    model_->appendRow(row);
  }
  count_->setText(QStringLiteral("%1 run%2%3").arg(runs.size()).arg(runs.size() == 1 ? "" : "s")
                      .arg(runs.size() >= filter.limit ? QStringLiteral(" (newest shown)") : QString()));
  if (!selected.isEmpty()) selectRuns(selected);
}

QStringList HistoryPage::selectedRunIds() const {
  QStringList ids;
  if (table_->selectionModel() == nullptr) return ids;
  for (const QModelIndex& index : table_->selectionModel()->selectedRows())
    ids << index.data(kIdRole).toString();
  return ids;
}

void HistoryPage::selectRuns(const QStringList& ids) {
  auto* selection = table_->selectionModel();
  selection->clearSelection();
  const QAbstractItemModel* shown = table_->model();
  for (int row = 0; row < shown->rowCount(); ++row) {
    const QModelIndex index = shown->index(row, 0);
    if (ids.contains(index.data(kIdRole).toString()))
      selection->select(index, QItemSelectionModel::Select | QItemSelectionModel::Rows);
  }
}

void HistoryPage::showDetails() {
  const QStringList ids = selectedRunIds();
  show_result_->setEnabled(ids.size() == 1);
  open_scenario_->setEnabled(ids.size() == 1);
  compare_button_->setEnabled(ids.size() == 2);
  align_button_->setEnabled(ids.size() == 2);
  if (ids.size() != 1 || !store_) {
    scenario_text_->setPlainText(ids.size() == 2 ? QStringLiteral("Two runs selected: Compare shows their differences.") : QString());
    result_text_->clear();
    provenance_->clear();
    if (ids.size() == 2) compareSelected();
    return;
  }
  try {
    const report::RunRecord record = store_->load_run(ids.first().toStdString());
    scenario_text_->setPlainText(record.info.scenario_yaml.empty() ? QStringLiteral("(no scenario stored)")
                                                                   : q(record.info.scenario_yaml));
    QString result = q(record.result_json);
    const QJsonDocument pretty = QJsonDocument::fromJson(result.toUtf8());
    if (!pretty.isNull()) result = QString::fromUtf8(pretty.toJson(QJsonDocument::Indented));
    if (!record.error_message.empty()) result = QStringLiteral("Failed: ") + q(record.error_message) + QStringLiteral("\n\n") + result;
    result_text_->setPlainText(result);
    QString html = QStringLiteral("<table cellspacing=4>");
    auto row = [&html](const QString& key, const QString& value) {
      html += QStringLiteral("<tr><td><b>%1</b></td><td>%2</td></tr>").arg(key, value.toHtmlEscaped());
    };
    row(QStringLiteral("id"), q(record.id));
    row(QStringLiteral("kind"), q(std::string(report::to_string(record.info.kind))));
    row(QStringLiteral("status"), q(std::string(report::to_string(record.status))));
    row(QStringLiteral("created"), q(record.created_at));
    row(QStringLiteral("finished"), q(record.finished_at));
    row(QStringLiteral("parent run"), q(record.info.parent_run));
    row(QStringLiteral("overrides"), q(record.info.overrides_json));
    row(QStringLiteral("hardware profile"), q(record.info.profile_name));
    row(QStringLiteral("profile sha256"), q(record.info.profile_hash));
    row(QStringLiteral("Tandem version"), q(record.info.tandem_version));
    row(QStringLiteral("git revision"), q(record.info.git_revision));
    row(QStringLiteral("host"), q(record.info.host));
    row(QStringLiteral("trace rows"), QString::number(store_->trace_size(record.id)));
    html += QStringLiteral("</table>");
    provenance_->setText(html);
  } catch (const std::exception& error) {
    scenario_text_->setPlainText(QString::fromUtf8(error.what()));
  }
}

void HistoryPage::compareSelected() {
  const QStringList ids = selectedRunIds();
  if (ids.size() != 2 || !store_) return;
  try {
    const report::RunRecord a = store_->load_run(ids[0].toStdString());
    const report::RunRecord b = store_->load_run(ids[1].toStdString());
    // Older run on the left.
    if (a.created_at <= b.created_at) compare_->compare(a, b);
    else compare_->compare(b, a);
    tabs_->setCurrentWidget(compare_);
  } catch (const std::exception& error) {
    emit statusMessage(QString::fromUtf8(error.what()));
  }
}

ResultData HistoryPage::loadResult(report::RunStore& store, const std::string& run_id) {
  const report::RunRecord record = store.load_run(run_id);
  ResultData result;
  result.run_id = q(record.id);
  result.kind = q(std::string(report::to_string(record.info.kind)));
  result.title = QStringLiteral("%1 — %2 %3").arg(q(record.info.name), result.kind, result.run_id);
  if (!record.result_json.empty()) {
    QString error;
    parseResultJson(q(record.result_json), &result.json, &error);
  }
  result.trace_steps = store.trace_steps(run_id);
  if (!result.trace_steps.empty()) {
    result.trace_step = result.trace_steps.back();
    auto trace = std::make_shared<std::vector<report::TraceRecord>>(store.load_trace(run_id, result.trace_step).records);
    result.trace = std::move(trace);
  }
  result.metrics = store.load_metrics(run_id);
  return result;
}

void HistoryPage::showSelectedResult() {
  const QStringList ids = selectedRunIds();
  if (ids.size() != 1 || !store_) return;
  const std::string id = ids.first().toStdString();
  // A trace can hold millions of ops: read it off the GUI thread (the store serialises calls).
  struct Loaded {
    ResultData result;
    QString error;
  };
  std::shared_ptr<report::RunStore> store = store_;
  auto* watcher = new QFutureWatcher<Loaded>(this);
  connect(watcher, &QFutureWatcher<Loaded>::finished, this, [this, watcher, store, id] {
    watcher->deleteLater();
    show_result_->setEnabled(selectedRunIds().size() == 1);
    const Loaded loaded = watcher->result();
    if (!loaded.error.isEmpty()) {
      emit statusMessage(loaded.error);
      return;
    }
    std::weak_ptr<report::RunStore> weak = store;
    ResultPage::StepLoader loader = [weak, id](std::int64_t step) -> std::shared_ptr<const std::vector<report::TraceRecord>> {
      auto locked = weak.lock();
      if (!locked) return nullptr;
      return std::make_shared<std::vector<report::TraceRecord>>(locked->load_trace(id, step).records);
    };
    emit statusMessage(QStringLiteral("Loaded run %1").arg(QString::fromStdString(id)));
    emit showResultRequested(loaded.result, loader);
  });
  show_result_->setEnabled(false);
  emit statusMessage(QStringLiteral("Loading run %1…").arg(QString::fromStdString(id)));
  watcher->setFuture(QtConcurrent::run([store, id] {
    Loaded loaded;
    try {
      loaded.result = loadResult(*store, id);
    } catch (const std::exception& error) {
      loaded.error = QString::fromUtf8(error.what());
    }
    return loaded;
  }));
}

}  // namespace tandem::gui
