#include "engine/outer/exchange.hpp"

#include <algorithm>
#include <stdexcept>

namespace tandem::engine::outer {

MeanExchange::MeanExchange(comm::Communicator& group, OuterQuantization quantization)
    : group_(&group), quantization_(quantization) {}

MeanExchange::~MeanExchange() {
  // Never free a buffer under a transfer in flight.
  try {
    if (request_) request_->wait();
  } catch (...) {
  }
}

void MeanExchange::start(std::span<const float> values) {
  if (active()) throw std::logic_error("outer exchange: start() while an exchange is in flight");
  count_ = values.size();
  result_.assign(values.begin(), values.end());
  const std::size_t n = static_cast<std::size_t>(group_->size());
  if (n == 1) {
    stage_ = Stage::Done;
    return;
  }
  if (quantization_ == OuterQuantization::None) {
    request_ = group_->all_reduce_async(result_.data(), count_, comm::DataType::Float32, comm::ReduceOp::Average);
    bytes_sent_ += 2.0 * static_cast<double>(n - 1) / static_cast<double>(n) * 4.0 * static_cast<double>(count_);
    stage_ = Stage::Reducing;
    return;
  }
  const std::size_t block = static_cast<std::size_t>(strategy::kQuantizationBlock);
  chunk_ = std::max<std::size_t>(1, (count_ + n - 1) / n);
  chunk_ = (chunk_ + block - 1) / block * block;
  encoded_ = encoded_size(chunk_, quantization_);
  result_.resize(chunk_ * n, 0.0f);  // zero padding
  send_.assign(encoded_ * n, 0);
  receive_.assign(encoded_ * n, 0);
  for (std::size_t r = 0; r < n; ++r)
    encode(std::span<const float>(result_.data() + r * chunk_, chunk_), quantization_,
           std::span<std::uint8_t>(send_.data() + r * encoded_, encoded_));
  request_ = group_->all_to_all_async(send_.data(), receive_.data(), encoded_, comm::DataType::UInt8);
  // All-to-all and all-gather of n encoded chunks: (n - 1) chunks sent in each.
  bytes_sent_ += 2.0 * static_cast<double>(n - 1) * static_cast<double>(encoded_);
  stage_ = Stage::Reducing;
}

void MeanExchange::reduce_chunk() {
  const std::size_t n = static_cast<std::size_t>(group_->size());
  std::vector<float> sum(chunk_, 0.0f), part(chunk_);
  for (std::size_t r = 0; r < n; ++r) {
    decode(std::span<const std::uint8_t>(receive_.data() + r * encoded_, encoded_), quantization_, part);
    for (std::size_t i = 0; i < chunk_; ++i) sum[i] += part[i];
  }
  const float inverse = 1.0f / static_cast<float>(n);
  for (float& value : sum) value *= inverse;
  reduced_.assign(encoded_, 0);
  encode(sum, quantization_, reduced_);
  gathered_.assign(encoded_ * n, 0);
  request_ = group_->all_gather_async(reduced_.data(), gathered_.data(), encoded_, comm::DataType::UInt8);
  stage_ = Stage::Gathering;
}

void MeanExchange::decode_gathered() {
  const std::size_t n = static_cast<std::size_t>(group_->size());
  for (std::size_t r = 0; r < n; ++r)
    decode(std::span<const std::uint8_t>(gathered_.data() + r * encoded_, encoded_), quantization_,
           std::span<float>(result_.data() + r * chunk_, chunk_));
  result_.resize(count_);
  stage_ = Stage::Done;
}

void MeanExchange::advance() {
  request_.reset();
  if (stage_ == Stage::Reducing && quantization_ != OuterQuantization::None)
    reduce_chunk();
  else if (stage_ == Stage::Gathering)
    decode_gathered();
  else
    stage_ = Stage::Done;
}

bool MeanExchange::progress() {
  while (active() && request_->test()) advance();
  return stage_ == Stage::Done;
}

std::span<const float> MeanExchange::finish() {
  if (stage_ == Stage::Idle) throw std::logic_error("outer exchange: finish() without start()");
  while (active()) {
    request_->wait();
    advance();
  }
  return std::span<const float>(result_.data(), count_);
}

}  // namespace tandem::engine::outer
