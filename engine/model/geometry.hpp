#pragma once
// The shapes one rank works with: its pipeline stage's layers, its tensor-parallel shard of every
// tensor, the tokens of a micro-batch with and without sequence parallelism. Derived once from the
// scenario and the rank's coordinates; everything else in engine/model reads it.

#include <cstdint>

#include "strategy/scenario.hpp"

namespace tandem::engine {

struct StageGeometry {
  // model
  int B = 1;           // sequences per micro-batch
  int T = 1;           // sequence length
  int C = 1;           // hidden
  int heads = 1, kv_heads = 1, D = 1;
  int ffn = 1;         // ffn_hidden
  int vocab = 1;       // real vocabulary
  int padded_vocab = 1;
  int layers = 1;      // of the whole model
  bool swiglu = false, rmsnorm = false, rope = false, tied = false;
  bool biases = false;       // linear-layer biases (LayerNorm models)
  bool norm_bias = false;    // LayerNorm bias
  bool learned_positions = true;
  double rope_theta = 10000;

  // parallelism
  int tp = 1, tp_rank = 0;
  int pp = 1, stage = 0;
  int dp = 1, dp_rank = 0;
  bool sequence_parallel = false;  // only when tp > 1
  int first_layer = 0;             // global index of this stage's first layer
  int stage_layers = 1;            // layers on this stage
  bool first_stage = true, last_stage = true;
  int slots = 1;                   // micro-batches whose activations are held at once
  bool recompute_full = false;     // layer internals are recomputed in backward (one copy)

  // local (this tensor-parallel rank) widths
  int Hq = 1, Hkv = 1;   // local heads
  int qkv_width = 1;     // (Hq + 2 Hkv) D
  int attention_width = 1;  // Hq D
  int F = 1;             // local ffn
  int up_width = 1;      // F (GELU) or 2F (SwiGLU)
  int V = 1;             // local vocabulary rows (padded_vocab / tp)
  int vocab_start = 0;

  int M = 1;   // tokens of a micro-batch: B·T
  int Mn = 1;  // tokens on which norms and residuals run here: M / tp with sequence parallelism

  std::int64_t tokens() const { return static_cast<std::int64_t>(M); }
};

// Geometry of the rank at (tp_rank, dp_rank, stage) of a validated scenario.
StageGeometry make_geometry(const strategy::Scenario& scenario, int tp_rank, int dp_rank, int stage);

}  // namespace tandem::engine
