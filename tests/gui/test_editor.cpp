// The scenario editor driven through its real widgets: load a scenario, type into fields, see
// the strategy layer's errors beside them and in the problems list, edit the YAML tab and see
// the form follow, watch the memory estimate, save, and find the file in the recent list.
#include <QCheckBox>
#include <QComboBox>
#include <QFile>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSettings>
#include <QTabWidget>
#include <QTemporaryDir>
#include <QtCharts/QBarSet>
#include <QtCharts/QChart>
#include <QtCharts/QStackedBarSeries>

#include "gui/editor_page.hpp"
#include "gui/format.hpp"
#include "gui/main_window.hpp"
#include "gui/memory_chart.hpp"
#include "gui/chart_view.hpp"
#include "gui/run_panel.hpp"
#include "gui/scenario_document.hpp"
#include "gui/scenario_form.hpp"
#include "gui/simulation_service.hpp"
#include "gui/yaml_editor.hpp"
#include "strategy/memory_model.hpp"
#include "test_support.hpp"

using namespace tandem;
using namespace tandem::gui;

class EditorTest : public QObject {
  Q_OBJECT

 private:
  QTemporaryDir scratch_;
  std::unique_ptr<MainWindow> window_;

  QLineEdit* line(const char* path) {
    return window_->findChild<QLineEdit*>(QStringLiteral("field:") + QLatin1String(path));
  }
  QLabel* error(const char* path) {
    return window_->findChild<QLabel*>(QStringLiteral("error:") + QLatin1String(path));
  }
  void typeInto(QLineEdit* edit, const QString& text) {
    edit->setFocus();
    edit->selectAll();
    if (text.isEmpty()) QTest::keyClick(edit, Qt::Key_Delete);
    else QTest::keyClicks(edit, text);
  }
  void setYaml(const QString& text) {
    YamlEditor* yaml = window_->editorPage()->yamlEditor();
    yaml->textEdit()->setPlainText(text);
    yaml->flush();
  }

 private slots:
  void init() {
    QSettings().clear();
    window_ = std::make_unique<MainWindow>();
    QVERIFY(window_->openDatabase(scratch_.filePath(QStringLiteral("runs.db")), true));
    window_->show();
    QVERIFY(QTest::qWaitForWindowExposed(window_.get()));
    QVERIFY(window_->openScenario(testing::sourcePath(QStringLiteral("scenarios/default.yaml"))));
  }
  void cleanup() { window_.reset(); }

  void windowFitsA1280x800Screen() {
    QCOMPARE(window_->size(), QSize(1280, 800));
    QVERIFY(window_->minimumSizeHint().width() <= 1280);
    QVERIFY(window_->minimumSizeHint().height() <= 800);
  }

  void loadsTheScenarioIntoTheForm() {
    QCOMPARE(line("strategy.tp")->text(), QStringLiteral("2"));
    QCOMPARE(line("cluster.nodes")->text(), QStringLiteral("4"));
    auto* preset = window_->findChild<QComboBox*>(QStringLiteral("field:model.preset"));
    QCOMPARE(preset->currentText(), QStringLiteral("llama3-8b"));
    // Unset keys show what they resolve to.
    QVERIFY(line("model.layers")->text().isEmpty());
    const strategy::Scenario scenario = strategy::load_scenario((testing::sourcePath("scenarios/default.yaml")).toStdString());
    QCOMPARE(line("model.layers")->placeholderText(), QStringLiteral("%1 (resolved)").arg(scenario.model->layers));
    QVERIFY(window_->document()->validation().valid());
    QCOMPARE(window_->runPanel()->runButton()->isEnabled(), SimulationService::available());
    QCOMPARE(window_->editorPage()->problems()->count(), 0);
  }

  // The library's errors for the document's current text.
  std::vector<strategy::ValidationError> libraryErrors() {
    try {
      strategy::parse_scenario(window_->document()->yamlText().toStdString(), TANDEM_SOURCE_DIR "/scenarios");
    } catch (const strategy::ScenarioError& errors) {
      return errors.errors();
    }
    return {};
  }

