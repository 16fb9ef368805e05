#include <gtest/gtest.h>

#include "kernels/cpu/embedding.hpp"
#include "tests/kernels/cases.hpp"
#include "tests/kernels/reference.hpp"
#include "tests/kernels/test_support.hpp"

namespace tandem::kernels {
namespace {

using namespace testing;  // NOLINT
using cases::EmbeddingCase;

std::string describe(const EmbeddingCase& c) {
  return "B=" + std::to_string(c.B) + " T=" + std::to_string(c.T) + " C=" + std::to_string(c.C) +
         " V=" + std::to_string(c.V) + (c.positions ? " +positions" : "");
}

// Splits [0, V) into up to three shards.
std::vector<std::pair<int, int>> shards_of(int V) {
  if (V < 3) return {{0, V}};
  const int a = V / 3, b = V / 2;
  return {{0, a}, {a, b - a}, {b, V - b}};
}

TEST(Embedding, ForwardMatchesReferenceFullAndSharded) {
  for (const auto& c : cases::kEmbedding) {
    SCOPED_TRACE(describe(c));
    const std::size_t n = static_cast<std::size_t>(c.B) * c.T * c.C;
    const auto tokens = random_tokens(static_cast<std::size_t>(c.B) * c.T, 0, c.V, 171);
    const Vec wte = random_vector(static_cast<std::size_t>(c.V) * c.C, 172);
    const Vec wpe = c.positions ? random_vector(static_cast<std::size_t>(c.T) * c.C, 173) : Vec{};
    const Vec expected = reference::embedding_forward(tokens, wte, wpe, c.B, c.T, c.C);
    std::vector<float> out(n, 9.0f);
    const auto wte_f = cast<float>(wte), wpe_f = cast<float>(wpe);
    cpu::embedding_forward<float>(out.data(), tokens.data(), wte_f.data(),
                                  c.positions ? wpe_f.data() : nullptr, c.B, c.T, c.C, 0, c.V);
    EXPECT_TRUE(all_close(out, expected, 0.0, 1e-6));

    // Vocab-parallel: each shard holds its rows; positions on the first shard only; the sum of
    // the partial outputs (the all-reduce) equals the full embedding.
    Vec total(n, 0.0);
    bool first = true;
    for (const auto& [start, size] : shards_of(c.V)) {
      const Vec shard(wte.begin() + static_cast<std::ptrdiff_t>(start) * c.C,
                      wte.begin() + static_cast<std::ptrdiff_t>(start + size) * c.C);
      Vec part(n, 9.0);
      cpu::embedding_forward<double>(part.data(), tokens.data(), shard.data(),
                                     (c.positions && first) ? wpe.data() : nullptr, c.B, c.T,
                                     c.C, start, size);
      for (std::size_t i = 0; i < n; ++i) total[i] += part[i];
      first = false;
    }
    EXPECT_TRUE(all_close(total, expected, 0.0, 1e-12));
  }
}

TEST(Embedding, PositionOffsetReadsLaterPositions) {
  const int B = 2, T = 3, C = 4, V = 5, offset = 6;
  const auto tokens = random_tokens(B * T, 0, V, 181);
  const Vec wte = random_vector(V * C, 182), wpe = random_vector((offset + T) * C, 183);
  const Vec shifted(wpe.begin() + offset * C, wpe.end());
  const Vec expected = reference::embedding_forward(tokens, wte, shifted, B, T, C);
  Vec out(B * T * C);
  cpu::embedding_forward<double>(out.data(), tokens.data(), wte.data(), wpe.data(), B, T, C, 0, V,
                                 offset);
  EXPECT_TRUE(all_close(out, expected, 0.0, 1e-12));
}

TEST(Embedding, BackwardScatterAddsIntoTablesFullAndSharded) {
  for (const auto& c : cases::kEmbedding) {
    SCOPED_TRACE(describe(c));
    // Few distinct ids: repeated tokens must add up, not overwrite.
    const auto tokens = random_tokens(static_cast<std::size_t>(c.B) * c.T, 0, c.V, 191);
    const Vec dout = random_vector(static_cast<std::size_t>(c.B) * c.T * c.C, 192);
    const Vec wte_grad0 = random_vector(static_cast<std::size_t>(c.V) * c.C, 193);
    const Vec wpe_grad0 = random_vector(static_cast<std::size_t>(c.T) * c.C, 194);
    Vec wte_expected = wte_grad0, wpe_expected = wpe_grad0;
    for (int b = 0; b < c.B; ++b)
      for (int t = 0; t < c.T; ++t)
        for (int ch = 0; ch < c.C; ++ch) {
          const double g = dout[(static_cast<std::size_t>(b) * c.T + t) * c.C + ch];
          wte_expected[static_cast<std::size_t>(tokens[b * c.T + t]) * c.C + ch] += g;
          wpe_expected[static_cast<std::size_t>(t) * c.C + ch] += g;
        }
    auto wte_grad = cast<float>(wte_grad0), wpe_grad = cast<float>(wpe_grad0);
    const auto dout_f = cast<float>(dout);
    cpu::embedding_backward<float>(wte_grad.data(), c.positions ? wpe_grad.data() : nullptr,
                                   dout_f.data(), tokens.data(), c.B, c.T, c.C, 0, c.V);
    EXPECT_TRUE(all_close(wte_grad, wte_expected, 1e-6, 1e-5));
    EXPECT_TRUE(all_close(wpe_grad, c.positions ? wpe_expected : wpe_grad0, 1e-6, 1e-5));

    // Shards: each shard's gradient is its slice of the full gradient.
    Vec concatenated;
    for (const auto& [start, size] : shards_of(c.V)) {
      Vec shard(wte_grad0.begin() + static_cast<std::ptrdiff_t>(start) * c.C,
                wte_grad0.begin() + static_cast<std::ptrdiff_t>(start + size) * c.C);
      cpu::embedding_backward<double>(shard.data(), nullptr, dout.data(), tokens.data(), c.B, c.T,
                                      c.C, start, size);
      concatenated.insert(concatenated.end(), shard.begin(), shard.end());
    }
    EXPECT_TRUE(all_close(concatenated, wte_expected, 1e-12, 1e-12));
  }
}

// The embedding is linear in its tables, so finite differences are exact up to rounding; this
// checks the backward is the adjoint of the forward (including positions and a shard offset).
TEST(Embedding, BackwardMatchesFiniteDifferencesInDouble) {
  const int B = 2, T = 4, C = 3, V = 6, start = 2, size = 3;
  const auto tokens = random_tokens(B * T, 0, V, 201);
  const Vec wte = random_vector(size * C, 202), wpe = random_vector(T * C, 203);
  const Vec projection = random_vector(B * T * C, 204);
  auto loss = [&](const Vec& e, const Vec& p) {
    Vec out(B * T * C);
    cpu::embedding_forward<double>(out.data(), tokens.data(), e.data(), p.data(), B, T, C, start,
                                   size);
    return dot(out, projection);
  };
  Vec dwte(wte.size(), 0.0), dwpe(wpe.size(), 0.0);
  cpu::embedding_backward<double>(dwte.data(), dwpe.data(), projection.data(), tokens.data(), B,
                                  T, C, start, size);
  EXPECT_TRUE(all_close(dwte, numeric_gradient([&](const Vec& x) { return loss(x, wpe); }, wte),
                        kGradRtol, kGradAtol));
  EXPECT_TRUE(all_close(dwpe, numeric_gradient([&](const Vec& x) { return loss(wte, x); }, wpe),
                        kGradRtol, kGradAtol));
}

}  // namespace
}  // namespace tandem::kernels
