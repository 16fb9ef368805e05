// The CUDA kernels against the same float64 references and shapes as the CPU suite (cases.hpp,
// reference.hpp); backward passes against the CPU kernels' double instantiation, which the CPU
// suite checks with finite differences. Skips (clearly) on machines without a CUDA device.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "kernels/cpu/kernels.hpp"
#include "kernels/cuda/kernels.hpp"
#include "tests/kernels/cases.hpp"
#include "tests/kernels/reference.hpp"
#include "tests/kernels/test_support.hpp"

namespace tandem::kernels {
namespace {

using namespace testing;  // NOLINT
using cuda::CudaContext;

template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(std::size_t n) : size_(n) {
    cuda::check_cuda(cudaMalloc(reinterpret_cast<void**>(&data_), std::max<std::size_t>(1, n) * sizeof(T)),
                     "cudaMalloc");
  }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) {
    cuda::check_cuda(cudaMemcpy(data_, host.data(), size_ * sizeof(T), cudaMemcpyHostToDevice),
                     "upload");
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { cudaFree(data_); }
  T* get() { return data_; }
  std::vector<T> download() const {
    std::vector<T> host(size_);
    cuda::check_cuda(cudaDeviceSynchronize(), "synchronize");
    cuda::check_cuda(cudaMemcpy(host.data(), data_, size_ * sizeof(T), cudaMemcpyDeviceToHost),
                     "download");
    return host;
  }

 private:
  T* data_ = nullptr;
  std::size_t size_;
};

std::vector<float> floats(const Vec& v) { return cast<float>(v); }

class CudaKernels : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda::device_count() == 0) {
      GTEST_SKIP() << "no CUDA device: CUDA kernels compiled but not run";
    }
    ctx_ = cuda::create_context();
  }
  void TearDown() override {
    if (ctx_.cublas != nullptr) cuda::destroy_context(ctx_);
  }
  CudaContext ctx_;
};

TEST_F(CudaKernels, MatmulForwardAndBackwardMatchReferences) {
  for (const auto& c : cases::kMatmul) {
    SCOPED_TRACE("M=" + std::to_string(c.M) + " K=" + std::to_string(c.K) + " N=" +
                 std::to_string(c.N));
    const Vec inp = random_vector(static_cast<std::size_t>(c.M) * c.K, 1);
    const Vec weight = random_vector(static_cast<std::size_t>(c.N) * c.K, 2);
    const Vec bias = c.bias ? random_vector(c.N, 3) : Vec{};
    const Vec dout = random_vector(static_cast<std::size_t>(c.M) * c.N, 4);
    DeviceBuffer<float> d_inp(floats(inp)), d_weight(floats(weight)), d_bias(floats(bias));
    DeviceBuffer<float> d_out(static_cast<std::size_t>(c.M) * c.N), d_dout(floats(dout));
    cuda::matmul_forward(ctx_, d_out.get(), d_inp.get(), d_weight.get(),
                         c.bias ? d_bias.get() : nullptr, c.M, c.K, c.N);
    EXPECT_TRUE(all_close(d_out.download(),
                          reference::matmul_forward(inp, weight, bias, c.M, c.K, c.N), kFloatRtol,
                          kFloatAtol));
    DeviceBuffer<float> d_dinp(inp.size());
    cuda::matmul_backward_input(ctx_, d_dinp.get(), d_dout.get(), d_weight.get(), c.M, c.K, c.N);
    EXPECT_TRUE(all_close(d_dinp.download(),
                          reference::matmul_backward_input(dout, weight, c.M, c.K, c.N),
                          kFloatRtol, kFloatAtol));
    Vec dweight, dbias;
    reference::matmul_backward_weight(dweight, dbias, dout, inp, c.M, c.K, c.N);
    DeviceBuffer<float> d_dweight(std::vector<float>(weight.size(), 0.0f));
    DeviceBuffer<float> d_dbias(std::vector<float>(c.N, 0.0f));
    cuda::matmul_backward_weight(ctx_, d_dweight.get(), d_dbias.get(), d_dout.get(), d_inp.get(),
                                 c.M, c.K, c.N);
    EXPECT_TRUE(all_close(d_dweight.download(), dweight, kFloatRtol, kFloatAtol));
    EXPECT_TRUE(all_close(d_dbias.download(), dbias, kFloatRtol, kFloatAtol));
  }
}