  void typingAnImpossibleValueShowsTheStrategyLayersErrorBesideTheField() {
    // llama3-8b has 8 key/value heads: tp = 16 does not divide them.
    typeInto(line("strategy.tp"), QStringLiteral("16"));
    QCOMPARE(line("strategy.tp")->text(), QStringLiteral("16"));
    const auto expected = libraryErrors();
    QCOMPARE(expected.size(), std::size_t{1});
    QCOMPARE(expected[0].path, std::string("strategy.tp"));
    QVERIFY(!error("strategy.tp")->isHidden());
    QCOMPARE(error("strategy.tp")->text(), QStringLiteral("16 is invalid: expected %1").arg(QString::fromStdString(expected[0].expected)));
    QVERIFY(error("strategy.tp")->text().contains(QStringLiteral("kv_heads")));
    QCOMPARE(window_->editorPage()->problems()->count(), 1);
    QCOMPARE(window_->editorPage()->problems()->item(0)->text(), QString::fromStdString(expected[0].message()));
    QVERIFY(!window_->runPanel()->runButton()->isEnabled());
    QVERIFY(window_->document()->yamlText().contains(QStringLiteral("tp: 16")));
    QVERIFY(window_->isWindowModified());
  }

  void aCrossFieldErrorAppearsBesideTheFieldItNames() {
    // tp = 3: tp*pp = 6 does not divide 32 GPUs, which the strategy layer reports on dp.
    typeInto(line("strategy.tp"), QStringLiteral("3"));
    const auto expected = libraryErrors();
    QVERIFY(!expected.empty());
    for (const auto& item : expected) {
      QLabel* label = error(item.path.c_str());
      QVERIFY2(label != nullptr, item.path.c_str());
      QVERIFY2(label->text().contains(QString::fromStdString(item.expected)), item.path.c_str());
      QVERIFY(!label->isHidden());
    }
    QVERIFY(error("strategy.tp")->isHidden());
    // Fixing it clears every message.
    typeInto(line("strategy.tp"), QStringLiteral("8"));
    QVERIFY(libraryErrors().empty());
    QCOMPARE(window_->editorPage()->problems()->count(), 0);
    QVERIFY(error("strategy.dp")->isHidden());
    QCOMPARE(window_->runPanel()->runButton()->isEnabled(), SimulationService::available());
  }

  void typedTextIsCheckedAgainstTheSchemaAtOnce() {
    typeInto(line("strategy.tp"), QStringLiteral("two"));
    QVERIFY(error("strategy.tp")->text().contains(QStringLiteral("an integer")));
    typeInto(line("strategy.grad_bucket"), QStringLiteral("25"));  // hidden field, still editable
    QVERIFY(error("strategy.grad_bucket")->text().contains(QStringLiteral("MB")));
    typeInto(line("strategy.tp"), QStringLiteral("2"));
    QVERIFY(error("strategy.tp")->isHidden());
  }

  void yamlEditsUpdateTheFormAndTheMemoryEstimate() {
    QString text = window_->document()->yamlText();
    text.replace(QStringLiteral("tp: 2"), QStringLiteral("tp: 4"));
    setYaml(text);
    QCOMPARE(line("strategy.tp")->text(), QStringLiteral("4"));
    QVERIFY(window_->document()->validation().valid());
    // The chart shows the strategy layer's estimate for this very text.
    const strategy::Scenario scenario =
        strategy::parse_scenario(text.toStdString(), TANDEM_SOURCE_DIR "/scenarios");
    const strategy::MemoryEstimate estimate = strategy::estimate_memory(scenario);
    MemoryChart* chart = window_->editorPage()->memoryChart();
    QVERIFY(chart->verdictText().contains(formatBytes(estimate.worst().total())));
    QVERIFY(chart->verdictText().contains(estimate.fits ? QStringLiteral("fits") : QStringLiteral("does not fit")));
    QStackedBarSeries* bars = nullptr;
    for (auto* series : chart->chartView()->chart()->series())
      if (auto* stacked = qobject_cast<QStackedBarSeries*>(series)) bars = stacked;
    QVERIFY(bars != nullptr);
    QCOMPARE(bars->barSets().at(0)->count(), static_cast<int>(estimate.stages.size()));
    const double gib = 1024.0 * 1024.0 * 1024.0;
    for (std::size_t stage = 0; stage < estimate.stages.size(); ++stage) {
      QCOMPARE(bars->barSets().at(0)->at(static_cast<int>(stage)), estimate.stages[stage].weights / gib);
      QCOMPARE(bars->barSets().at(3)->at(static_cast<int>(stage)), estimate.stages[stage].activations / gib);
    }
  }

