#include "kernels/cpu/attention.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/cpu/detail/eigen_views.hpp"
#include "kernels/cpu/detail/index_order.hpp"
#include "strategy/cpu_threading.hpp"

namespace tandem::kernels::cpu {
namespace {

using detail::AlignedScratch;
using detail::ConstStridedMatrixView;
using detail::StridedMatrixView;

// Query rows per score block: 64 × T scores stay in L2 (shared with the twin's cost model).
constexpr int kRowBlock = strategy::cpu_threading::kAttentionQueryBlock;

// Score scratch (kRowBlock rows of up to T keys) in the kernel's own cache-line aligned memory,
// each row padded to whole cache lines: every row then starts aligned, so where Eigen's exp and
// sums switch between SIMD and scalar code depends on the key index only — not on where the
// heap put the scratch (detail/index_order.hpp).
template <typename Scalar>
struct ScoreScratch {
  explicit ScoreScratch(int T)
      : stride(detail::padded_row<Scalar>(T)), buffer(static_cast<std::size_t>(kRowBlock) * stride) {}
  StridedMatrixView<Scalar> view(int rows, int keys) const {
    return StridedMatrixView<Scalar>(buffer.data(), rows, keys, Eigen::OuterStride<>(stride));
  }
  Eigen::Index stride;
  AlignedScratch<Scalar> buffer;
};

struct Geometry {
  int B, T, Hq, Hkv, D, group;
  std::int64_t qkv_stride;  // elements between consecutive tokens in qkv
  std::int64_t out_stride;  // elements between consecutive tokens in out
  std::int64_t q_offset(int h) const { return static_cast<std::int64_t>(h) * D; }
  std::int64_t k_offset(int g) const { return static_cast<std::int64_t>(Hq + g) * D; }
  std::int64_t v_offset(int g) const { return static_cast<std::int64_t>(Hq + Hkv + g) * D; }
  std::int64_t batch_qkv(int b) const { return static_cast<std::int64_t>(b) * T * qkv_stride; }
  std::int64_t batch_out(int b) const { return static_cast<std::int64_t>(b) * T * out_stride; }
};

Geometry make_geometry(int B, int T, int Hq, int Hkv, int D) {
  assert(B >= 1 && T >= 1 && Hq >= 1 && Hkv >= 1 && D >= 1 && Hq % Hkv == 0);
  Geometry g{B, T, Hq, Hkv, D, Hq / Hkv, static_cast<std::int64_t>(Hq + 2 * Hkv) * D,
             static_cast<std::int64_t>(Hq) * D};
  return g;
}

// Forward for query rows [i0, i0+rows) of head h in batch b, scores in `scratch`.
template <typename Scalar>
void forward_block(Scalar* out, Scalar* logsumexp, const Scalar* qkv, const Geometry& g, int b,
                   int h, int i0, const ScoreScratch<Scalar>& scratch) {
  const int rows = std::min(kRowBlock, g.T - i0);
  const int keys = i0 + rows;
  const int kv = h / g.group;
  const Scalar scale = Scalar(1) / std::sqrt(static_cast<Scalar>(g.D));
  const Scalar* base = qkv + g.batch_qkv(b);
  const Eigen::OuterStride<> qkv_stride(g.qkv_stride);
  ConstStridedMatrixView<Scalar> q(base + i0 * g.qkv_stride + g.q_offset(h), rows, g.D, qkv_stride);
  ConstStridedMatrixView<Scalar> k(base + g.k_offset(kv), keys, g.D, qkv_stride);
  ConstStridedMatrixView<Scalar> v(base + g.v_offset(kv), keys, g.D, qkv_stride);
  StridedMatrixView<Scalar> s = scratch.view(rows, keys);
  s.noalias() = (scale * q) * k.transpose();
  Scalar* lse = logsumexp + (static_cast<std::int64_t>(b) * g.Hq + h) * g.T + i0;
  for (int r = 0; r < rows; ++r) {
    const int visible = i0 + r + 1;
    auto row = s.row(r).head(visible).array();
    const Scalar max = row.maxCoeff();
    row = (row - max).exp();
    const Scalar sum = row.sum();
    row *= Scalar(1) / sum;
    s.row(r).tail(keys - visible).setZero();
    lse[r] = max + std::log(sum);
  }
  StridedMatrixView<Scalar> o(out + g.batch_out(b) + i0 * g.out_stride + g.q_offset(h), rows, g.D,
                              Eigen::OuterStride<>(g.out_stride));
  o.noalias() = s * v;
}

// Backward of query head h in batch b over all its row blocks: writes dq (that head's rows of
// dqkv) and ACCUMULATES into dk, dv (T×D views with row stride dkv_stride). The probabilities
// and their gradient live in p_scratch and dp_scratch.
template <typename Scalar>
void backward_head(Scalar* dqkv, Scalar* dk_base, Scalar* dv_base, std::int64_t dkv_stride,
                   const Scalar* dout, const Scalar* qkv, const Scalar* out,
                   const Scalar* logsumexp, const Geometry& g, int b, int h,
                   const ScoreScratch<Scalar>& p_scratch, const ScoreScratch<Scalar>& dp_scratch) {
  const int kv = h / g.group;
  const Scalar scale = Scalar(1) / std::sqrt(static_cast<Scalar>(g.D));
  const Scalar* base = qkv + g.batch_qkv(b);
  const Eigen::OuterStride<> qkv_stride(g.qkv_stride);
  const Eigen::OuterStride<> out_stride(g.out_stride);
  const Eigen::OuterStride<> dkv(dkv_stride);
  const Scalar* lse = logsumexp + (static_cast<std::int64_t>(b) * g.Hq + h) * g.T;
  for (int i0 = 0; i0 < g.T; i0 += kRowBlock) {
    const int rows = std::min(kRowBlock, g.T - i0);
    const int keys = i0 + rows;
    const std::int64_t q_row0 = g.batch_qkv(b) + i0 * g.qkv_stride;
    const std::int64_t o_row0 = g.batch_out(b) + i0 * g.out_stride + g.q_offset(h);
    ConstStridedMatrixView<Scalar> q(base + i0 * g.qkv_stride + g.q_offset(h), rows, g.D,
                                     qkv_stride);
    ConstStridedMatrixView<Scalar> k(base + g.k_offset(kv), keys, g.D, qkv_stride);
    ConstStridedMatrixView<Scalar> v(base + g.v_offset(kv), keys, g.D, qkv_stride);
    ConstStridedMatrixView<Scalar> o(out + o_row0, rows, g.D, out_stride);
    ConstStridedMatrixView<Scalar> dO(dout + o_row0, rows, g.D, out_stride);
    StridedMatrixView<Scalar> dq(dqkv + q_row0 + g.q_offset(h), rows, g.D, qkv_stride);
    StridedMatrixView<Scalar> dk(dk_base, keys, g.D, dkv);
    StridedMatrixView<Scalar> dv(dv_base, keys, g.D, dkv);
    StridedMatrixView<Scalar> p = p_scratch.view(rows, keys);
    StridedMatrixView<Scalar> dp = dp_scratch.view(rows, keys);

    // Recompute the probabilities from the saved log-sum-exp.
    p.noalias() = (scale * q) * k.transpose();
    for (int r = 0; r < rows; ++r) {
      const int visible = i0 + r + 1;
      p.row(r).head(visible).array() = (p.row(r).head(visible).array() - lse[i0 + r]).exp();
      p.row(r).tail(keys - visible).setZero();
    }
    dv.noalias() += p.transpose() * dO;
    dp.noalias() = dO * v.transpose();
    // dS = P ∘ (dP − rowsum(dO ∘ O)); masked entries stay 0 because P is 0 there. (The dot
    // product is a reduction over an expression: Eigen sums it in index order.)
    for (int r = 0; r < rows; ++r) {
      const Scalar row_dot = dO.row(r).dot(o.row(r));
      dp.row(r).array() = p.row(r).array() * (dp.row(r).array() - row_dot);
    }
    dq.noalias() = (scale * dp) * k;
    dk.noalias() += (scale * dp).transpose() * q;
  }
}

}  // namespace

template <typename Scalar>
void attention_forward(Scalar* out, Scalar* logsumexp, const Scalar* qkv, int B, int T, int Hq,
                       int Hkv, int D) {
  const Geometry g = make_geometry(B, T, Hq, Hkv, D);
  const int blocks = (T + kRowBlock - 1) / kRowBlock;
  const std::int64_t tasks = static_cast<std::int64_t>(B) * Hq * blocks;
  const std::int64_t work = static_cast<std::int64_t>(B) * Hq * T * T * D;
  int threads = detail::loop_threads(work);
  if (threads > tasks) threads = static_cast<int>(tasks);
#pragma omp parallel num_threads(threads)
  {
    const ScoreScratch<Scalar> scores(T);
    // Later row blocks see more keys: hand them out first and dynamically.
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t task = 0; task < tasks; ++task) {
      const int block = blocks - 1 - static_cast<int>(task % blocks);
      const std::int64_t bh = task / blocks;
      forward_block(out, logsumexp, qkv, g, static_cast<int>(bh / Hq), static_cast<int>(bh % Hq),
                    block * kRowBlock, scores);
    }
  }
}