TEST_F(CudaKernels, AttentionMatchesReferences) {
  std::vector<cases::AttentionCase> all = cases::kAttention;
  all.insert(all.end(), cases::kAttentionLong.begin(), cases::kAttentionLong.end());
  for (const auto& c : all) {
    SCOPED_TRACE("B=" + std::to_string(c.B) + " T=" + std::to_string(c.T) + " Hq=" +
                 std::to_string(c.Hq) + " Hkv=" + std::to_string(c.Hkv));
    const std::size_t qkv_n = static_cast<std::size_t>(c.B) * c.T * (c.Hq + 2 * c.Hkv) * c.D;
    const std::size_t out_n = static_cast<std::size_t>(c.B) * c.T * c.Hq * c.D;
    const std::size_t lse_n = static_cast<std::size_t>(c.B) * c.Hq * c.T;
    const Vec qkv = random_vector(qkv_n, 31, -2.0, 2.0), dout = random_vector(out_n, 32);
    Vec out, lse;
    reference::attention_forward(out, lse, qkv, c.B, c.T, c.Hq, c.Hkv, c.D);
    DeviceBuffer<float> d_qkv(floats(qkv)), d_out(out_n), d_lse(lse_n), d_dout(floats(dout));
    cuda::attention_forward(ctx_, d_out.get(), d_lse.get(), d_qkv.get(), c.B, c.T, c.Hq, c.Hkv,
                            c.D);
    EXPECT_TRUE(all_close(d_out.download(), out, kFloatRtol, kFloatAtol));
    EXPECT_TRUE(all_close(d_lse.download(), lse, kFloatRtol, kFloatAtol));
    Vec dqkv(qkv_n);
    cpu::attention_backward<double>(dqkv.data(), dout.data(), qkv.data(), out.data(), lse.data(),
                                    c.B, c.T, c.Hq, c.Hkv, c.D);
    DeviceBuffer<float> d_dqkv(qkv_n);
    cuda::attention_backward(ctx_, d_dqkv.get(), d_dout.get(), d_qkv.get(), d_out.get(),
                             d_lse.get(), c.B, c.T, c.Hq, c.Hkv, c.D);
    EXPECT_TRUE(all_close(d_dqkv.download(), dqkv, 1e-4, 1e-4));
  }
}

TEST_F(CudaKernels, NormsMatchReferences) {
  for (const auto& c : cases::kNorm) {
    SCOPED_TRACE("M=" + std::to_string(c.M) + " C=" + std::to_string(c.C));
    const std::size_t n = static_cast<std::size_t>(c.M) * c.C;
    const Vec inp = random_vector(n, 71, -2.0, 3.0), w = random_vector(c.C, 72),
              b = random_vector(c.C, 73), dout = random_vector(n, 74);
    Vec out, mean, rstd;
    reference::layernorm_forward(out, mean, rstd, inp, w, b, c.M, c.C, 1e-5);
    DeviceBuffer<float> d_inp(floats(inp)), d_w(floats(w)), d_b(floats(b)), d_dout(floats(dout));
    DeviceBuffer<float> d_out(n), d_mean(c.M), d_rstd(c.M), d_dinp(n);
    cuda::layernorm_forward(ctx_, d_out.get(), d_mean.get(), d_rstd.get(), d_inp.get(), d_w.get(),
                            d_b.get(), c.M, c.C);
    EXPECT_TRUE(all_close(d_out.download(), out, 1e-4, 1e-5));
    Vec dinp(n), dw(c.C, 0.0), db(c.C, 0.0);
    cpu::layernorm_backward<double>(dinp.data(), dw.data(), db.data(), dout.data(), inp.data(),
                                    w.data(), mean.data(), rstd.data(), c.M, c.C);
    DeviceBuffer<float> d_dw(std::vector<float>(c.C, 0.0f)), d_db(std::vector<float>(c.C, 0.0f));
    cuda::layernorm_backward(ctx_, d_dinp.get(), d_dw.get(), d_db.get(), d_dout.get(),
                             d_inp.get(), d_w.get(), d_mean.get(), d_rstd.get(), c.M, c.C);
    const double scale = c.C > 1 ? 1.0 : 1e3;
    EXPECT_TRUE(all_close(d_dinp.download(), dinp, 1e-4, 1e-4 * scale));
    EXPECT_TRUE(all_close(d_dw.download(), dw, 1e-4, 1e-4));
    EXPECT_TRUE(all_close(d_db.download(), db, 1e-4, 1e-4));

    Vec rms_out, rms_rstd;
    reference::rmsnorm_forward(rms_out, rms_rstd, inp, w, c.M, c.C, 1e-5);
    cuda::rmsnorm_forward(ctx_, d_out.get(), d_rstd.get(), d_inp.get(), d_w.get(), c.M, c.C);
    EXPECT_TRUE(all_close(d_out.download(), rms_out, kFloatRtol, kFloatAtol));
    Vec rms_dinp(n), rms_dw(c.C, 0.0);
    cpu::rmsnorm_backward<double>(rms_dinp.data(), rms_dw.data(), dout.data(), inp.data(),
                                  w.data(), rms_rstd.data(), c.M, c.C);
    DeviceBuffer<float> d_rms_dw(std::vector<float>(c.C, 0.0f));
    cuda::rmsnorm_backward(ctx_, d_dinp.get(), d_rms_dw.get(), d_dout.get(), d_inp.get(),
                           d_w.get(), d_rstd.get(), c.M, c.C);
    EXPECT_TRUE(all_close(d_dinp.download(), rms_dinp, 1e-4, 1e-4));
    EXPECT_TRUE(all_close(d_rms_dw.download(), rms_dw, 1e-4, 1e-4));
  }
}

