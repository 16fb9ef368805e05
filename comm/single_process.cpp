// The world-of-one backend: collectives are identities or copies, and messages to self go
// through a queue. Thread-safe: several threads may share one communicator.

#include <cstring>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "comm/checks.hpp"
#include "comm/communicator.hpp"

namespace tandem::comm {
namespace {

using detail::ErrorContext;

void copy_bytes(void* output, const void* input, std::size_t bytes) {
  if (bytes != 0 && output != input) {
    std::memcpy(output, input, bytes);
  }
}

std::string describe(std::size_t count, DataType type) {
  return std::to_string(count) + " " + std::string(to_string(type));
}

struct QueuedMessage {
  std::size_t count = 0;
  DataType type = DataType::UInt8;
  std::vector<unsigned char> bytes;
};

// A recv_async that has not been matched by a send yet.
struct PostedReceive {
  void* buffer = nullptr;
  std::size_t count = 0;
  DataType type = DataType::UInt8;
  int tag = 0;
  bool done = false;
  std::string error;  // set when the matching send did not fit
};

// Messages to self, per tag in send order, and receives waiting for them in post order.
struct SelfChannel {
  std::mutex mutex;
  std::map<int, std::deque<QueuedMessage>> queued;
  std::list<std::shared_ptr<PostedReceive>> posted;
};

class CompletedRequest final : public Request {
 public:
  void wait() override {}
  bool test() override { return true; }
};

class SelfReceiveRequest final : public Request {
 public:
  SelfReceiveRequest(std::shared_ptr<SelfChannel> channel, std::shared_ptr<PostedReceive> receive,
                     ErrorContext context)
      : channel_(std::move(channel)), receive_(std::move(receive)), context_(context) {}

  ~SelfReceiveRequest() override {
    // Cancel an unmatched receive: no send can write into its buffer afterwards.
    std::lock_guard lock(channel_->mutex);
    channel_->posted.remove(receive_);
  }

  bool test() override {
    std::lock_guard lock(channel_->mutex);
    if (!receive_->error.empty()) {
      context_.fail(detail::recv_name(0, receive_->tag), receive_->error);
    }
    return receive_->done;
  }

  void wait() override {
    if (!test()) {
      context_.fail(detail::recv_name(0, receive_->tag),
                    "no matching send to self has been posted, and in a world of one nothing "
                    "else can send it, so this wait would never complete");
    }
  }

 private:
  std::shared_ptr<SelfChannel> channel_;
  std::shared_ptr<PostedReceive> receive_;
  ErrorContext context_;
};

class SingleProcessCommunicator final : public Communicator {
 public:
  explicit SingleProcessCommunicator(double timeout_seconds)
      : channel_(std::make_shared<SelfChannel>()), timeout_seconds_(timeout_seconds) {}

  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "single-process"; }

  void all_reduce(void* buffer, std::size_t count, DataType type, ReduceOp op) override {
    detail::check_reduction(context_, detail::kAllReduce, type, op);
    detail::check_buffer(context_, detail::kAllReduce, buffer, count, "buffer");
    // The reduction (sum, average, max or min) of one contribution is that contribution.
  }

  RequestPtr all_reduce_async(void* buffer, std::size_t count, DataType type,
                              ReduceOp op) override {
    all_reduce(buffer, count, type, op);
    return std::make_unique<CompletedRequest>();
  }

  void reduce_scatter(const void* input, void* output, std::size_t count, DataType type,
                      ReduceOp op) override {
    const auto operation = detail::kReduceScatter;
    detail::check_reduction(context_, operation, type, op);
    detail::check_buffer(context_, operation, input, count, "input");
    detail::check_buffer(context_, operation, output, count, "output");
    const std::size_t bytes = count * size_of(type);
    detail::check_disjoint(context_, operation, input, bytes, output, bytes);
    copy_bytes(output, input, bytes);
  }

  RequestPtr reduce_scatter_async(const void* input, void* output, std::size_t count,
                                  DataType type, ReduceOp op) override {
    reduce_scatter(input, output, count, type, op);
    return std::make_unique<CompletedRequest>();
  }

  void all_gather(const void* input, void* output, std::size_t count, DataType type) override {
    const auto operation = detail::kAllGather;
    detail::check_buffer(context_, operation, input, count, "input");
    detail::check_buffer(context_, operation, output, count, "output");
    const std::size_t bytes = count * size_of(type);
    if (detail::is_in_place_all_gather(input, output, count, type, 0)) {
      return;
    }
    detail::check_disjoint(context_, operation, input, bytes, output, bytes);
    copy_bytes(output, input, bytes);
  }

  RequestPtr all_gather_async(const void* input, void* output, std::size_t count,
                              DataType type) override {
    all_gather(input, output, count, type);
    return std::make_unique<CompletedRequest>();
  }

  void all_to_all(const void* input, void* output, std::size_t count, DataType type) override {
    const auto operation = detail::kAllToAll;
    detail::check_buffer(context_, operation, input, count, "input");
    detail::check_buffer(context_, operation, output, count, "output");
    const std::size_t bytes = count * size_of(type);
    detail::check_disjoint(context_, operation, input, bytes, output, bytes);
    copy_bytes(output, input, bytes);
  }

