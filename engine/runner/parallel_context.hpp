#pragma once
// Where this process sits in the (tp, cp, dp, pp) grid and one communicator per group kind the
// program's collectives name (strategy::GroupKind), split from the world communicator with
// strategy::ParallelLayout's groups (Megatron order: tp fastest, then cp, dp, pp). A rank's index
// in each communicator is its index in ParallelLayout::group_of.
//
// make_parallel_context is collective over the world: every rank must call it.

#include <memory>

#include "comm/communicator.hpp"
#include "strategy/parallel_layout.hpp"

namespace tandem::engine {

struct ParallelContext {
  strategy::ParallelLayout layout;
  strategy::RankCoordinates coordinates;
  int rank = 0;
  comm::Communicator* world = nullptr;  // not owned
  std::unique_ptr<comm::Communicator> tensor, data, pipeline, model_parallel, world_copy, embedding_tie;

  // The communicator of a group kind (nullptr when this rank is not in such a group, e.g. the
  // embedding tie on a middle stage).
  comm::Communicator* group(strategy::GroupKind kind) const;
};

ParallelContext make_parallel_context(comm::Communicator& world, const strategy::ParallelLayout& layout);

}  // namespace tandem::engine