TEST_F(CudaKernels, ActivationsMatchReferences) {
  const Vec x = random_vector(100003, 111, -6.0, 6.0), dout = random_vector(x.size(), 112);
  DeviceBuffer<float> d_x(floats(x)), d_out(x.size()), d_dout(floats(dout)), d_dx(x.size());
  cuda::gelu_forward(ctx_, d_out.get(), d_x.get(), x.size());
  EXPECT_TRUE(all_close(d_out.download(), reference::gelu_forward(x), kFloatRtol, kFloatAtol));
  Vec dx(x.size());
  cpu::gelu_backward<double>(dx.data(), x.data(), dout.data(), x.size());
  cuda::gelu_backward(ctx_, d_dx.get(), d_x.get(), d_dout.get(), x.size());
  EXPECT_TRUE(all_close(d_dx.download(), dx, kFloatRtol, kFloatAtol));

  for (const auto& c : cases::kSwiglu) {
    const std::size_t n = static_cast<std::size_t>(c.M) * c.F;
    const Vec inp = random_vector(2 * n, 131, -8.0, 8.0), dy = random_vector(n, 132);
    DeviceBuffer<float> d_inp(floats(inp)), d_y(n), d_dy(floats(dy)), d_dinp(2 * n);
    cuda::swiglu_forward(ctx_, d_y.get(), d_inp.get(), c.M, c.F);
    EXPECT_TRUE(all_close(d_y.download(), reference::swiglu_forward(inp, c.M, c.F), kFloatRtol,
                          kFloatAtol));
    Vec dinp(2 * n);
    cpu::swiglu_backward<double>(dinp.data(), inp.data(), dy.data(), c.M, c.F);
    cuda::swiglu_backward(ctx_, d_dinp.get(), d_inp.get(), d_dy.get(), c.M, c.F);
    EXPECT_TRUE(all_close(d_dinp.download(), dinp, kFloatRtol, kFloatAtol));
  }
}

TEST_F(CudaKernels, RopeMatchesReference) {
  for (const auto& c : cases::kRope) {
    const std::size_t n = static_cast<std::size_t>(c.B) * c.T * (c.Hq + 2 * c.Hkv) * c.D;
    const Vec qkv = random_vector(n, 151);
    DeviceBuffer<float> d_qkv(floats(qkv));
    cuda::rope_forward(ctx_, d_qkv.get(), c.B, c.T, c.Hq, c.Hkv, c.D, c.theta, c.position_offset);
    EXPECT_TRUE(all_close(
        d_qkv.download(),
        reference::rope_forward(qkv, c.B, c.T, c.Hq, c.Hkv, c.D, c.theta, c.position_offset),
        kFloatRtol, kFloatAtol));
    Vec grad = qkv;
    cpu::rope_backward<double>(grad.data(), c.B, c.T, c.Hq, c.Hkv, c.D, c.theta,
                               c.position_offset);
    DeviceBuffer<float> d_grad(floats(qkv));
    cuda::rope_backward(ctx_, d_grad.get(), c.B, c.T, c.Hq, c.Hkv, c.D, c.theta,
                        c.position_offset);
    EXPECT_TRUE(all_close(d_grad.download(), grad, kFloatRtol, kFloatAtol));
  }
}

