#include "engine/optim/newton_schulz.hpp"

#include <cmath>
#include <utility>

#include <Eigen/Dense>

#if defined(TANDEM_OPTIM_USE_KERNELS_MATMUL)
#include <vector>

#include "kernels/cpu/matmul.hpp"
#endif

namespace tandem::engine::optim {

void newton_schulz(const float* g, std::int64_t rows, std::int64_t cols, int steps, float* out) {
  using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
  using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  // A row-major rows x cols buffer read as column-major cols x rows is G^T: the transpose is free.
  const bool transposed = rows > cols;
  const Eigen::Index r = transposed ? cols : rows;
  const Eigen::Index c = transposed ? rows : cols;
  Matrix x(r, c);
  if (transposed) {
    x = Eigen::Map<const Matrix>(g, cols, rows);
  } else {
    x = Eigen::Map<const RowMatrix>(g, rows, cols);
  }
  const double norm = std::sqrt(x.cast<double>().squaredNorm());
  x *= static_cast<float>(1.0 / (norm + 1e-7));

  const float a = static_cast<float>(kNewtonSchulzA);
  const float b = static_cast<float>(kNewtonSchulzB);
  const float cc = static_cast<float>(kNewtonSchulzC);
#if defined(TANDEM_OPTIM_USE_KERNELS_MATMUL)
  // The kernels' matmul (kernels/cpu/matmul.hpp: Eigen split over threads). Row-major:
  // matmul_forward(out, A, B) = A B^T, so X X^T = forward(X, X), A A = forward(A, A) (A is
  // symmetric), and matmul_backward_input(out, P, X) = P X.
  const int ri = static_cast<int>(r), ci = static_cast<int>(c);
  std::vector<float> xs(static_cast<std::size_t>(r * c)), gram(static_cast<std::size_t>(r * r)),
      polynomial(gram.size()), next(xs.size());
  Eigen::Map<RowMatrix>(xs.data(), r, c) = x;
  for (int i = 0; i < steps; ++i) {
    kernels::cpu::matmul_forward<float>(gram.data(), xs.data(), xs.data(), nullptr, ri, ci, ri);
    kernels::cpu::matmul_forward<float>(polynomial.data(), gram.data(), gram.data(), nullptr, ri, ri, ri);
    for (std::size_t k = 0; k < gram.size(); ++k) polynomial[k] = cc * polynomial[k] + b * gram[k];
    kernels::cpu::matmul_backward_input<float>(next.data(), polynomial.data(), xs.data(), ri, ci, ri);
    for (std::size_t k = 0; k < xs.size(); ++k) next[k] += a * xs[k];
    std::swap(xs, next);
  }
  x = Eigen::Map<const RowMatrix>(xs.data(), r, c);
#else
  Matrix gram(r, r), polynomial(r, r), next(r, c);
  for (int i = 0; i < steps; ++i) {
    gram.noalias() = x * x.transpose();
    polynomial.noalias() = cc * (gram * gram);
    polynomial += b * gram;
    next.noalias() = polynomial * x;
    next += a * x;
    std::swap(x, next);
  }
#endif
  if (transposed) {
    Eigen::Map<Matrix>(out, cols, rows) = x;
  } else {
    Eigen::Map<RowMatrix>(out, rows, cols) = x;
  }
}

}  // namespace tandem::engine::optim