  void brokenYamlShowsTheSyntaxErrorAndKeepsTheForm() {
    setYaml(QStringLiteral("name: broken\nstrategy: [tp: 2\n"));
    auto* status = window_->findChild<QLabel*>(QStringLiteral("yamlStatus"));
    QVERIFY(!status->isHidden());
    QVERIFY(status->text().contains(QStringLiteral("line")));
    QCOMPARE(line("strategy.tp")->text(), QStringLiteral("2"));  // the last good document
    QVERIFY(!window_->runPanel()->runButton()->isEnabled());
  }

  void choicesAndClearingAFieldEditTheDocument() {
    auto* recompute = window_->findChild<QComboBox*>(QStringLiteral("field:strategy.recompute"));
    const int full = recompute->findData(QStringLiteral("full"));
    QVERIFY(full > 0);
    recompute->setCurrentIndex(full);
    emit recompute->activated(full);
    QCOMPARE(window_->document()->field("strategy.recompute").value(), std::string("full"));
    typeInto(line("strategy.tp"), QString());
    QVERIFY(!window_->document()->field("strategy.tp"));
    QVERIFY(line("strategy.tp")->placeholderText().contains(QStringLiteral("1")));  // schema default tp = 1
  }

  void showAllFieldsRevealsTheRestOfTheSchema() {
    ScenarioForm* form = window_->editorPage()->form();
    QVERIFY(!form->isFieldVisible(QStringLiteral("training.seed")));
    QVERIFY(form->isFieldVisible(QStringLiteral("strategy.tp")));
    window_->findChild<QCheckBox*>(QStringLiteral("showAllFields"))->setChecked(true);
    QVERIFY(form->isFieldVisible(QStringLiteral("training.seed")));
  }

  void problemsLeadToTheirField() {
    typeInto(line("strategy.tp"), QStringLiteral("16"));
    QListWidget* problems = window_->editorPage()->problems();
    QVERIFY(problems->count() > 0);
    QListWidgetItem* item = nullptr;
    for (int i = 0; i < problems->count(); ++i)
      if (problems->item(i)->data(Qt::UserRole).toString() == QLatin1String("strategy.tp")) item = problems->item(i);
    QVERIFY(item != nullptr);
    window_->editorPage()->tabs()->setCurrentIndex(1);
    emit problems->itemActivated(item);
    QCOMPARE(window_->editorPage()->tabs()->currentWidget(), static_cast<QWidget*>(window_->editorPage()->form()));
    QVERIFY(line("strategy.tp")->hasFocus());
  }

  void savesAndRemembersTheFile() {
    typeInto(line("strategy.micro_batch"), QStringLiteral("2"));
    const QString path = scratch_.filePath(QStringLiteral("edited.yaml"));
    QVERIFY(window_->saveAs(path));
    QVERIFY(!window_->isWindowModified());
    QFile file(path);
    QVERIFY(file.open(QIODevice::ReadOnly));
    const QString written = QString::fromUtf8(file.readAll());
    QCOMPARE(written, window_->document()->yamlText());
    const strategy::Scenario reloaded = strategy::load_scenario(path.toStdString());
    QCOMPARE(reloaded.strategy->micro_batch, 2);
    QCOMPARE(window_->recentFiles().first(), QFileInfo(path).absoluteFilePath());
    // Open it again through the window: the form shows the saved value.
    QVERIFY(window_->openScenario(testing::sourcePath(QStringLiteral("scenarios/default.yaml"))));
    QCOMPARE(line("strategy.micro_batch")->text(), QStringLiteral("1"));
    QVERIFY(window_->openScenario(path));
    QCOMPARE(line("strategy.micro_batch")->text(), QStringLiteral("2"));
  }

  void ctrlSSavesTheOpenFile() {
    const QString path = scratch_.filePath(QStringLiteral("shortcut.yaml"));
    QVERIFY(window_->saveAs(path));
    typeInto(line("strategy.global_batch"), QStringLiteral("256"));
    QVERIFY(window_->isWindowModified());
    window_->activateWindow();
    QVERIFY(QTest::qWaitForWindowActive(window_.get()));
    QTest::keySequence(window_.get(), QKeySequence::Save);
    QVERIFY(!window_->isWindowModified());
    QCOMPARE(strategy::load_scenario(path.toStdString()).strategy->global_batch, 256);
  }

  void everyBuiltinScenarioLoadsValid() {
    for (const std::string& name : strategy::builtin_scenario_names()) {
      window_->openBuiltin(QString::fromStdString(name));
      QVERIFY2(window_->document()->validation().valid(), name.c_str());
    }
  }
};

TANDEM_GUI_TEST_MAIN(EditorTest)
#include "test_editor.moc"
