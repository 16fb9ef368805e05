// `engine train` with strategy.outer, end to end (the engine executable, under mpirun for several
// workers):
//   - one worker, H = 1, outer learning rate 1, no momentum: DiLoCo's losses are exactly those of
//     plain training (the outer step returns the inner parameters bit for bit);
//   - a resume from a checkpoint reproduces the uninterrupted losses bit for bit, including a
//     Streaming DiLoCo checkpoint written while a fragment's (int4) exchange is in flight, and
//     SNOO's and NoLoCo's outer state;
//   - DiLoCo and NoLoCo over 2 and 4 workers learn, and the bytes a worker sends are those of
//     the schedule (DiLoCo: 2 (W-1)/W x 4 bytes per parameter every H steps).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>

#include <nlohmann/json.hpp>

#include "strategy/model_formulas.hpp"
#include "strategy/scenario.hpp"
#include "tests/engine/engine_test_support.hpp"

namespace tandem::engine {
namespace {

using test::engine_command;
using test::run_command;

struct OuterRun {
  std::string dir;
  std::string scenario;
};

OuterRun make_run(const std::string& name, int workers, const std::string& outer, int steps = 12) {
  OuterRun r;
  r.dir = test::temp_dir("outer-" + name).string();
  test::TinyModel model;
  model.layers = 2;
  test::TinyRun run;
  run.steps = steps;
  run.gpus = workers;
  run.global_batch = 2 * workers;
  run.micro_batch = 2;
  run.strategy["dp"] = std::to_string(workers);
  if (!outer.empty()) run.strategy["outer"] = outer;
  r.scenario = r.dir + "/scenario.yaml";
  // A constant learning rate: the interrupted runs of the resume tests stop early with --steps,
  // which would otherwise shorten a cosine schedule.
  std::string yaml = test::scenario_yaml(model, run);
  const std::string cosine = "lr_schedule: cosine";
  yaml.replace(yaml.find(cosine), cosine.size(), "lr_schedule: constant");
  test::write_file(r.scenario, yaml);
  return r;
}

nlohmann::json train(const OuterRun& r, int workers, std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"train", r.scenario, "--json", "--no-db", "--quiet"};
  args.insert(args.end(), extra.begin(), extra.end());
  const auto result = run_command(engine_command(args, workers));
  EXPECT_EQ(result.exit_code, 0) << result.err;
  if (result.exit_code != 0) return nlohmann::json::object();
  return nlohmann::json::parse(result.out);
}

std::vector<double> losses(const nlohmann::json& j) {
  return j.contains("losses") ? j["losses"].get<std::vector<double>>() : std::vector<double>{};
}

// Interrupted at `stop` (a checkpoint every `every` steps), resumed to the end.
std::vector<double> resumed(const OuterRun& r, int workers, int stop, int every, int steps = 12) {
  const std::string checkpoints = r.dir + "/ckpt";
  train(r, workers, {"--checkpoint-dir", checkpoints, "--checkpoint-every", std::to_string(every), "--steps",
                     std::to_string(stop)});
  return losses(train(r, workers, {"--checkpoint-dir", checkpoints, "--checkpoint-every", std::to_string(every),
                                   "--steps", std::to_string(steps), "--resume"}));
}

}  // namespace

TEST(EngineOuter, OneWorkerDilocoWithLrOneAndNoMomentumEqualsPlainTraining) {
  const OuterRun plain = make_run("plain", 1, "");
  const OuterRun diloco = make_run("diloco-h1", 1, "{method: diloco, inner_steps: 1, outer_lr: 1, momentum: 0}");
  const nlohmann::json a = train(plain, 1), b = train(diloco, 1);
  ASSERT_EQ(losses(a).size(), 12u);
  EXPECT_EQ(losses(a), losses(b));  // exactly
  EXPECT_EQ(a["final_val_loss"], b["final_val_loss"]);
  EXPECT_EQ(b["outer_method"], "diloco");
  // A real outer step changes the trajectory.
  const OuterRun nesterov = make_run("diloco-h2", 1, "{method: diloco, inner_steps: 2, outer_lr: 0.7, momentum: 0.9}");
  EXPECT_NE(losses(train(nesterov, 1)), losses(a));
}

TEST(EngineOuter, ResumeIsBitExactWithOuterState) {
  // SNOO (one worker, K = 3): checkpoint at 6, between outer steps' momentum updates.
  const OuterRun snoo = make_run("snoo", 1, "{method: snoo, inner_steps: 3}");
  const std::vector<double> snoo_reference = losses(train(snoo, 1));
  ASSERT_EQ(snoo_reference.size(), 12u);
  EXPECT_EQ(resumed(snoo, 1, 7, 4), snoo_reference);  // checkpoint at 4, resumed there
  // Streaming DiLoCo, 2 workers, int4, period 2, delay 1: the checkpoint after step 6 holds the
  // fragment sent after step 6, applied after step 7.
  const OuterRun streaming =
      make_run("streaming", 2, "{method: streaming-diloco, inner_steps: 4, fragments: 2, delay: 1, quantize: int4}");
  const std::vector<double> streaming_reference = losses(train(streaming, 2));
  ASSERT_EQ(streaming_reference.size(), 12u);
  EXPECT_EQ(resumed(streaming, 2, 6, 6), streaming_reference);
}

TEST(EngineOuter, WorkersLearnAndSendTheScheduledBytes) {
  // DiLoCo over 2 workers, H = 3: every 3 steps an fp32 all-reduce of every parameter.
  const OuterRun diloco = make_run("diloco-2", 2, "{method: diloco, inner_steps: 3}");
  const nlohmann::json d = train(diloco, 2);
  const std::vector<double> loss = losses(d);
  ASSERT_EQ(loss.size(), 12u);
  EXPECT_LT(loss.back(), loss.front());
  const auto sent = d["worker_bytes_sent"].get<std::vector<double>>();
  ASSERT_EQ(sent.size(), 12u);
  const strategy::Scenario s = strategy::load_scenario(diloco.scenario);
  double parameters = 0;
  for (const auto& tensor : strategy::parameter_tensors(*s.model, 1)) parameters += static_cast<double>(tensor.elements());
  const double per_sync = 2.0 * (2 - 1) / 2 * 4 * parameters;
  for (int step = 1; step <= 12; ++step)
    EXPECT_DOUBLE_EQ(sent[static_cast<std::size_t>(step - 1)], per_sync * (step / 3)) << step;
  // Synchronous data parallelism sends its gradients every step (more than DiLoCo's every 3).
  const nlohmann::json p = train(make_run("dp-2", 2, ""), 2);
  EXPECT_GT(p["worker_bytes_sent"].back().get<double>(), 2.5 * sent.back());
  // NoLoCo over 4 workers, pairs, H = 2.
  const nlohmann::json n = train(make_run("noloco-4", 4, "{method: noloco, inner_steps: 2}"), 4);
  const std::vector<double> noloco = losses(n);
  ASSERT_EQ(noloco.size(), 12u);
  EXPECT_LT(noloco.back(), noloco.front());
  EXPECT_DOUBLE_EQ(n["worker_bytes_sent"].back().get<double>(), 6 * (2.0 * 1 / 2 * 4 * parameters));
}

}  // namespace tandem::engine
