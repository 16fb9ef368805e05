#pragma once
// Internal to comm/ backends: argument checks shared by every backend, so that the same mistake
// produces the same CommError whichever backend runs it. Messages start with where the error
// happened: "rank 3 (rank 1 of its group): all-reduce on a group of 2 ranks: ...".

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <thread>

#include "comm/communicator.hpp"

namespace tandem::comm::detail {

// Who is calling: this process's world rank, and its rank in a group of `size` ranks.
struct ErrorContext {
  int world_rank = 0;
  int rank = 0;
  int size = 1;

  // "rank W: <operation> on a group of N ranks" (with "(rank r of its group)" when r != W).
  std::string where(std::string_view operation) const;
  [[noreturn]] void fail(std::string_view operation, std::string_view detail) const;
  [[noreturn]] void time_out(std::string_view operation, double timeout_seconds) const;
};

// Operation names used in messages.
inline constexpr std::string_view kAllReduce = "all-reduce";
inline constexpr std::string_view kReduceScatter = "reduce-scatter";
inline constexpr std::string_view kAllGather = "all-gather";
inline constexpr std::string_view kAllToAll = "all-to-all";
inline constexpr std::string_view kBroadcast = "broadcast";
inline constexpr std::string_view kBarrier = "barrier";
inline constexpr std::string_view kSplit = "split";

// "send to rank 2 (tag 7)" / "recv from rank 2 (tag 7)".
std::string send_name(int peer, int tag);
std::string recv_name(int peer, int tag);

void check_reduction(const ErrorContext& context, std::string_view operation, DataType type,
                     ReduceOp op);
void check_buffer(const ErrorContext& context, std::string_view operation, const void* buffer,
                  std::size_t count, std::string_view name);
void check_rank(const ErrorContext& context, std::string_view operation, int rank,
                std::string_view role);
void check_tag(const ErrorContext& context, std::string_view operation, int tag);
void check_color(const ErrorContext& context, int color);
// Throws unless [a, a+a_bytes) and [b, b+b_bytes) are disjoint (empty ranges never overlap).
void check_disjoint(const ErrorContext& context, std::string_view operation, const void* a,
                    std::size_t a_bytes, const void* b, std::size_t b_bytes);
void check_timeout_value(double seconds);

// True when all_gather's input is rank r's block of its output (the in-place form).
bool is_in_place_all_gather(const void* input, const void* output, std::size_t count,
                            DataType type, int rank);

// Divides count elements of a Float32/Float64 buffer by divisor (the Average of a Sum).
void divide_in_place(void* buffer, std::size_t count, DataType type, int divisor);

// Calls poll() until it returns true (then returns true) or timeout_seconds have passed (then
// returns false); timeout_seconds == 0 polls forever. Spins briefly, then yields the CPU, and
// after a second of waiting sleeps 1 ms between polls (a wait that long is waiting for a slow or
// dead peer, and 1 ms is then negligible).
template <typename Poll>
bool poll_until_done(Poll&& poll, double timeout_seconds) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const std::chrono::duration<double> limit(timeout_seconds);
  for (unsigned iteration = 0;; ++iteration) {
    if (poll()) {
      return true;
    }
    if (iteration < 64) {
      continue;
    }
    const auto elapsed = Clock::now() - start;
    if (timeout_seconds > 0 && elapsed >= limit) {
      return false;
    }
    if (elapsed < std::chrono::seconds(1)) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
}

}  // namespace tandem::comm::detail
