#include "comm/communicator.hpp"

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <sstream>

#include "comm/checks.hpp"

namespace tandem::comm {

std::size_t size_of(DataType type) {
  switch (type) {
    case DataType::Float32: return 4;
    case DataType::Float64: return 8;
    case DataType::Int32: return 4;
    case DataType::Int64: return 8;
    case DataType::UInt8: return 1;
  }
  throw CommError("size_of: unknown DataType value " + std::to_string(static_cast<int>(type)));
}

std::string_view to_string(DataType type) {
  switch (type) {
    case DataType::Float32: return "Float32";
    case DataType::Float64: return "Float64";
    case DataType::Int32: return "Int32";
    case DataType::Int64: return "Int64";
    case DataType::UInt8: return "UInt8";
  }
  return "unknown DataType";
}

std::string_view to_string(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return "Sum";
    case ReduceOp::Average: return "Average";
    case ReduceOp::Max: return "Max";
    case ReduceOp::Min: return "Min";
  }
  return "unknown ReduceOp";
}

double timeout_seconds_from_environment() {
  const char* text = std::getenv("TANDEM_COMM_TIMEOUT_S");
  if (text == nullptr || *text == '\0') {
    return kDefaultTimeoutSeconds;
  }
  errno = 0;
  char* end = nullptr;
  const double seconds = std::strtod(text, &end);
  if (end == text || *end != '\0' || errno != 0 || !std::isfinite(seconds) || seconds < 0) {
    throw CommError(std::string("TANDEM_COMM_TIMEOUT_S=\"") + text +
                    "\" is not valid: give the timeout of communication waits in seconds as a "
                    "number >= 0 (e.g. 600 or 2.5), or 0 to wait without a timeout");
  }
  return seconds;
}

void Communicator::send_recv(const void* send_buffer, std::size_t send_count, int send_peer,
                             void* recv_buffer, std::size_t recv_count, int recv_peer,
                             DataType type, int tag) {
  RequestPtr receive = recv_async(recv_buffer, recv_count, type, recv_peer, tag);
  RequestPtr sending = send_async(send_buffer, send_count, type, send_peer, tag);
  receive->wait();
  sending->wait();
}

void Communicator::all_to_all(const void*, void*, std::size_t, DataType) {
  throw CommError("all-to-all is not implemented by the " + backend() + " backend");
}

RequestPtr Communicator::all_to_all_async(const void*, void*, std::size_t, DataType) {
  throw CommError("all-to-all is not implemented by the " + backend() + " backend");
}

void Communicator::set_timeout_seconds(double seconds) { detail::check_timeout_value(seconds); }

double Communicator::timeout_seconds() const { return 0.0; }

namespace detail {

namespace {

std::string format_seconds(double seconds) {
  std::ostringstream text;
  text << seconds;
  return text.str();
}

}  // namespace

std::string ErrorContext::where(std::string_view operation) const {
  std::string text = "rank " + std::to_string(world_rank);
  if (rank != world_rank) {
    text += " (rank " + std::to_string(rank) + " of its group)";
  }
  text += ": ";
  text += operation;
  text += " on a group of " + std::to_string(size) + (size == 1 ? " rank" : " ranks");
  return text;
}

void ErrorContext::fail(std::string_view operation, std::string_view detail) const {
  throw CommError(where(operation) + ": " + std::string(detail));
}

void ErrorContext::time_out(std::string_view operation, double timeout_seconds) const {
  throw CommTimeout(where(operation) + " did not complete within " +
                    format_seconds(timeout_seconds) +
                    " s — a peer may have died (the limit is TANDEM_COMM_TIMEOUT_S)");
}

std::string send_name(int peer, int tag) {
  return "send to rank " + std::to_string(peer) + " (tag " + std::to_string(tag) + ")";
}

std::string recv_name(int peer, int tag) {
  return "recv from rank " + std::to_string(peer) + " (tag " + std::to_string(tag) + ")";
}

void check_reduction(const ErrorContext& context, std::string_view operation, DataType type,
                     ReduceOp op) {
  size_of(type);  // rejects values outside the enum
  switch (op) {
    case ReduceOp::Sum:
    case ReduceOp::Max:
    case ReduceOp::Min:
      return;
    case ReduceOp::Average:
      if (type == DataType::Float32 || type == DataType::Float64) {
        return;
      }
      context.fail(operation, "ReduceOp Average needs a floating-point type (Float32 or "
                              "Float64), got " + std::string(to_string(type)));
  }
  context.fail(operation, "unknown ReduceOp value " + std::to_string(static_cast<int>(op)));
}

void check_buffer(const ErrorContext& context, std::string_view operation, const void* buffer,
                  std::size_t count, std::string_view name) {
  if (buffer == nullptr && count != 0) {
    context.fail(operation, std::string(name) + " is null but count is " + std::to_string(count));
  }
}

void check_rank(const ErrorContext& context, std::string_view operation, int rank,
                std::string_view role) {
  if (rank < 0 || rank >= context.size) {
    context.fail(operation, std::string(role) + " " + std::to_string(rank) +
                                " is not a rank of this group (valid: 0.." +
                                std::to_string(context.size - 1) + ")");
  }
}

void check_tag(const ErrorContext& context, std::string_view operation, int tag) {
  if (tag < 0) {
    context.fail(operation, "tag " + std::to_string(tag) + " is invalid (tags must be >= 0)");
  }
}

void check_color(const ErrorContext& context, int color) {
  if (color < 0 && color != kNoGroup) {
    context.fail(kSplit, "color " + std::to_string(color) +
                             " is invalid (colors are >= 0, or kNoGroup = -1 to join no group)");
  }
}

void check_disjoint(const ErrorContext& context, std::string_view operation, const void* a,
                    std::size_t a_bytes, const void* b, std::size_t b_bytes) {
  if (a_bytes == 0 || b_bytes == 0) {
    return;
  }
  const auto a_begin = reinterpret_cast<std::uintptr_t>(a);
  const auto b_begin = reinterpret_cast<std::uintptr_t>(b);
  if (a_begin < b_begin + b_bytes && b_begin < a_begin + a_bytes) {
    context.fail(operation, "the input and output buffers overlap (they must be disjoint)");
  }
}

void check_timeout_value(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) {
    throw CommError("communication timeout " + format_seconds(seconds) +
                    " s is invalid: give seconds >= 0 (0 disables the timeout)");
  }
}

bool is_in_place_all_gather(const void* input, const void* output, std::size_t count,
                            DataType type, int rank) {
  if (count == 0 || input == nullptr || output == nullptr) {
    return false;
  }
  const auto offset = static_cast<std::uintptr_t>(rank) * count * size_of(type);
  return reinterpret_cast<std::uintptr_t>(input) ==
         reinterpret_cast<std::uintptr_t>(output) + offset;
}

void divide_in_place(void* buffer, std::size_t count, DataType type, int divisor) {
  if (type == DataType::Float32) {
    auto* values = static_cast<float*>(buffer);
    const auto d = static_cast<float>(divisor);
    for (std::size_t i = 0; i < count; ++i) {
      values[i] /= d;
    }
  } else if (type == DataType::Float64) {
    auto* values = static_cast<double*>(buffer);
    const auto d = static_cast<double>(divisor);
    for (std::size_t i = 0; i < count; ++i) {
      values[i] /= d;
    }
  }
}

}  // namespace detail
}  // namespace tandem::comm
