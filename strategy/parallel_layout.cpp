#include "strategy/parallel_layout.hpp"

#include <cassert>

namespace tandem::strategy {

ParallelLayout::ParallelLayout(int tp, int cp, int dp, int pp, int gpus_per_node)
    : tp_(tp), cp_(cp), dp_(dp), pp_(pp), gpus_per_node_(gpus_per_node) {
  assert(tp > 0 && cp > 0 && dp > 0 && pp > 0 && gpus_per_node > 0);
}

RankCoordinates ParallelLayout::coordinates(int rank) const {
  assert(rank >= 0 && rank < world_size());
  RankCoordinates c;
  c.tp = rank % tp_;
  rank /= tp_;
  c.cp = rank % cp_;
  rank /= cp_;
  c.dp = rank % dp_;
  c.pp = rank / dp_;
  return c;
}

int ParallelLayout::rank_of(const RankCoordinates& c) const {
  return c.tp + tp_ * (c.cp + cp_ * (c.dp + dp_ * c.pp));
}

std::vector<int> ParallelLayout::group_of(int rank, GroupKind kind) const {
  const RankCoordinates self = coordinates(rank);
  std::vector<int> group;
  auto add = [&](RankCoordinates c) { group.push_back(rank_of(c)); };
  switch (kind) {
    case GroupKind::None:
      group.push_back(rank);
      break;
    case GroupKind::Tensor:
      for (int t = 0; t < tp_; ++t) add({t, self.cp, self.dp, self.pp});
      break;
    case GroupKind::Context:
      for (int c = 0; c < cp_; ++c) add({self.tp, c, self.dp, self.pp});
      break;
    case GroupKind::Data:
      for (int d = 0; d < dp_; ++d) add({self.tp, self.cp, d, self.pp});
      break;
    case GroupKind::DataContext:
      for (int d = 0; d < dp_; ++d)
        for (int c = 0; c < cp_; ++c) add({self.tp, c, d, self.pp});
      break;
    case GroupKind::Pipeline:
      for (int p = 0; p < pp_; ++p) add({self.tp, self.cp, self.dp, p});
      break;
    case GroupKind::ModelParallel:
      for (int p = 0; p < pp_; ++p)
        for (int c = 0; c < cp_; ++c)
          for (int t = 0; t < tp_; ++t) add({t, c, self.dp, p});
      break;
    case GroupKind::World:
      for (int r = 0; r < world_size(); ++r) group.push_back(r);
      break;
    case GroupKind::EmbeddingTie:
      add({self.tp, self.cp, self.dp, 0});
      if (pp_ > 1) add({self.tp, self.cp, self.dp, pp_ - 1});
      break;
    case GroupKind::OuterGroup:
      for (int d = 0; d < dp_; ++d)
        if (outer_group_of_dp_.empty() ||
            outer_group_of_dp_[static_cast<std::size_t>(d)] == outer_group_of_dp_[static_cast<std::size_t>(self.dp)])
          add({self.tp, self.cp, d, self.pp});
      break;
  }
  return group;
}

std::vector<std::vector<int>> ParallelLayout::all_groups(GroupKind kind) const {
  std::vector<std::vector<int>> groups;
  std::vector<char> seen(static_cast<std::size_t>(world_size()), 0);
  for (int rank = 0; rank < world_size(); ++rank) {
    if (seen[static_cast<std::size_t>(rank)]) continue;
    if (kind == GroupKind::EmbeddingTie) {
      const RankCoordinates c = coordinates(rank);
      if (c.pp != 0) continue;
    }
    std::vector<int> group = group_of(rank, kind);
    for (int member : group) seen[static_cast<std::size_t>(member)] = 1;
    groups.push_back(std::move(group));
  }
  return groups;
}

}  // namespace tandem::strategy
