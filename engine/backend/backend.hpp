#pragma once
// The compute backend seam: where the engine's tensors live and which kernels run on them.
//
// The model and the runner never touch a kernel library directly: they hold device pointers
// obtained from a Backend and call its methods, which forward to kernels/cpu (CpuBackend, float
// and double) or kernels/cuda + cuBLAS (CudaBackend, float, built when TANDEM_HAVE_CUDA). Shapes
// and semantics are those of the kernel headers (kernels/cpu/*.hpp); what is not a kernel there
// (a bias gradient, combining vocab-parallel softmax statistics, summing a loss) is defined here.
//
// Memory: allocate/release device buffers; upload/download copy between host and device (on the
// CPU backend these are memcpy). is_host_memory() tells whether device pointers may be read by
// the host directly (CPU) — the optimizer (engine/optim) works on host memory, so a device
// backend keeps host mirrors of parameters and gradients for the optimizer step.
//
// Every call is ordered after the previous one (the CUDA backend queues on one stream and
// synchronises where a result comes back to the host: downloads, sums, norms).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

namespace tandem::engine {

// The chosen device cannot be used (no GPU, no driver, CUDA not compiled in).
class BackendError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <typename Scalar>
class Backend {
 public:
  virtual ~Backend() = default;

  virtual std::string name() const = 0;  // "cpu", "cuda:0"
  virtual bool is_host_memory() const = 0;

  // ---- memory ------------------------------------------------------------------------------
  virtual Scalar* allocate(std::size_t n) = 0;  // zero-filled
  virtual void release(Scalar* p) = 0;
  virtual std::int32_t* allocate_tokens(std::size_t n) = 0;
  virtual void release_tokens(std::int32_t* p) = 0;
  virtual void zero(Scalar* p, std::size_t n) = 0;
  virtual void copy(Scalar* dst, const Scalar* src, std::size_t n) = 0;  // device to device
  virtual void upload(Scalar* dst, const Scalar* host, std::size_t n) = 0;
  virtual void download(Scalar* host, const Scalar* src, std::size_t n) = 0;
  virtual void upload_tokens(std::int32_t* dst, const std::int32_t* host, std::size_t n) = 0;
  virtual void synchronize() = 0;

  // ---- linear layers (kernels/cpu/matmul.hpp) --------------------------------------------------
  virtual void matmul_forward(Scalar* out, const Scalar* inp, const Scalar* weight, const Scalar* bias,
                              int M, int K, int N) = 0;
  virtual void matmul_backward_input(Scalar* dinp, const Scalar* dout, const Scalar* weight, int M,
                                     int K, int N, bool accumulate) = 0;
  virtual void matmul_backward_weight(Scalar* dweight, Scalar* dbias, const Scalar* dout,
                                      const Scalar* inp, int M, int K, int N) = 0;
  // dbias (N) += column sums of dout (M,N).
  virtual void bias_backward(Scalar* dbias, const Scalar* dout, int M, int N) = 0;

  // ---- attention, rope (kernels/cpu/attention.hpp, rope.hpp) -----------------------------------
  virtual void attention_forward(Scalar* out, Scalar* logsumexp, const Scalar* qkv, int B, int T,
                                 int Hq, int Hkv, int D) = 0;
  virtual void attention_backward(Scalar* dqkv, const Scalar* dout, const Scalar* qkv,
                                  const Scalar* out, const Scalar* logsumexp, int B, int T, int Hq,
                                  int Hkv, int D) = 0;
  virtual void rope_forward(Scalar* qkv, int B, int T, int Hq, int Hkv, int D, double theta) = 0;
  virtual void rope_backward(Scalar* dqkv, int B, int T, int Hq, int Hkv, int D, double theta) = 0;

  // ---- norms (kernels/cpu/normalization.hpp) ------------------------------------------------
  virtual void layernorm_forward(Scalar* out, Scalar* mean, Scalar* rstd, const Scalar* inp,
                                 const Scalar* weight, const Scalar* bias, int M, int C) = 0;
  virtual void layernorm_backward(Scalar* dinp, Scalar* dweight, Scalar* dbias, const Scalar* dout,
                                  const Scalar* inp, const Scalar* weight, const Scalar* mean,
                                  const Scalar* rstd, int M, int C, bool accumulate) = 0;
  virtual void rmsnorm_forward(Scalar* out, Scalar* rstd, const Scalar* inp, const Scalar* weight,
                               int M, int C) = 0;
  virtual void rmsnorm_backward(Scalar* dinp, Scalar* dweight, const Scalar* dout,
                                const Scalar* inp, const Scalar* weight, const Scalar* rstd, int M,
                                int C, bool accumulate) = 0;

