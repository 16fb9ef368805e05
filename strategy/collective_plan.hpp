#pragma once
// Collective algorithms as plans of point-to-point phases. The twin turns each phase into
// concurrent flows on the simulated network (so contention and oversubscription show up);
// nothing here knows about links or time.
//
// A phase is a set of transfers that start together; the phase ends when the last finishes, and
// runs `repeat` times in a row (a ring's 2(n-1) identical steps are one phase repeated).
// `pipeline_hops` says the data streams through that many further hops after the first (a
// pipelined chain or tree): the phase then costs one more latency per hop, not a full transfer.
// `streams_into_next` says the phase and the next run at once as NCCL's tree does: it cuts the
// buffer into chunks and streams them through the intra-node chain, up the inter-node tree and
// back down, every stage working on a different chunk. Such a run of phases costs its links'
// summed bytes (the slowest link bounds it) plus the sum of the phases' latencies (the first
// chunk's trip through the whole pipeline), not the sum of the phases' transfer times. The first
// phase of such a run carries `tree_bus_bytes_per_rank`, the bytes per rank nccl-tests' bus
// bandwidth counts for it (2(n-1)/n S for an all-reduce): the profile's tree_bandwidth caps the
// run at that many bytes per rank over it.
//
// Sizes follow nccl-tests (S): all-reduce and broadcast S = the buffer, all-gather S = the
// gathered output, reduce-scatter S = the input, all-to-all S = each rank's send buffer,
// send-recv S = the message. Under ideal links every plan reaches busbw = link bandwidth with
// the nccl-tests factors: all-reduce 2(n-1)/n; reduce-scatter, all-gather, all-to-all (n-1)/n;
// broadcast 1.

#include <functional>
#include <vector>

#include "strategy/program.hpp"

namespace tandem::strategy {

struct Transfer {
  int source = 0;       // global rank
  int destination = 0;  // global rank
  double bytes = 0;
};

struct CollectivePhase {
  std::vector<Transfer> transfers;
  int repeat = 1;
  int pipeline_hops = 0;
  bool streams_into_next = false;
  double tree_bus_bytes_per_rank = 0;
  double reduce_bytes_per_rank = 0;  // bytes each receiving rank reduces (memory-side work)
};

struct CollectivePlan {
  CollectiveKind kind = CollectiveKind::AllReduce;
  CollectiveAlgorithm algorithm = CollectiveAlgorithm::Ring;
  std::vector<CollectivePhase> phases;
};

// `ranks` in group order; `node_of` maps a global rank to its node (hierarchical plans).
// Algorithm Auto is not a plan: callers choose (the twin simulates the candidates).
CollectivePlan plan_collective(CollectiveKind kind, CollectiveAlgorithm algorithm,
                               const std::vector<int>& ranks, double size_bytes,
                               const std::function<int(int)>& node_of,
                               SendRecvPeer peer = SendRecvPeer::Half);

// The algorithms worth trying for `kind` on this group (hierarchical only when the group spans
// several nodes with several ranks on each).
std::vector<CollectiveAlgorithm> candidate_algorithms(CollectiveKind kind,
                                                      const std::vector<int>& ranks,
                                                      const std::function<int(int)>& node_of);

// nccl-tests' bus-bandwidth factor for a collective over n ranks.
double bus_bandwidth_factor(CollectiveKind kind, int n);

// Time of a plan on an ideal network: every rank sends and receives at `bandwidth` bytes/s
// concurrently in each direction, `latency` per transfer, no contention beyond a rank's own
// link. The twin replaces this with simulated flows; tests use it as the reference model.
double ideal_plan_time(const CollectivePlan& plan, double bandwidth, double latency);

}  // namespace tandem::strategy
