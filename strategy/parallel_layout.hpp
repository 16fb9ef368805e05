#pragma once
// Where each global rank sits in the (tp, cp, dp, pp) grid and which ranks form its groups.
//
// Rank order follows Megatron-LM: tensor-parallel fastest, then context, then data, then
// pipeline: rank = tp + TP*(cp + CP*(dp + DP*pp)). With gpus_per_node a multiple of tp the
// tensor-parallel groups stay inside a node (on NVLink).

#include <cstdint>
#include <vector>

namespace tandem::strategy {

// Which of the rank's groups a collective spans (resolved with ParallelLayout::group_of).
enum class GroupKind : std::uint8_t {
  None,
  Tensor,        // tp ranks of one (pp, dp, cp) position
  Context,       // cp ranks
  Data,          // dp ranks (gradient reduction; with cp > 1 the group is DataContext)
  DataContext,   // dp x cp ranks: where gradients are reduced when cp > 1
  Pipeline,      // pp ranks of one (tp, dp, cp) position
  ModelParallel, // tp x pp x cp ranks of one replica (gradient-norm reduction)
  World,
  EmbeddingTie,  // first and last pipeline stage (tied embeddings with pp > 1)
  OuterGroup,    // NoLoCo: the dp ranks of one (tp, cp, pp) position whose workers share an outer
                 // group (set_outer_groups; all of Data until set)
};

struct RankCoordinates {
  int tp = 0;
  int cp = 0;
  int dp = 0;
  int pp = 0;
};

class ParallelLayout {
 public:
  ParallelLayout() = default;
  ParallelLayout(int tp, int cp, int dp, int pp, int gpus_per_node);

  int tp() const { return tp_; }
  int cp() const { return cp_; }
  int dp() const { return dp_; }
  int pp() const { return pp_; }
  int world_size() const { return tp_ * cp_ * dp_ * pp_; }
  int gpus_per_node() const { return gpus_per_node_; }

  RankCoordinates coordinates(int rank) const;
  int rank_of(const RankCoordinates& coordinates) const;
  int node_of(int rank) const { return rank / gpus_per_node_; }
  int local_rank(int rank) const { return rank % gpus_per_node_; }

  // The ranks of `rank`'s group of the given kind, in group order (the rank's index in the
  // returned list is its rank within the group).
  std::vector<int> group_of(int rank, GroupKind kind) const;
  // Every group of the given kind, each once (e.g. all tensor-parallel groups of the cluster).
  std::vector<std::vector<int>> all_groups(GroupKind kind) const;

  // NoLoCo: the outer group id of every data-parallel index (strategy::noloco_groups); the
  // program carries one outer step's grouping, the engine regroups at every outer step.
  void set_outer_groups(std::vector<int> group_of_worker) { outer_group_of_dp_ = std::move(group_of_worker); }
  const std::vector<int>& outer_groups() const { return outer_group_of_dp_; }

 private:
  int tp_ = 1, cp_ = 1, dp_ = 1, pp_ = 1, gpus_per_node_ = 1;
  std::vector<int> outer_group_of_dp_;
};

}  // namespace tandem::strategy