TEST_F(CudaKernels, EmbeddingMatchesReference) {
  for (const auto& c : cases::kEmbedding) {
    const std::size_t n = static_cast<std::size_t>(c.B) * c.T * c.C;
    const auto tokens = random_tokens(static_cast<std::size_t>(c.B) * c.T, 0, c.V, 171);
    const Vec wte = random_vector(static_cast<std::size_t>(c.V) * c.C, 172);
    const Vec wpe = c.positions ? random_vector(static_cast<std::size_t>(c.T) * c.C, 173) : Vec{};
    const Vec dout = random_vector(n, 174);
    DeviceBuffer<std::int32_t> d_tokens(tokens);
    DeviceBuffer<float> d_wte(floats(wte)), d_wpe(floats(wpe)), d_out(n), d_dout(floats(dout));
    cuda::embedding_forward(ctx_, d_out.get(), d_tokens.get(), d_wte.get(),
                            c.positions ? d_wpe.get() : nullptr, c.B, c.T, c.C, 0, c.V);
    EXPECT_TRUE(all_close(d_out.download(),
                          reference::embedding_forward(tokens, wte, wpe, c.B, c.T, c.C), 0.0,
                          1e-6));
    Vec dwte(wte.size(), 0.0), dwpe(static_cast<std::size_t>(c.T) * c.C, 0.0);
    cpu::embedding_backward<double>(dwte.data(), dwpe.data(), dout.data(), tokens.data(), c.B,
                                    c.T, c.C, 0, c.V);
    DeviceBuffer<float> d_dwte(std::vector<float>(wte.size(), 0.0f));
    DeviceBuffer<float> d_dwpe(std::vector<float>(dwpe.size(), 0.0f));
    cuda::embedding_backward(ctx_, d_dwte.get(), d_dwpe.get(), d_dout.get(), d_tokens.get(), c.B,
                             c.T, c.C, 0, c.V);
    EXPECT_TRUE(all_close(d_dwte.download(), dwte, 1e-5, 1e-5));
    EXPECT_TRUE(all_close(d_dwpe.download(), dwpe, 1e-5, 1e-5));
  }
}