template <typename Scalar>
void attention_backward(Scalar* dqkv, const Scalar* dout, const Scalar* qkv, const Scalar* out,
                        const Scalar* logsumexp, int B, int T, int Hq, int Hkv, int D) {
  const Geometry g = make_geometry(B, T, Hq, Hkv, D);
  const std::int64_t work = static_cast<std::int64_t>(B) * Hq * T * T * D;
  const int max_threads = detail::loop_threads(work);
  const std::int64_t kv_tasks = static_cast<std::int64_t>(B) * Hkv;

  if (g.group == 1 || kv_tasks >= max_threads) {
    // One task per (batch, kv head): it owns that head's dk, dv and the dq of its query heads.
    const int threads = static_cast<int>(std::min<std::int64_t>(max_threads, kv_tasks));
#pragma omp parallel num_threads(threads)
    {
      const ScoreScratch<Scalar> p(T), dp(T);
#pragma omp for schedule(dynamic, 1)
      for (std::int64_t task = 0; task < kv_tasks; ++task) {
        const int b = static_cast<int>(task / Hkv);
        const int kv = static_cast<int>(task % Hkv);
        Scalar* dk = dqkv + g.batch_qkv(b) + g.k_offset(kv);
        Scalar* dv = dqkv + g.batch_qkv(b) + g.v_offset(kv);
        StridedMatrixView<Scalar>(dk, T, D, Eigen::OuterStride<>(g.qkv_stride)).setZero();
        StridedMatrixView<Scalar>(dv, T, D, Eigen::OuterStride<>(g.qkv_stride)).setZero();
        for (int h = kv * g.group; h < (kv + 1) * g.group; ++h) {
          backward_head(dqkv, dk, dv, g.qkv_stride, dout, qkv, out, logsumexp, g, b, h, p, dp);
        }
      }
    }
    return;
  }

  // Few kv heads (GQA with B·Hkv < threads): one task per (batch, query head), each accumulating
  // its dk, dv into private scratch, then summed over the group.
  const std::int64_t q_tasks = static_cast<std::int64_t>(B) * Hq;
  const std::size_t head_values = static_cast<std::size_t>(T) * D;
  std::vector<Scalar> scratch(static_cast<std::size_t>(q_tasks) * 2 * head_values, Scalar(0));
  const int threads = static_cast<int>(std::min<std::int64_t>(max_threads, q_tasks));
#pragma omp parallel num_threads(threads)
  {
    const ScoreScratch<Scalar> p(T), dp(T);
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t task = 0; task < q_tasks; ++task) {
      Scalar* dk = scratch.data() + static_cast<std::size_t>(task) * 2 * head_values;
      backward_head(dqkv, dk, dk + head_values, D, dout, qkv, out, logsumexp, g,
                    static_cast<int>(task / Hq), static_cast<int>(task % Hq), p, dp);
    }
#pragma omp for schedule(static)
    for (std::int64_t task = 0; task < kv_tasks; ++task) {
      const int b = static_cast<int>(task / Hkv);
      const int kv = static_cast<int>(task % Hkv);
      StridedMatrixView<Scalar> dk(dqkv + g.batch_qkv(b) + g.k_offset(kv), T, D,
                                   Eigen::OuterStride<>(g.qkv_stride));
      StridedMatrixView<Scalar> dv(dqkv + g.batch_qkv(b) + g.v_offset(kv), T, D,
                                   Eigen::OuterStride<>(g.qkv_stride));
      dk.setZero();
      dv.setZero();
      for (int h = kv * g.group; h < (kv + 1) * g.group; ++h) {
        const Scalar* head =
            scratch.data() + (static_cast<std::size_t>(b) * Hq + h) * 2 * head_values;
        dk += detail::ConstMatrixView<Scalar>(head, T, D);
        dv += detail::ConstMatrixView<Scalar>(head + head_values, T, D);
      }
    }
  }
}

template void attention_forward<float>(float*, float*, const float*, int, int, int, int, int);
template void attention_forward<double>(double*, double*, const double*, int, int, int, int, int);
template void attention_backward<float>(float*, const float*, const float*, const float*,
                                        const float*, int, int, int, int, int);
template void attention_backward<double>(double*, const double*, const double*, const double*,
                                         const double*, int, int, int, int, int);

}  // namespace tandem::kernels::cpu
