#pragma once
// Shared by the engine state-memory tests (single process and under mpirun): the two tiny models
// as scenarios and a deterministic token source for Runner::step.

#include <cstdint>
#include <string>
#include <vector>

#include "engine/runner/runner.hpp"

namespace tandem::optim_test {

// hidden 32, 4 heads, 2 layers, vocabulary 64, sequence 16; GPT-2 style (GELU, LayerNorm, learned
// positions, untied head, ffn 64) or Llama style (SwiGLU, RMSNorm, RoPE, 2 KV heads, tied, ffn 48).
// APOLLO and GaLore refresh their projection every step (update_proj_gap 1).
inline std::string state_scenario_yaml(const std::string& optimizer, bool llama, int tp, int pp, int dp) {
  std::string model = llama ? "model: {layers: 2, hidden: 32, heads: 4, kv_heads: 2, ffn_hidden: 48, vocab: 64, "
                              "seq_len: 16, activation: swiglu, norm: rmsnorm, position: rope, tied_embeddings: true}\n"
                            : "model: {layers: 2, hidden: 32, heads: 4, ffn_hidden: 64, vocab: 64, seq_len: 16, "
                              "activation: gelu, norm: layernorm, position: learned, tied_embeddings: false}\n";
  std::string args;
  if (optimizer == "apollo" || optimizer == "apollo-mini" || optimizer == "galore")
    args = ", optimizer_args: {update_proj_gap: 1}";
  return model + "cluster: {gpu: cpu, nodes: 1, gpus_per_node: " + std::to_string(tp * pp * dp) +
         ", threads_per_rank: 1}\n"
         "strategy: {tp: " + std::to_string(tp) + ", pp: " + std::to_string(pp) + ", dp: " + std::to_string(dp) +
         ", micro_batch: 2, global_batch: " + std::to_string(4 * dp) + ", precision: fp32, optimizer: " + optimizer +
         args + "}\n"
         "training: {steps: 2, seed: 7, data: synthetic}\n";
}

inline engine::MicroBatchSource state_test_batches() {
  return [](int micro_batch, std::vector<std::int32_t>& inputs, std::vector<std::int32_t>& targets) {
    inputs.resize(2 * 16);
    targets.resize(inputs.size());
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      inputs[i] = static_cast<std::int32_t>((i * 5 + 3 * micro_batch) % 64);
      targets[i] = static_cast<std::int32_t>((i * 11 + 7 * micro_batch + 1) % 64);
    }
  };
}

}  // namespace tandem::optim_test
