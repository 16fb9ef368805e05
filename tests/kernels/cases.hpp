#pragma once
// Test cases (shapes) shared by the CPU and the CUDA kernel suites: adding an op or a shape here
// tests it on every backend. Shapes cover the edge cases: M or N = 1, non-square, T = 1, GQA with
// Hkv < Hq and Hkv = Hq, sequences longer than one 64-row attention block, padded vocabularies.

#include <cstdint>
#include <string>
#include <vector>

namespace tandem::kernels::cases {

struct MatmulCase {
  int M, K, N;
  bool bias;
};
inline const std::vector<MatmulCase> kMatmul = {
    {1, 1, 1, true},    {1, 7, 5, false},  {6, 1, 4, true},   {5, 8, 1, true},
    {17, 33, 9, true},  {9, 17, 33, false}, {64, 96, 80, true}, {3, 130, 70, true},
    // Large enough that the GEMMs are split into per-thread column blocks (uneven last block).
    {150, 300, 40, true}, {7, 20, 3100, false}, {200, 520, 70, true},
    {16, 130, 4500, true},
};

struct AttentionCase {
  int B, T, Hq, Hkv, D;
};
// Small enough for finite differences on every input.
inline const std::vector<AttentionCase> kAttention = {
    {1, 1, 1, 1, 4},  // T = 1
    {2, 5, 2, 2, 4},  // Hkv = Hq
    {2, 7, 4, 2, 3},  // GQA, odd D
    {1, 9, 4, 1, 2},  // GQA with a single kv head (B·Hkv < threads)
    {2, 6, 3, 1, 4},  // GQA, B·Hkv = 2
    {1, 70, 2, 1, 4}, // crosses the 64-row block boundary
};
// Forward-only (checked against the naive reference, not finite differences): longer sequences.
inline const std::vector<AttentionCase> kAttentionLong = {
    {2, 130, 4, 2, 16},
    {1, 200, 2, 2, 32},
};

struct NormCase {
  int M, C;
};
inline const std::vector<NormCase> kNorm = {{1, 1}, {1, 8}, {5, 16}, {3, 33}, {40, 64}};

struct SwigluCase {
  int M, F;
};
inline const std::vector<SwigluCase> kSwiglu = {{1, 1}, {3, 5}, {8, 33}};

struct RopeCase {
  int B, T, Hq, Hkv, D;
  double theta;
  int position_offset;
};
inline const std::vector<RopeCase> kRope = {
    {1, 1, 1, 1, 2, 10000.0, 0},
    {2, 5, 2, 2, 8, 10000.0, 0},
    {2, 4, 4, 2, 6, 500000.0, 7},
    {1, 33, 2, 1, 16, 10000.0, 100},
};

struct EmbeddingCase {
  int B, T, C, V;
  bool positions;
};
inline const std::vector<EmbeddingCase> kEmbedding = {
    {1, 1, 1, 1, true}, {2, 5, 8, 11, true}, {3, 4, 33, 7, false}, {2, 16, 20, 50, true}};

struct CrossEntropyCase {
  int M, V, valid_vocab;
  bool ignore_some;  // some rows have target −1
};
inline const std::vector<CrossEntropyCase> kCrossEntropy = {
    {1, 1, 1, false}, {1, 7, 7, false}, {6, 10, 8, true}, {5, 37, 37, false}, {9, 64, 50, true}};

// Vocabulary shards (start, size) covering [0, V) for the vocab-parallel tests.
struct ShardedCrossEntropyCase {
  int M, V, valid_vocab;
  std::vector<int> shard_sizes;
};
inline const std::vector<ShardedCrossEntropyCase> kShardedCrossEntropy = {
    {5, 12, 12, {6, 6}},
    {7, 12, 10, {4, 4, 4}},       // the last shard is half padding
    {4, 15, 9, {5, 5, 5}},        // the last shard is all padding
    {3, 11, 11, {1, 7, 3}},       // uneven shards
};

}  // namespace tandem::kernels::cases