  RequestPtr all_to_all_async(const void* input, void* output, std::size_t count,
                              DataType type) override {
    all_to_all(input, output, count, type);
    return std::make_unique<CompletedRequest>();
  }

  void broadcast(void* buffer, std::size_t count, DataType type, int root) override {
    size_of(type);
    detail::check_rank(context_, detail::kBroadcast, root, "root");
    detail::check_buffer(context_, detail::kBroadcast, buffer, count, "buffer");
  }

  void send(const void* buffer, std::size_t count, DataType type, int peer, int tag) override {
    const std::string operation = detail::send_name(peer, tag);
    check_point_to_point(operation, buffer, count, type, peer, tag);
    const std::size_t bytes = count * size_of(type);
    std::lock_guard lock(channel_->mutex);
    for (auto it = channel_->posted.begin(); it != channel_->posted.end(); ++it) {
      PostedReceive& receive = **it;
      if (receive.tag != tag) {
        continue;
      }
      std::shared_ptr<PostedReceive> matched = *it;
      channel_->posted.erase(it);
      if (receive.count != count || receive.type != type) {
        receive.error = mismatch(receive.count, receive.type, count, type);
        context_.fail(operation, receive.error);
      }
      copy_bytes(receive.buffer, buffer, bytes);
      receive.done = true;
      return;
    }
    QueuedMessage message;
    message.count = count;
    message.type = type;
    message.bytes.resize(bytes);
    copy_bytes(message.bytes.data(), buffer, bytes);
    channel_->queued[tag].push_back(std::move(message));
  }

  void recv(void* buffer, std::size_t count, DataType type, int peer, int tag) override {
    const std::string operation = detail::recv_name(peer, tag);
    check_point_to_point(operation, buffer, count, type, peer, tag);
    std::lock_guard lock(channel_->mutex);
    if (!take_queued(operation, buffer, count, type, tag)) {
      context_.fail(operation, "no matching send to self has been posted, and in a world of one "
                               "nothing else can send it, so this recv would never complete");
    }
  }

  RequestPtr send_async(const void* buffer, std::size_t count, DataType type, int peer,
                        int tag) override {
    send(buffer, count, type, peer, tag);  // buffered: complete at once
    return std::make_unique<CompletedRequest>();
  }

  RequestPtr recv_async(void* buffer, std::size_t count, DataType type, int peer,
                        int tag) override {
    const std::string operation = detail::recv_name(peer, tag);
    check_point_to_point(operation, buffer, count, type, peer, tag);
    std::lock_guard lock(channel_->mutex);
    if (take_queued(operation, buffer, count, type, tag)) {
      return std::make_unique<CompletedRequest>();
    }
    auto receive = std::make_shared<PostedReceive>();
    receive->buffer = buffer;
    receive->count = count;
    receive->type = type;
    receive->tag = tag;
    channel_->posted.push_back(receive);
    return std::make_unique<SelfReceiveRequest>(channel_, std::move(receive), context_);
  }

  void barrier() override {}

  std::unique_ptr<Communicator> split(int color, int /*key*/) override {
    detail::check_color(context_, color);
    if (color == kNoGroup) {
      return nullptr;
    }
    return std::make_unique<SingleProcessCommunicator>(timeout_seconds_);
  }

  void set_timeout_seconds(double seconds) override {
    detail::check_timeout_value(seconds);
    timeout_seconds_ = seconds;
  }
  double timeout_seconds() const override { return timeout_seconds_; }

 private:
  void check_point_to_point(const std::string& operation, const void* buffer, std::size_t count,
                            DataType type, int peer, int tag) const {
    size_of(type);
    detail::check_rank(context_, operation, peer, "peer");
    detail::check_tag(context_, operation, tag);
    detail::check_buffer(context_, operation, buffer, count, "buffer");
  }

  static std::string mismatch(std::size_t expected_count, DataType expected_type,
                              std::size_t sent_count, DataType sent_type) {
    return "the recv expects " + describe(expected_count, expected_type) + " but the send sent " +
           describe(sent_count, sent_type);
  }

  // Moves the oldest queued message with `tag` into buffer; false if there is none.
  // The caller holds channel_->mutex.
  bool take_queued(const std::string& operation, void* buffer, std::size_t count, DataType type,
                   int tag) {
    auto found = channel_->queued.find(tag);
    if (found == channel_->queued.end() || found->second.empty()) {
      return false;
    }
    QueuedMessage message = std::move(found->second.front());
    found->second.pop_front();
    if (found->second.empty()) {
      channel_->queued.erase(found);
    }
    if (message.count != count || message.type != type) {
      context_.fail(operation, mismatch(count, type, message.count, message.type));
    }
    copy_bytes(buffer, message.bytes.data(), message.bytes.size());
    return true;
  }

  ErrorContext context_{};
  std::shared_ptr<SelfChannel> channel_;
  double timeout_seconds_;
};

}  // namespace

std::unique_ptr<Communicator> make_single_process_communicator() {
  return std::make_unique<SingleProcessCommunicator>(timeout_seconds_from_environment());
}

}  // namespace tandem::comm
