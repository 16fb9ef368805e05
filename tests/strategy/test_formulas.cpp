// Model formulas against the papers' closed forms and published numbers
// (shared/reference/PUBLISHED.md).
#include <gtest/gtest.h>

#include "strategy/model_formulas.hpp"
#include "strategy/scenario.hpp"

using namespace tandem::strategy;

namespace {

ModelSpec gpt(int layers, int hidden, int heads, int vocab = 51200, int seq = 2048) {
  ModelSpec m;
  m.layers = layers;
  m.hidden = hidden;
  m.heads = heads;
  m.kv_heads = heads;
  m.ffn_hidden = 4 * hidden;
  m.vocab = vocab;
  m.seq_len = seq;
  m.tied_embeddings = true;  // Megatron's GPT ties the output head to the embedding
  return m;
}

}  // namespace

TEST(Formulas, ParameterCountMatchesNarayananClosedForm) {
  for (const auto& m : {gpt(96, 12288, 96), gpt(24, 2304, 24), gpt(36, 4096, 32), gpt(48, 8192, 64),
                        gpt(96, 16384, 128), gpt(2, 64, 4, 256, 64)}) {
    const double formula = narayanan_parameter_count(m.layers, m.hidden, m.vocab, m.seq_len);
    // The closed form omits the final LayerNorm (2h).
    EXPECT_DOUBLE_EQ(static_cast<double>(parameter_count(m)), formula + 2.0 * m.hidden);
  }
}

TEST(Formulas, PublishedParameterCounts) {
  // Narayanan et al. Table 1 rounds to 0.1B.
  EXPECT_NEAR(parameter_count(gpt(24, 2304, 24)) / 1e9, 1.7, 0.05);
  EXPECT_NEAR(parameter_count(gpt(36, 4096, 32)) / 1e9, 7.5, 0.05);
  EXPECT_NEAR(parameter_count(gpt(48, 8192, 64)) / 1e9, 39.1, 0.05);
  EXPECT_NEAR(parameter_count(gpt(96, 16384, 128)) / 1e9, 310.1, 0.05);
  EXPECT_NEAR(parameter_count(gpt(96, 12288, 96)) / 1e9, 174.6, 0.05);
}

TEST(Formulas, GqaAndSwigluParameters) {
  ModelSpec m;  // Llama 3 8B
  m.layers = 32;
  m.hidden = 4096;
  m.heads = 32;
  m.kv_heads = 8;
  m.ffn_hidden = 14336;
  m.vocab = 128256;
  m.seq_len = 8192;
  m.activation = Activation::SwiGlu;
  m.norm = Norm::RmsNorm;
  m.position = Position::Rope;
  // Per layer: q 4096^2, k and v 2 * 4096*1024, o 4096^2, MLP 3 * 4096*14336, two RMSNorm gains.
  const double per_layer = 4096.0 * 4096 * 2 + 2 * 4096.0 * 1024 + 3 * 4096.0 * 14336 + 2 * 4096;
  const double expected = 32 * per_layer + 2 * 128256.0 * 4096 + 4096;
  EXPECT_DOUBLE_EQ(static_cast<double>(parameter_count(m)), expected);
  EXPECT_NEAR(expected / 1e9, 8.03, 0.01);  // Meta's reported 8.03B
}

TEST(Formulas, ModelFlopsMatchTheMegatronFormula) {
  for (const auto& m : {gpt(96, 12288, 96), gpt(48, 6144, 64), gpt(2, 64, 4, 256, 64)}) {
    for (double batch : {1.0, 64.0, 1536.0}) {
      const double formula = megatron_model_flops(batch, m.seq_len, m.layers, m.hidden, m.vocab);
      EXPECT_NEAR(model_flops_per_step(m, batch) / formula, 1.0, 1e-12);
    }
  }
  // Full recompute adds one forward of the layers: 4x layer forward + 3x head = Narayanan's F.
  const ModelSpec m = gpt(96, 12288, 96);
  const double full = 4 * m.layers * layer_forward_flops(m, 1536) + 3 * head_forward_flops(m, 1536);
  EXPECT_NEAR(full / narayanan_flops_full_recompute(1536, 2048, 96, 12288, 51200), 1.0, 1e-12);
}

TEST(Formulas, ActivationBytesMatchKorthikantiClosedForms) {
  ModelSpec m = gpt(96, 12288, 96);
  m.dropout = 0.1;
  const double s = 2048, b = 1, h = 12288, a = 96;
  struct Case {
    int t;
    bool sp;
    Recompute recompute;
  };
  for (const Case c : {Case{1, false, Recompute::None}, Case{8, false, Recompute::None}, Case{8, true, Recompute::None},
                       Case{8, false, Recompute::Selective}, Case{8, true, Recompute::Selective},
                       Case{1, false, Recompute::Full}, Case{8, false, Recompute::Full}}) {
    ActivationOptions o;
    o.tp = c.t;
    o.sequence_parallel = c.sp;
    o.recompute = c.recompute;
    o.bytes_per_element = 2;
    for (double micro_batch : {1.0, 4.0}) {
      const double ours = activation_bytes_per_layer(m, micro_batch, o);
      const double paper = korthikanti_activation_bytes(s, micro_batch * b, h, a, c.t, c.sp, c.recompute);
      EXPECT_DOUBLE_EQ(ours, paper) << "t=" << c.t << " sp=" << c.sp << " recompute=" << static_cast<int>(c.recompute);
    }
  }
  // The paper's headline: 175B, t=8, no recompute, sbh(10 + 24/t + 5as/(ht)) per layer.
  EXPECT_DOUBLE_EQ(korthikanti_activation_bytes(2048, 1, 12288, 96, 8, false, Recompute::None),
                   2048.0 * 12288 * (10 + 3 + 5 * 96 * 2048.0 / (12288 * 8)));
}

TEST(Formulas, VocabIsPaddedToTensorParallelShards) {
  ModelSpec m = gpt(2, 64, 4, 50257, 64);
  EXPECT_EQ(padded_vocab(m, 1), 50257);
  EXPECT_EQ(padded_vocab(m, 2), 50258);
  EXPECT_EQ(padded_vocab(m, 8), 50264);
  for (const ParameterTensorSpec& tensor : parameter_tensors(m, 4)) {
    if (tensor.tp_shard_dim >= 0) {
      EXPECT_EQ(local_elements(tensor, 4) * 4, tensor.elements()) << tensor.name;
    }
  }
}
