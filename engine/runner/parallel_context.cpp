#include "engine/runner/parallel_context.hpp"

#include <algorithm>
#include <stdexcept>
#include <vector>

namespace tandem::engine {

using strategy::GroupKind;

comm::Communicator* ParallelContext::group(GroupKind kind) const {
  switch (kind) {
    case GroupKind::Tensor: return tensor.get();
    case GroupKind::Data:
    case GroupKind::DataContext: return data.get();
    case GroupKind::Pipeline: return pipeline.get();
    case GroupKind::ModelParallel: return model_parallel.get();
    case GroupKind::World: return world_copy.get();
    case GroupKind::EmbeddingTie: return embedding_tie.get();
    default: return nullptr;
  }
}

namespace {

std::unique_ptr<comm::Communicator> split_by(comm::Communicator& world, const strategy::ParallelLayout& layout,
                                             GroupKind kind, bool member) {
  const int rank = world.rank();
  if (!member) return world.split(comm::kNoGroup, 0);
  const std::vector<int> group = layout.group_of(rank, kind);
  const auto it = std::find(group.begin(), group.end(), rank);
  if (it == group.end()) throw std::logic_error("make_parallel_context: rank not in its own group");
  const int color = *std::min_element(group.begin(), group.end());
  return world.split(color, static_cast<int>(it - group.begin()));
}

}  // namespace

ParallelContext make_parallel_context(comm::Communicator& world, const strategy::ParallelLayout& layout) {
  if (world.size() != layout.world_size())
    throw std::invalid_argument("make_parallel_context: world of " + std::to_string(world.size()) +
                                " ranks for a layout of " + std::to_string(layout.world_size()));
  ParallelContext context;
  context.layout = layout;
  context.rank = world.rank();
  context.coordinates = layout.coordinates(context.rank);
  context.world = &world;
  context.tensor = split_by(world, layout, GroupKind::Tensor, true);
  context.data = split_by(world, layout, layout.cp() > 1 ? GroupKind::DataContext : GroupKind::Data, true);
  context.pipeline = split_by(world, layout, GroupKind::Pipeline, true);
  context.model_parallel = split_by(world, layout, GroupKind::ModelParallel, true);
  context.world_copy = split_by(world, layout, GroupKind::World, true);
  const bool tie_member =
      layout.pp() > 1 && (context.coordinates.pp == 0 || context.coordinates.pp == layout.pp() - 1);
  context.embedding_tie = split_by(world, layout, GroupKind::EmbeddingTie, tie_member);
  return context;
}

}  // namespace tandem::engine
