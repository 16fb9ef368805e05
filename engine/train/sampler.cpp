#include "engine/train/sampler.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <sstream>

#include "engine/backend/backend.hpp"
#include "engine/checkpoint/checkpoint.hpp"
#include "engine/model/gpt_stage.hpp"
#include "engine/train/trainer.hpp"
#include "kernels/cpu/threading.hpp"
#include "strategy/model_formulas.hpp"
#include "strategy/program.hpp"

namespace tandem::engine {
namespace {

std::string text_of(const std::vector<std::uint8_t>& bytes) { return {bytes.begin(), bytes.end()}; }

std::int32_t draw(const std::vector<float>& logits, int vocab, double temperature, int top_k, std::mt19937_64& rng) {
  std::vector<int> order(static_cast<std::size_t>(vocab));
  for (int i = 0; i < vocab; ++i) order[static_cast<std::size_t>(i)] = i;
  if (temperature <= 0) {
    return *std::max_element(order.begin(), order.end(), [&](int a, int b) { return logits[a] < logits[b]; });
  }
  int keep = top_k > 0 ? std::min(top_k, vocab) : vocab;
  std::partial_sort(order.begin(), order.begin() + keep, order.end(),
                    [&](int a, int b) { return logits[a] > logits[b]; });
  const double max = logits[static_cast<std::size_t>(order[0])];
  std::vector<double> weights(static_cast<std::size_t>(keep));
  double total = 0;
  for (int i = 0; i < keep; ++i) {
    weights[static_cast<std::size_t>(i)] = std::exp((logits[static_cast<std::size_t>(order[i])] - max) / temperature);
    total += weights[static_cast<std::size_t>(i)];
  }
  const double u = std::uniform_real_distribution<double>(0.0, total)(rng);
  double cumulative = 0;
  for (int i = 0; i < keep; ++i) {
    cumulative += weights[static_cast<std::size_t>(i)];
    if (u < cumulative) return order[static_cast<std::size_t>(i)];
  }
  return order[static_cast<std::size_t>(keep - 1)];
}

}  // namespace

SampleResult sample(const SampleOptions& options) {
  const std::optional<checkpoint::CheckpointInfo> info = checkpoint::find_latest_good(options.checkpoint_dir);
  if (!info) throw UserError("--checkpoint: no good checkpoint in " + options.checkpoint_dir.string());
  const checkpoint::ShardFile first = checkpoint::read_shard(info->directory / checkpoint::shard_file_name(0));
  const auto scenario_section = first.contents.extra_sections.find("scenario");
  if (scenario_section == first.contents.extra_sections.end())
    throw UserError("--checkpoint: " + info->directory.string() + " was not written by engine train (no scenario)");
  const strategy::Scenario trained = strategy::parse_scenario(text_of(scenario_section->second), options.checkpoint_dir);
  const auto format_section = first.contents.extra_sections.find("data_format");
  const bool byte_level = format_section != first.contents.extra_sections.end() && text_of(format_section->second) == "text";
  const strategy::ModelSpec& model = *trained.model;
  const strategy::StrategySpec& s = *trained.strategy;

  // The full model, put back together from every (tp, pp) shard of data-parallel replica 0.
  std::map<std::string, std::vector<float>> full;
  std::map<std::string, strategy::ParameterTensorSpec> specs;
  for (const strategy::ParameterTensorSpec& spec : strategy::parameter_tensors(model, 1)) {
    full[spec.name].assign(static_cast<std::size_t>(spec.elements()), 0.0f);
    specs[spec.name] = spec;
  }
  const strategy::ParallelLayout layout(s.tp, s.cp, s.dp, s.pp, trained.cluster.gpus_per_node);
  if (layout.world_size() != info->world_size)
    throw UserError("--checkpoint: " + info->directory.string() + " has " + std::to_string(info->world_size) +
                    " shards but its scenario describes " + std::to_string(layout.world_size()) + " ranks");
  for (int rank = 0; rank < info->world_size; ++rank) {
    const strategy::RankCoordinates c = layout.coordinates(rank);
    if (c.dp != 0) continue;
    const checkpoint::ShardFile shard =
        rank == 0 ? first : checkpoint::read_shard(info->directory / checkpoint::shard_file_name(rank));
    const StageGeometry g = make_geometry(trained, c.tp, c.dp, c.pp);
    const ParameterLayout local = make_parameter_layout(model, g, s.grad_bucket_bytes, s.zero);
    if (shard.contents.weights.size() != local.total)
      throw UserError("--checkpoint: " + checkpoint::shard_file_name(rank) + " does not match its scenario's layout");
    for (const LocalTensor& tensor : local.tensors) {
      std::vector<float>& target = full.at(tensor.spec.name);
      const std::int64_t full_rows = specs.at(tensor.spec.name).rows, cols_full = tensor.spec.cols;
      for (std::int64_t r = 0; r < tensor.rows; ++r) {
        const std::int64_t row = full_row_of(tensor.spec, g, tensor.rows, r);
        if (row >= full_rows) continue;  // vocabulary padding of a tensor-parallel layout
        for (std::int64_t col = 0; col < tensor.cols; ++col) {
          const std::int64_t full_col = full_col_of(tensor.spec, g, tensor.cols, col);
          target[static_cast<std::size_t>(row * cols_full + full_col)] =
              shard.contents.weights[tensor.offset + static_cast<std::size_t>(r * tensor.cols + col)];
        }
      }
    }
  }

  // One CPU rank, one sequence.
  YAML::Node document = YAML::Clone(trained.document);
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"cluster.gpu", "cpu"}, {"cluster.nodes", "1"}, {"cluster.gpus_per_node", "1"},
           {"strategy.tp", "1"}, {"strategy.pp", "1"}, {"strategy.dp", "1"}, {"strategy.zero", "0"},
           {"strategy.sequence_parallel", "false"}, {"strategy.micro_batch", "1"},
           {"strategy.global_batch", "1"}, {"strategy.schedule", "1f1b"}, {"strategy.recompute", "none"},
           {"strategy.precision", "fp32"}})
    document = strategy::with_override(document, key, value);
  const strategy::Scenario single = strategy::scenario_from_document(document, options.checkpoint_dir);
  kernels::cpu::set_kernel_threads(options.threads > 0 ? options.threads : std::max(1, trained.cluster.threads_per_rank));
  std::unique_ptr<Backend<float>> backend = make_cpu_backend<float>();
  const StageGeometry g = make_geometry(single, 0, 0, 0);
  GptStage<float> stage(*backend, model, g, s.grad_bucket_bytes, 0);
  for (const LocalTensor& tensor : stage.parameters().layout().tensors)
    backend->upload(stage.parameters().values() + tensor.offset, full.at(tensor.spec.name).data(),
                    static_cast<std::size_t>(tensor.size()));
  const strategy::Program program = strategy::build_program(single);
  std::vector<strategy::Op> forward;
  for (const strategy::Op& op : program.stage_ops[0])
    if (op.phase == strategy::Phase::Forward && op.type == strategy::OpType::Compute &&
        op.code != strategy::OpCode::CrossEntropyForward)
      forward.push_back(op);

  SampleResult result;
  result.byte_level = byte_level;
  result.checkpoint_step = info->step;
  if (byte_level) {
    for (unsigned char c : options.prompt) result.prompt_tokens.push_back(c);
  } else {
    std::istringstream in(options.prompt);
    std::string word;
    while (in >> word) {
      try {
        std::size_t used = 0;
        const long value = std::stol(word, &used);
        if (used != word.size() || value < 0 || value >= model.vocab) throw std::invalid_argument(word);
        result.prompt_tokens.push_back(static_cast<std::int32_t>(value));
      } catch (const std::exception&) {
        throw UserError("--prompt: '" + word + "' is not a token id in [0, " + std::to_string(model.vocab) +
                        ") (this model was not trained on byte-level text, so the prompt is a list of token ids)");
      }
    }
  }
  if (result.prompt_tokens.empty()) result.prompt_tokens.push_back(0);
  for (std::int32_t t : result.prompt_tokens)
    if (t >= model.vocab) throw UserError("--prompt: byte " + std::to_string(t) + " is outside the model's vocabulary");

  std::mt19937_64 rng(options.seed);
  std::vector<std::int32_t> context = result.prompt_tokens;
  std::vector<std::int32_t> inputs(static_cast<std::size_t>(g.T)), targets(static_cast<std::size_t>(g.T), 0);
  std::vector<float> logits(static_cast<std::size_t>(g.V));
  for (int n = 0; n < options.tokens; ++n) {
    const std::size_t length = std::min<std::size_t>(context.size(), static_cast<std::size_t>(g.T));
    std::fill(inputs.begin(), inputs.end(), 0);
    std::copy(context.end() - static_cast<std::ptrdiff_t>(length), context.end(), inputs.begin());
    stage.set_inputs(0, inputs);
    stage.set_targets(0, targets);
    for (const strategy::Op& op : forward) stage.run(op);
    backend->download(logits.data(), stage.logits(0) + (length - 1) * static_cast<std::size_t>(g.V), logits.size());
    const std::int32_t next = draw(logits, model.vocab, options.temperature, options.top_k, rng);
    result.generated.push_back(next);
    context.push_back(next);
  }
  if (byte_level) {
    for (std::int32_t t : result.prompt_tokens) result.text.push_back(static_cast<char>(t));
    for (std::int32_t t : result.generated) result.text.push_back(static_cast<char>(t));
  } else {
    std::ostringstream text;
    for (std::size_t i = 0; i < context.size(); ++i) text << (i ? " " : "") << context[i];
    result.text = text.str();
  }
  return result;
}

}  // namespace tandem::engine
