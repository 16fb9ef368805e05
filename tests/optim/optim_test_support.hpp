#pragma once
// Shared helpers of the optimizer tests: host tensors, seeded random fills, float64 comparisons,
// and an in-process "tensor group" of N ranks running as threads (all_gather only), so
// tensor-parallel MuonBP can be checked without MPI.

#include <gtest/gtest.h>

#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "comm/communicator.hpp"
#include "engine/optim/optimizer.hpp"
#include "strategy/optimizer_catalog.hpp"

namespace tandem::optim_test {

using engine::optim::ParameterRole;
using engine::optim::ParameterTensor;
using engine::optim::StepContext;
using strategy::ResolvedOptimizer;

inline ResolvedOptimizer resolve(const std::string& name,
                                 const std::map<std::string, std::string>& args = {},
                                 std::uint64_t seed = 1234) {
  return strategy::resolve_optimizer(name, args, std::nullopt, std::nullopt, seed);
}

inline void fill_normal(std::vector<float>& values, std::uint64_t seed, double stddev = 1.0) {
  std::mt19937_64 generator(seed);
  std::normal_distribution<double> normal(0.0, stddev);
  for (float& x : values) x = static_cast<float>(normal(generator));
}

inline std::vector<double> to_double(const std::vector<float>& values) {
  return {values.begin(), values.end()};
}

struct HostTensor {
  std::string name;
  std::int64_t rows = 0, cols = 1;
  ParameterRole role = ParameterRole::HiddenMatrix;
  bool attention_or_mlp = false;
  int shard_dim = -1, shard_index = 0, shard_count = 1;
  int split_dim = 0;
  std::vector<std::int64_t> split_sections;
  std::vector<float> value, grad;

  HostTensor() = default;
  HostTensor(std::string name_, std::int64_t rows_, std::int64_t cols_, ParameterRole role_,
             bool attention_or_mlp_ = false, std::uint64_t seed = 7)
      : name(std::move(name_)), rows(rows_), cols(cols_), role(role_),
        attention_or_mlp(attention_or_mlp_),
        value(static_cast<std::size_t>(rows_ * cols_)),
        grad(static_cast<std::size_t>(rows_ * cols_), 0.0f) {
    fill_normal(value, seed, 0.5);
  }

  ParameterTensor view() {
    ParameterTensor p;
    p.name = name;
    p.value = value.data();
    p.grad = grad.data();
    p.rows = rows;
    p.cols = cols;
    p.role = role;
    p.attention_or_mlp = attention_or_mlp;
    p.shard_dim = shard_dim;
    p.shard_index = shard_index;
    p.shard_count = shard_count;
    p.split_dim = split_dim;
    p.split_sections = split_sections;
    return p;
  }
};

inline std::vector<ParameterTensor> views(std::vector<HostTensor>& tensors) {
  std::vector<ParameterTensor> result;
  for (HostTensor& t : tensors) result.push_back(t.view());
  return result;
}

// |actual - expected| <= absolute + relative*|expected| for every element.
inline void expect_close(const std::vector<float>& actual, const std::vector<double>& expected,
                         double relative, double absolute, const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  std::size_t failures = 0;
  for (std::size_t i = 0; i < actual.size(); ++i) {
    const double error = std::fabs(static_cast<double>(actual[i]) - expected[i]);
    if (!(error <= absolute + relative * std::fabs(expected[i]))) {
      if (++failures <= 5) {
        ADD_FAILURE() << what << " [" << i << "]: got " << actual[i] << ", expected "
                      << expected[i] << " (error " << error << ")";
      }
    }
  }
  EXPECT_EQ(failures, 0u) << what << ": " << failures << " of " << actual.size()
                          << " elements off";
}

// ------------------------------------------------------------------------------------------
// N ranks in N threads of one process; all_gather is the only collective the optimizers use.
// ------------------------------------------------------------------------------------------
struct ThreadGroupShared {
  explicit ThreadGroupShared(int size) : ranks(size), inputs(static_cast<std::size_t>(size)), sync(size) {}
  int ranks;
  std::vector<const void*> inputs;
  std::barrier<> sync;
};

class ThreadGroupCommunicator final : public comm::Communicator {
 public:
  ThreadGroupCommunicator(std::shared_ptr<ThreadGroupShared> shared, int rank)
      : shared_(std::move(shared)), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return shared_->ranks; }
  std::string backend() const override { return "test-threads"; }
  void all_gather(const void* input, void* output, std::size_t count, comm::DataType type) override {
    const std::size_t bytes = count * (type == comm::DataType::Float64 || type == comm::DataType::Int64 ? 8
                                       : type == comm::DataType::UInt8 ? 1 : 4);
    shared_->inputs[static_cast<std::size_t>(rank_)] = input;
    shared_->sync.arrive_and_wait();
    for (int r = 0; r < shared_->ranks; ++r) {
      std::memcpy(static_cast<char*>(output) + static_cast<std::size_t>(r) * bytes,
                  shared_->inputs[static_cast<std::size_t>(r)], bytes);
    }
    gathers += 1;
    shared_->sync.arrive_and_wait();
  }
  [[noreturn]] static void unsupported(const char* what) {
    throw comm::CommError(std::string("test thread group: ") + what + " is not supported");
  }
  void all_reduce(void*, std::size_t, comm::DataType, comm::ReduceOp) override { unsupported("all_reduce"); }
  comm::RequestPtr all_reduce_async(void*, std::size_t, comm::DataType, comm::ReduceOp) override {
    unsupported("all_reduce_async");
  }
  void reduce_scatter(const void*, void*, std::size_t, comm::DataType, comm::ReduceOp) override {
    unsupported("reduce_scatter");
  }
  comm::RequestPtr reduce_scatter_async(const void*, void*, std::size_t, comm::DataType,
                                        comm::ReduceOp) override {
    unsupported("reduce_scatter_async");
  }
  comm::RequestPtr all_gather_async(const void*, void*, std::size_t, comm::DataType) override {
    unsupported("all_gather_async");
  }
  void broadcast(void*, std::size_t, comm::DataType, int) override { unsupported("broadcast"); }
  void send(const void*, std::size_t, comm::DataType, int, int) override { unsupported("send"); }
  void recv(void*, std::size_t, comm::DataType, int, int) override { unsupported("recv"); }
  comm::RequestPtr send_async(const void*, std::size_t, comm::DataType, int, int) override {
    unsupported("send_async");
  }
  comm::RequestPtr recv_async(void*, std::size_t, comm::DataType, int, int) override {
    unsupported("recv_async");
  }
  void barrier() override { shared_->sync.arrive_and_wait(); }
  std::unique_ptr<comm::Communicator> split(int, int) override { unsupported("split"); }

  int gathers = 0;

 private:
  std::shared_ptr<ThreadGroupShared> shared_;
  int rank_;
};

}  // namespace tandem::optim_test
