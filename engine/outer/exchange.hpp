#pragma once
// The mean of a vector over the ranks of a communicator, started now and finished later (an
// outer synchronisation overlaps inner steps: Streaming DiLoCo's delay).
//
//   fp32 (quantization none): one all-reduce (average) of the values.
//   fp8 / int4: the values are cut into one chunk per rank (a multiple of the 256-value
//     quantization block); every rank encodes every chunk and sends chunk r to rank r
//     (all-to-all), rank r decodes the n versions of its chunk, sums them in fp32 in rank order
//     and divides by n, encodes that mean once more and all-gathers it; everyone decodes the
//     gathered chunks. The wire carries encoded bytes only, the reduction is fp32, and every rank
//     ends with the same values (the same encoded means).
// A communicator of one rank returns the values unchanged (nothing to exchange or quantize).
//
// bytes_sent() counts what this rank hands to the network, as the twin counts an all-reduce of
// S bytes: 2 (n-1)/n x S, with S the encoded size of the (padded) vector.

#include <cstdint>
#include <span>
#include <vector>

#include "comm/communicator.hpp"
#include "engine/outer/quantize.hpp"

namespace tandem::engine::outer {

class MeanExchange {
 public:
  MeanExchange(comm::Communicator& group, OuterQuantization quantization);
  ~MeanExchange();
  MeanExchange(const MeanExchange&) = delete;
  MeanExchange& operator=(const MeanExchange&) = delete;

  // Starts averaging `values` (copied; the caller may change them at once). Not while active().
  void start(std::span<const float> values);
  // Advances without blocking; true once the mean is ready.
  bool progress();
  // Blocks until the mean is ready and returns it (values.size() elements); valid until the next
  // start().
  std::span<const float> finish();
  bool active() const { return stage_ != Stage::Idle && stage_ != Stage::Done; }
  double bytes_sent() const { return bytes_sent_; }

 private:
  enum class Stage { Idle, Reducing, Gathering, Done };
  void advance();  // the current request completed: next stage
  void reduce_chunk();
  void decode_gathered();

  comm::Communicator* group_;
  OuterQuantization quantization_;
  Stage stage_ = Stage::Idle;
  std::size_t count_ = 0;      // values
  std::size_t chunk_ = 0;      // values per rank's chunk (quantized)
  std::size_t encoded_ = 0;    // bytes of one encoded chunk
  std::vector<float> result_;
  std::vector<std::uint8_t> send_, receive_, reduced_, gathered_;
  comm::RequestPtr request_;
  double bytes_sent_ = 0;
};

}  // namespace tandem::engine::outer
