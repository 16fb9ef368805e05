#include "kernels/cpu/activation.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/cpu/detail/eigen_views.hpp"
#include "kernels/cpu/detail/index_order.hpp"

namespace tandem::kernels::cpu {
namespace {


constexpr std::size_t kChunk = 4096;  // elements per vectorized chunk

template <typename Scalar>
constexpr Scalar kGeluScale = Scalar(0.7978845608028654);  // sqrt(2/π)
template <typename Scalar>
constexpr Scalar kGeluCubic = Scalar(0.044715);

// Runs body(begin, count) over [0, n) in chunks, in parallel when n is large.
template <typename Body>
void for_chunks(std::size_t n, int cost_per_element, Body body) {
  const std::int64_t chunks = static_cast<std::int64_t>((n + kChunk - 1) / kChunk);
  const int threads = detail::loop_threads(static_cast<std::int64_t>(n) * cost_per_element);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (std::int64_t c = 0; c < chunks; ++c) {
    const std::size_t begin = static_cast<std::size_t>(c) * kChunk;
    body(begin, std::min(kChunk, n - begin));
  }
}

}  // namespace

template <typename Scalar>
void gelu_forward(Scalar* out, const Scalar* inp, std::size_t n) {
  for_chunks(n, 20, [&](std::size_t begin, std::size_t count) {
    detail::ConstVectorView<Scalar> x(inp + begin, static_cast<Eigen::Index>(count));
    detail::VectorView<Scalar> y(out + begin, static_cast<Eigen::Index>(count));
    y = Scalar(0.5) * x *
        (Scalar(1) + (kGeluScale<Scalar> * (x + kGeluCubic<Scalar> * x.cube())).tanh());
  });
}

template <typename Scalar>
void gelu_backward(Scalar* dinp, const Scalar* inp, const Scalar* dout, std::size_t n,
                   bool accumulate) {
  for_chunks(n, 30, [&](std::size_t begin, std::size_t count) {
    const auto size = static_cast<Eigen::Index>(count);
    detail::ConstVectorView<Scalar> x(inp + begin, size), dy(dout + begin, size);
    detail::VectorView<Scalar> dx(dinp + begin, size);
    const Eigen::Array<Scalar, Eigen::Dynamic, 1> th =
        (kGeluScale<Scalar> * (x + kGeluCubic<Scalar> * x.cube())).tanh();
    const auto grad = Scalar(0.5) * (Scalar(1) + th) +
                      Scalar(0.5) * x * (Scalar(1) - th.square()) * kGeluScale<Scalar> *
                          (Scalar(1) + Scalar(3) * kGeluCubic<Scalar> * x.square());
    if (accumulate) {
      dx += grad * dy;
    } else {
      dx = grad * dy;
    }
  });
}

template <typename Scalar>
void swiglu_forward(Scalar* out, const Scalar* inp, int M, int F) {
  const int threads = detail::loop_threads(static_cast<std::int64_t>(M) * F * 20);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int i = 0; i < M; ++i) {
    detail::ConstVectorView<Scalar> gate(inp + static_cast<std::int64_t>(i) * 2 * F, F);
    detail::ConstVectorView<Scalar> up(inp + static_cast<std::int64_t>(i) * 2 * F + F, F);
    // exp through aligned blocks: its SIMD/scalar split follows the index, not out's address.
    detail::assign_by_index(out + static_cast<std::int64_t>(i) * F, F, [&](Eigen::Index begin, Eigen::Index count) {
      const auto g = gate.segment(begin, count);
      return g / (Scalar(1) + (-g).exp()) * up.segment(begin, count);
    });
  }
}

template <typename Scalar>
void swiglu_backward(Scalar* dinp, const Scalar* inp, const Scalar* dout, int M, int F,
                     bool accumulate) {
  const int threads = detail::loop_threads(static_cast<std::int64_t>(M) * F * 30);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int i = 0; i < M; ++i) {
    const std::int64_t row = static_cast<std::int64_t>(i) * 2 * F;
    detail::ConstVectorView<Scalar> gate(inp + row, F), up(inp + row + F, F);
    detail::ConstVectorView<Scalar> dy(dout + static_cast<std::int64_t>(i) * F, F);
    detail::VectorView<Scalar> dgate(dinp + row, F), dup(dinp + row + F, F);
    const Eigen::Array<Scalar, Eigen::Dynamic, 1> sig = Scalar(1) / (Scalar(1) + (-gate).exp());
    // d silu(g)/dg = σ(g)·(1 + g·(1 − σ(g)))
    const auto dsilu = sig * (Scalar(1) + gate * (Scalar(1) - sig));
    if (accumulate) {
      dgate += dy * up * dsilu;
      dup += dy * gate * sig;
    } else {
      dgate = dy * up * dsilu;
      dup = dy * gate * sig;
    }
  }
}

#define TANDEM_INSTANTIATE(Scalar)                                                              \
  template void gelu_forward<Scalar>(Scalar*, const Scalar*, std::size_t);                      \
  template void gelu_backward<Scalar>(Scalar*, const Scalar*, const Scalar*, std::size_t, bool); \
  template void swiglu_forward<Scalar>(Scalar*, const Scalar*, int, int);                       \
  template void swiglu_backward<Scalar>(Scalar*, const Scalar*, const Scalar*, int, int, bool);
TANDEM_INSTANTIATE(float)
TANDEM_INSTANTIATE(double)
#undef TANDEM_INSTANTIATE

}  // namespace tandem::kernels::cpu
