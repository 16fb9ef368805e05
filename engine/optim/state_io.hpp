#pragma once
// Binary (de)serialisation of optimizer state and the per-tensor state container every optimizer
// shares. Layout (little-endian host order, this is a same-machine checkpoint format):
//   u64 magic "TNDOPTIM", u64 version, string optimizer name, u64 tensor count,
//   per tensor: string name, i64 rows, i64 cols, i64 step, then the optimizer's own fields.
// Strings are u64 length + bytes; float buffers are u64 count + raw fp32, so a reload is exact.

#include <cstdint>
#include <cstring>
#include <map>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/optim/optimizer.hpp"

namespace tandem::engine::optim {

class StateWriter {
 public:
  explicit StateWriter(std::vector<std::uint8_t>& out) : out_(out) {}
  void u64(std::uint64_t value) { raw(&value, sizeof value); }
  void i64(std::int64_t value) { raw(&value, sizeof value); }
  void f64(double value) { raw(&value, sizeof value); }
  void string(const std::string& value) {
    u64(value.size());
    raw(value.data(), value.size());
  }
  void floats(const std::vector<float>& values) {
    u64(values.size());
    raw(values.data(), values.size() * sizeof(float));
  }
  void bytes(const std::vector<std::uint8_t>& values) {
    u64(values.size());
    raw(values.data(), values.size());
  }

 private:
  void raw(const void* data, std::size_t size) {
    if (size == 0) return;
    const std::size_t offset = out_.size();
    out_.resize(offset + size);
    std::memcpy(out_.data() + offset, data, size);
  }
  std::vector<std::uint8_t>& out_;
};

class StateReader {
 public:
  explicit StateReader(std::span<const std::uint8_t> in) : in_(in) {}
  std::uint64_t u64() { return scalar<std::uint64_t>(); }
  std::int64_t i64() { return scalar<std::int64_t>(); }
  double f64() { return scalar<double>(); }
  std::string string() {
    const std::uint64_t size = length(1);
    std::string value(size, '\0');
    raw(value.data(), size);
    return value;
  }
  std::vector<float> floats() {
    const std::uint64_t size = length(sizeof(float));
    std::vector<float> values(size);
    raw(values.data(), size * sizeof(float));
    return values;
  }
  std::vector<std::uint8_t> bytes() {
    const std::uint64_t size = length(1);
    std::vector<std::uint8_t> values(size);
    raw(values.data(), size);
    return values;
  }
  bool at_end() const { return offset_ == in_.size(); }
  std::size_t offset() const { return offset_; }

 private:
  template <class T>
  T scalar() {
    T value;
    raw(&value, sizeof value);
    return value;
  }
  std::uint64_t length(std::size_t element_size) {
    const std::uint64_t size = u64();
    if (size > (in_.size() - offset_) / element_size) {
      throw std::runtime_error("optimizer state: truncated or corrupt buffer (a field of " +
                               std::to_string(size) + " elements at byte " +
                               std::to_string(offset_) + " runs past the end)");
    }
    return size;
  }
  void raw(void* data, std::size_t size) {
    if (size > in_.size() - offset_) {
      throw std::runtime_error("optimizer state: truncated buffer (needed " + std::to_string(size) +
                               " bytes at byte " + std::to_string(offset_) + " of " +
                               std::to_string(in_.size()) + ")");
    }
    if (size > 0) std::memcpy(data, in_.data() + offset_, size);
    offset_ += size;
  }
  std::span<const std::uint8_t> in_;
  std::size_t offset_ = 0;
};

inline constexpr std::uint64_t kStateMagic = 0x4D4954504F444E54ull;  // "TNDOPTIM" little-endian
inline constexpr std::uint64_t kStateVersion = 1;

inline std::size_t buffer_bytes(const std::vector<float>& buffer) {
  return buffer.size() * sizeof(float);
}

// For a state buffer that must hold `expected` floats: allocates it (zeros) when empty, throws
// when a loaded state has another size (the run's settings differ from the checkpoint's).
inline void ensure_buffer(std::vector<float>& buffer, std::size_t expected, const std::string& tensor,
                          const char* what) {
  if (buffer.empty()) {
    buffer.assign(expected, 0.0f);
  } else if (buffer.size() != expected) {
    throw std::runtime_error("optimizer state for '" + tensor + "': " + what + " holds " +
                             std::to_string(buffer.size()) + " values, this run needs " +
                             std::to_string(expected) +
                             " (the checkpoint was made with other optimizer settings)");
  }
}

// What every per-tensor state holds; optimizers derive their state from it.
struct TensorStateBase {
  std::int64_t rows = 0, cols = 0;
  std::int64_t step = 0;  // steps taken on this tensor (t of the last step)
};

// An optimizer whose state is one `State` per parameter name. State must derive from
// TensorStateBase and provide: std::size_t bytes() const; void save(StateWriter&) const;
// void load(StateReader&).
template <class State>
class PerTensorOptimizer : public Optimizer {
 public:
  std::size_t state_bytes() const override {
    std::size_t total = 0;
    for (const auto& [name, state] : states_) total += state.bytes();
    return total;
  }