  // ---- activations (kernels/cpu/activation.hpp) ----------------------------------------------
  virtual void gelu_forward(Scalar* out, const Scalar* inp, std::size_t n) = 0;
  virtual void gelu_backward(Scalar* dinp, const Scalar* inp, const Scalar* dout, std::size_t n) = 0;
  virtual void swiglu_forward(Scalar* out, const Scalar* inp, int M, int F) = 0;
  virtual void swiglu_backward(Scalar* dinp, const Scalar* inp, const Scalar* dout, int M, int F) = 0;

  // ---- embedding (kernels/cpu/embedding.hpp) ------------------------------------------------
  virtual void embedding_forward(Scalar* out, const std::int32_t* tokens, const Scalar* token_table,
                                 const Scalar* position_table, int B, int T, int C, int vocab_start,
                                 int V_local) = 0;
  virtual void embedding_backward(Scalar* token_table_grad, Scalar* position_table_grad,
                                  const Scalar* dout, const std::int32_t* tokens, int B, int T,
                                  int C, int vocab_start, int V_local) = 0;

  // ---- cross-entropy (kernels/cpu/cross_entropy.hpp) -------------------------------------------
  // Full vocabulary: losses (M) and logsumexp (M) written.
  virtual void cross_entropy_forward(Scalar* losses, Scalar* logsumexp, const Scalar* logits,
                                     const std::int32_t* targets, int M, int V, int valid_vocab) = 0;
  virtual void cross_entropy_backward(Scalar* dlogits, const Scalar* logits, const Scalar* logsumexp,
                                      const std::int32_t* targets, Scalar dloss, int M, int V,
                                      int valid_vocab) = 0;
  // Vocab-parallel, one collective: this shard's statistics relative to its OWN max, written as
  // stats (3,M) = [local max | local sum of exp(logit - local max) | local target logit].
  virtual void vocab_parallel_statistics(Scalar* stats, const Scalar* logits,
                                         const std::int32_t* targets, int M, int V_local,
                                         int vocab_start, int valid_vocab) = 0;
  // Combines the statistics of `shards` ranks, gathered as `shards` consecutive (3,M) blocks:
  // logsumexp = max_r m_r + log Σ_r s_r·exp(m_r − max_r m_r); losses = logsumexp − Σ_r t_r
  // (0 for rows whose target is negative).
  virtual void vocab_parallel_combine(Scalar* losses, Scalar* logsumexp, const Scalar* gathered,
                                      const std::int32_t* targets, int M, int shards) = 0;
  virtual void vocab_parallel_backward(Scalar* dlogits, const Scalar* logits, const Scalar* logsumexp,
                                       const std::int32_t* targets, Scalar dloss, int M, int V_local,
                                       int vocab_start, int valid_vocab) = 0;

  // ---- element-wise (kernels/cpu/elementwise.hpp) -------------------------------------------
  virtual void residual_forward(Scalar* out, const Scalar* a, const Scalar* b, std::size_t n) = 0;
  virtual void add_in_place(Scalar* a, const Scalar* b, std::size_t n) = 0;
  virtual double sum_of_squares(const Scalar* x, std::size_t n) = 0;
  virtual void scale_in_place(Scalar* x, std::size_t n, Scalar scale) = 0;
  // Σ x in double (the loss of a micro-batch from its per-token losses).
  virtual double sum(const Scalar* x, std::size_t n) = 0;
  // dst (rows, dst_cols) columns [dst_col, dst_col + cols) = src (rows, cols): packs a block of
  // columns (sequence-parallel scatter/gather helpers and the sampler).
  virtual void copy_columns(Scalar* dst, int dst_cols, int dst_col, const Scalar* src, int rows,
                            int cols) = 0;
};

// The CPU backend (kernels/cpu). Threads: kernels::cpu::set_kernel_threads.
template <typename Scalar>
std::unique_ptr<Backend<Scalar>> make_cpu_backend();

// True when this build has the CUDA backend compiled in.
bool cuda_backend_compiled();
// The CUDA backend on `device` (< 0: the launcher's local rank modulo the visible devices).
// Throws BackendError "no CUDA device found ..." when there is no usable GPU, or when CUDA was
// not compiled in.
std::unique_ptr<Backend<float>> make_cuda_backend(int device);

// A device buffer owned by a backend (RAII).
template <typename Scalar>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(Backend<Scalar>& backend, std::size_t n) : backend_(&backend), size_(n) {
    data_ = n > 0 ? backend.allocate(n) : nullptr;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept { swap(other); }
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    if (this != &other) {
      reset();
      swap(other);
    }
    return *this;
  }
  ~DeviceBuffer() { reset(); }

  Scalar* data() const { return data_; }
  std::size_t size() const { return size_; }
  void reset() {
    if (data_ != nullptr) backend_->release(data_);
    data_ = nullptr;
    size_ = 0;
  }

 private:
  void swap(DeviceBuffer& other) noexcept {
    std::swap(backend_, other.backend_);
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
  }
  Backend<Scalar>* backend_ = nullptr;
  Scalar* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace tandem::engine