TEST_F(CudaKernels, CrossEntropyFullAndVocabParallelMatchReference) {
  for (const auto& c : cases::kShardedCrossEntropy) {
    const std::size_t n = static_cast<std::size_t>(c.M) * c.V;
    Vec logits = random_vector(n, 231, -8.0, 8.0);
    auto targets = random_tokens(c.M, 0, c.valid_vocab, 232);
    targets[0] = -1;
    const double dloss = 1.0 / std::max<int>(1, c.M - 1);
    const Vec losses = reference::cross_entropy_losses(logits, targets, c.M, c.V, c.valid_vocab);
    const Vec dlogits =
        reference::cross_entropy_dlogits(logits, targets, dloss, c.M, c.V, c.valid_vocab);
    DeviceBuffer<std::int32_t> d_targets(targets);
    DeviceBuffer<float> d_logits(floats(logits)), d_losses(c.M), d_lse(c.M);
    cuda::cross_entropy_forward(ctx_, d_losses.get(), d_lse.get(), d_logits.get(),
                                d_targets.get(), c.M, c.V, c.valid_vocab);
    EXPECT_TRUE(all_close(d_losses.download(), losses, kFloatRtol, kFloatAtol));
    cuda::cross_entropy_backward(ctx_, d_logits.get(), d_logits.get(), d_lse.get(),
                                 d_targets.get(), static_cast<float>(dloss), c.M, c.V,
                                 c.valid_vocab);
    EXPECT_TRUE(all_close(d_logits.download(), dlogits, kFloatRtol, 1e-6));

    // Vocab-parallel over the case's shards, reductions done on the host.
    std::vector<float> global_max(c.M, -INFINITY), global_sum(c.M, 0.0f), global_target(c.M, 0.0f);
    std::vector<std::vector<float>> shards;
    std::vector<int> starts;
    int start = 0;
    for (int size : c.shard_sizes) {
      std::vector<float> s(static_cast<std::size_t>(c.M) * size);
      for (int i = 0; i < c.M; ++i)
        for (int j = 0; j < size; ++j)
          s[static_cast<std::size_t>(i) * size + j] =
              static_cast<float>(logits[static_cast<std::size_t>(i) * c.V + start + j]);
      shards.push_back(std::move(s));
      starts.push_back(start);
      start += size;
    }
    for (std::size_t s = 0; s < shards.size(); ++s) {
      DeviceBuffer<float> d_shard(shards[s]), d_part(c.M);
      cuda::vocab_parallel_max(ctx_, d_part.get(), d_shard.get(), c.M, c.shard_sizes[s],
                               starts[s], c.valid_vocab);
      const auto part = d_part.download();
      for (int i = 0; i < c.M; ++i) global_max[i] = std::max(global_max[i], part[i]);
    }
    DeviceBuffer<float> d_global_max(global_max);
    for (std::size_t s = 0; s < shards.size(); ++s) {
      DeviceBuffer<float> d_shard(shards[s]), d_part(c.M);
      cuda::vocab_parallel_sum_exp(ctx_, d_part.get(), d_shard.get(), d_global_max.get(), c.M,
                                   c.shard_sizes[s], starts[s], c.valid_vocab);
      auto part = d_part.download();
      for (int i = 0; i < c.M; ++i) global_sum[i] += part[i];
      cuda::vocab_parallel_target_logit(ctx_, d_part.get(), d_shard.get(), d_targets.get(), c.M,
                                        c.shard_sizes[s], starts[s]);
      part = d_part.download();
      for (int i = 0; i < c.M; ++i) global_target[i] += part[i];
    }
    DeviceBuffer<float> d_global_sum(global_sum), d_global_target(global_target);
    cuda::vocab_parallel_loss(ctx_, d_losses.get(), d_lse.get(), d_global_max.get(),
                              d_global_sum.get(), d_global_target.get(), d_targets.get(), c.M);
    EXPECT_TRUE(all_close(d_losses.download(), losses, kFloatRtol, kFloatAtol));
    for (std::size_t s = 0; s < shards.size(); ++s) {
      DeviceBuffer<float> d_shard(shards[s]);
      cuda::vocab_parallel_backward(ctx_, d_shard.get(), d_shard.get(), d_lse.get(),
                                    d_targets.get(), static_cast<float>(dloss), c.M,
                                    c.shard_sizes[s], starts[s], c.valid_vocab);
      const auto grad = d_shard.download();
      Vec expected(grad.size());
      for (int i = 0; i < c.M; ++i)
        for (int j = 0; j < c.shard_sizes[s]; ++j)
          expected[static_cast<std::size_t>(i) * c.shard_sizes[s] + j] =
              dlogits[static_cast<std::size_t>(i) * c.V + starts[s] + j];
      EXPECT_TRUE(all_close(grad, expected, kFloatRtol, 1e-6));
    }
  }
}

TEST_F(CudaKernels, ElementwiseAndAdamWMatchReferences) {
  const std::size_t n = 50003;
  const Vec a = random_vector(n, 241), b = random_vector(n, 242);
  DeviceBuffer<float> d_a(floats(a)), d_b(floats(b)), d_out(n);
  cuda::residual_forward(ctx_, d_out.get(), d_a.get(), d_b.get(), n);
  Vec sum(n);
  for (std::size_t i = 0; i < n; ++i) sum[i] = a[i] + b[i];
  EXPECT_TRUE(all_close(d_out.download(), sum, 1e-7, 1e-7));
  DeviceBuffer<double> d_result(1);
  cuda::sum_of_squares(ctx_, d_result.get(), d_a.get(), n);
  double expected = 0.0;
  for (float v : floats(a)) expected += static_cast<double>(v) * v;
  EXPECT_NEAR(d_result.download()[0], expected, expected * 1e-12);

  Vec param = random_vector(n, 261), m(n, 0.0), v(n, 0.0);
  DeviceBuffer<float> d_param(floats(param)), d_m(std::vector<float>(n, 0.0f)),
      d_v(std::vector<float>(n, 0.0f));
  const float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, wd = 0.1f;
  for (int step = 1; step <= 4; ++step) {
    const Vec grad = random_vector(n, 270 + step, -0.1, 0.1);
    DeviceBuffer<float> d_grad(floats(grad));
    reference::adamw_update(param, grad, m, v, lr, beta1, beta2, eps, wd, step);
    cuda::adamw_update(ctx_, d_param.get(), d_grad.get(), d_m.get(), d_v.get(), n, lr, beta1,
                       beta2, eps, wd, step);
    EXPECT_TRUE(all_close(d_param.download(), param, 1e-6, lr * 1e-3));
  }
}

}  // namespace
}  // namespace tandem::kernels
