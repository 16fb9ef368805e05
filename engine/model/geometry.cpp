#include "engine/model/geometry.hpp"

#include "strategy/model_formulas.hpp"
#include "strategy/pipeline_schedule.hpp"

namespace tandem::engine {

StageGeometry make_geometry(const strategy::Scenario& scenario, int tp_rank, int dp_rank, int stage) {
  const strategy::ModelSpec& m = *scenario.model;
  const strategy::StrategySpec& s = *scenario.strategy;
  StageGeometry g;
  g.B = s.micro_batch;
  g.T = m.seq_len;
  g.C = m.hidden;
  g.heads = m.heads;
  g.kv_heads = m.kv_heads;
  g.D = m.head_dim();
  g.ffn = m.ffn_hidden;
  g.vocab = m.vocab;
  g.padded_vocab = static_cast<int>(strategy::padded_vocab(m, s.tp));
  g.layers = m.layers;
  g.swiglu = m.activation == strategy::Activation::SwiGlu;
  g.rmsnorm = m.norm == strategy::Norm::RmsNorm;
  g.rope = m.position == strategy::Position::Rope;
  g.learned_positions = m.position == strategy::Position::Learned;
  g.tied = m.tied_embeddings;
  g.biases = strategy::model_has_biases(m);
  g.norm_bias = m.norm == strategy::Norm::LayerNorm;
  g.rope_theta = m.rope_theta;

  g.tp = s.tp;
  g.tp_rank = tp_rank;
  g.pp = s.pp;
  g.stage = stage;
  g.dp = s.dp;
  g.dp_rank = dp_rank;
  g.sequence_parallel = s.sequence_parallel && s.tp > 1;
  g.stage_layers = m.layers / s.pp;
  g.first_layer = stage * g.stage_layers;
  g.first_stage = stage == 0;
  g.last_stage = stage == s.pp - 1;
  g.slots = strategy::peak_in_flight(
      strategy::pipeline_schedule(s.schedule, s.pp, stage, s.micro_batches(), s.virtual_stages));
  if (g.slots < 1) g.slots = 1;
  g.recompute_full = s.recompute == strategy::Recompute::Full;

  g.Hq = m.heads / s.tp;
  g.Hkv = m.kv_heads / s.tp;
  g.qkv_width = (g.Hq + 2 * g.Hkv) * g.D;
  g.attention_width = g.Hq * g.D;
  g.F = m.ffn_hidden / s.tp;
  g.up_width = g.swiglu ? 2 * g.F : g.F;
  g.V = g.padded_vocab / s.tp;
  g.vocab_start = tp_rank * g.V;
  g.M = g.B * g.T;
  g.Mn = g.sequence_parallel ? g.M / s.tp : g.M;
  return g;
}

}  // namespace tandem::engine
