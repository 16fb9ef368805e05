#include "engine/optim/newton_schulz.hpp"

#include <cmath>
#include <utility>

#include <Eigen/Dense>

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
  Matrix gram(r, r), polynomial(r, r), next(r, c);
  for (int i = 0; i < steps; ++i) {
    gram.noalias() = x * x.transpose();
    polynomial.noalias() = cc * (gram * gram);
    polynomial += b * gram;
    next.noalias() = polynomial * x;
    next += a * x;
    std::swap(x, next);
  }
  if (transposed) {
    Eigen::Map<Matrix>(out, cols, rows) = x;
  } else {
    Eigen::Map<RowMatrix>(out, rows, cols) = x;
  }
}

}  // namespace tandem::engine::optim
