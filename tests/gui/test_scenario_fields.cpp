// The editor's schema view (gui/scenario_fields.hpp): the form covers the schema, and reading,
// writing and locating keys in a YAML document behaves as the YAML says.
#include <set>

#include "gui/scenario_fields.hpp"
#include "strategy/schema.hpp"
#include "test_support.hpp"

using namespace tandem;
using namespace tandem::gui;

class ScenarioFieldsTest : public QObject {
  Q_OBJECT

 private slots:
  void formCoversEveryScalarKeyOfTheSchema() {
    std::set<std::string> in_form;
    for (const FormField& field : form_fields()) in_form.insert(field.key->path);
    for (const strategy::SchemaKey& key : strategy::scenario_schema()) {
      const bool scalar = key.type != strategy::ValueType::Section && key.type != strategy::ValueType::SectionList &&
                          key.type != strategy::ValueType::OptimizerArguments && key.type != strategy::ValueType::SweepMap;
      const bool expected = scalar && key.path.find("[]") == std::string::npos && !key.path.starts_with("predicted");
      QVERIFY2(in_form.contains(key.path) == expected, key.path.c_str());
    }
  }

  void commonFieldsAreTheIssuesList() {
    // Issue 5 names these; a renamed schema key must fail here, not silently vanish from the form.
    for (const char* path : {"model.preset", "model.layers", "model.hidden", "cluster.gpu", "cluster.nodes",
                             "cluster.gpus_per_node", "cluster.nic.count", "cluster.fabric.topology", "strategy.tp",
                             "strategy.pp", "strategy.dp", "strategy.cp", "strategy.zero", "strategy.micro_batch",
                             "strategy.global_batch", "strategy.schedule", "strategy.recompute",
                             "strategy.precision", "strategy.optimizer"}) {
      const FormField* field = find_form_field(path);
      QVERIFY2(field != nullptr, path);
      QVERIFY2(field->common, path);
    }
    QVERIFY(!find_form_field("training.seed")->common);
    // Choices come from the schema; profiles from the built-in list.
    QCOMPARE(find_form_field("strategy.schedule")->suggestions,
             (std::vector<std::string>{"gpipe", "1f1b", "interleaved"}));
    QCOMPARE(find_form_field("cluster.gpu")->suggestions, strategy::builtin_profile_names());
  }

  void readsWritesAndRemovesKeys() {
    YAML::Node document = YAML::Load("name: x\ncluster: {gpu: a100-80gb, nodes: 2}\nstrategy:\n  tp: 2\n");
    QCOMPARE(value_at(document, "strategy.tp").value(), std::string("2"));
    QCOMPARE(value_at(document, "cluster.nodes").value(), std::string("2"));
    QVERIFY(!value_at(document, "strategy.pp"));
    QVERIFY(!value_at(document, "model.layers"));
    // Lookups never add keys.
    QVERIFY(!document["model"]);

    set_value(document, "strategy.pp", "4", strategy::ValueType::Integer);
    set_value(document, "cluster.nic.count", "2", strategy::ValueType::Integer);
    QCOMPARE(document["strategy"]["pp"].Scalar(), std::string("4"));
    QCOMPARE(document["cluster"]["nic"]["count"].Scalar(), std::string("2"));

    set_value(document, "collective.sizes", "1MiB, 64MiB", strategy::ValueType::BytesList);
    QVERIFY(document["collective"]["sizes"].IsSequence());
    QCOMPARE(document["collective"]["sizes"].size(), std::size_t{2});
    QCOMPARE(value_at(document, "collective.sizes").value(), std::string("1MiB, 64MiB"));

    remove_value(document, "cluster.nic.count");
    QVERIFY(!document["cluster"]["nic"]);  // the emptied section goes too
    QCOMPARE(document["cluster"]["nodes"].Scalar(), std::string("2"));
    remove_value(document, "collective.sizes");
    QVERIFY(!document["collective"]);
  }

  void fieldChecksUseTheSchema() {
    const strategy::SchemaKey& tp = *strategy::find_schema_key("strategy.tp");
    QVERIFY(check_field_text(tp, "4").empty());
    const auto errors = check_field_text(tp, "four");
    QCOMPARE(errors.size(), std::size_t{1});
    QCOMPARE(errors[0].path, std::string("strategy.tp"));
    QCOMPARE(errors[0].value, std::string("four"));
    QVERIFY(!check_field_text(*strategy::find_schema_key("strategy.grad_bucket"), "25").empty());  // unit required
    QVERIFY(check_field_text(*strategy::find_schema_key("strategy.grad_bucket"), "25MB").empty());
  }

  void locatesErrorPathsInTheText() {
    const YAML::Node document = YAML::Load(
        "name: x\n"                        // line 0
        "cluster:\n"                       // 1
        "  gpu: a100-80gb\n"               // 2
        "  node_groups:\n"                 // 3
        "    - {nodes: 1}\n"               // 4
        "    - {nodes: 1, nic: {count: 0}}\n"  // 5
        "strategy:\n"                      // 6
        "  tp: 3\n");                      // 7
    QCOMPARE(line_of(document, "strategy.tp").value(), 7);
    QCOMPARE(line_of(document, "cluster.node_groups[1].nic.count").value(), 5);
    QCOMPARE(line_of(document, "strategy.pp").value(), 7);  // closest existing ancestor's node
    QVERIFY(!line_of(document, "model.layers"));
  }

  void resolvedValuesComeFromTheScenario() {
    const strategy::Scenario scenario = strategy::load_builtin_scenario("default");
    QCOMPARE(resolved_text(scenario, "model.layers").value(), std::to_string(scenario.model->layers));
    QCOMPARE(resolved_text(scenario, "strategy.dp").value(), std::to_string(scenario.strategy->dp));
    QVERIFY(!resolved_text(scenario, "training.seed"));
  }
};

TANDEM_GUI_TEST_MAIN(ScenarioFieldsTest)
#include "test_scenario_fields.moc"