  void save_state(std::vector<std::uint8_t>& out) const override {
    out.clear();
    StateWriter writer(out);
    writer.u64(kStateMagic);
    writer.u64(kStateVersion);
    writer.string(name());
    writer.u64(states_.size());
    for (const auto& [tensor_name, state] : states_) {
      writer.string(tensor_name);
      writer.i64(state.rows);
      writer.i64(state.cols);
      writer.i64(state.step);
      state.save(writer);
    }
  }

  void load_state(std::span<const std::uint8_t> in) override {
    StateReader reader(in);
    if (in.size() < sizeof(std::uint64_t) || reader.u64() != kStateMagic) {
      throw std::runtime_error("optimizer state: not a Tandem optimizer state buffer");
    }
    const std::uint64_t version = reader.u64();
    if (version != kStateVersion) {
      throw std::runtime_error("optimizer state: version " + std::to_string(version) +
                               " is not supported (this build reads version " +
                               std::to_string(kStateVersion) + ")");
    }
    const std::string saved_name = reader.string();
    if (saved_name != name()) {
      throw std::runtime_error("optimizer state: the checkpoint holds state of optimizer '" +
                               saved_name + "', this run uses '" + name() + "'");
    }
    std::map<std::string, State> loaded;
    const std::uint64_t count = reader.u64();
    for (std::uint64_t i = 0; i < count; ++i) {
      std::string tensor_name = reader.string();
      State state;
      state.rows = reader.i64();
      state.cols = reader.i64();
      state.step = reader.i64();
      state.load(reader);
      loaded.emplace(std::move(tensor_name), std::move(state));
    }
    if (!reader.at_end()) {
      throw std::runtime_error("optimizer state: " + std::to_string(in.size() - reader.offset()) +
                               " unexpected bytes after the last tensor");
    }
    states_ = std::move(loaded);
  }

 protected:
  // The tensor's state, created (empty, step 0) on first use; throws when a loaded or earlier
  // state has another shape.
  State& state_for(const ParameterTensor& param) {
    auto [it, inserted] = states_.try_emplace(param.name);
    State& state = it->second;
    if (inserted) {
      state.rows = param.rows;
      state.cols = param.cols;
    } else if (state.rows != param.rows || state.cols != param.cols) {
      throw std::runtime_error("optimizer state for '" + param.name + "' has shape " +
                               std::to_string(state.rows) + "x" + std::to_string(state.cols) +
                               " but the parameter is " + std::to_string(param.rows) + "x" +
                               std::to_string(param.cols));
    }
    return state;
  }

  std::map<std::string, State> states_;
};

// Checks the parameter pointers and shape once per step.
void check_parameter(const ParameterTensor& param);

}  // namespace tandem::engine::optim
