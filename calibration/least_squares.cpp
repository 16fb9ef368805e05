#include "calibration/least_squares.hpp"

#include <cmath>
#include <limits>

#include <spdlog/spdlog.h>

namespace tandem::calibration {

namespace {

Eigen::MatrixXd numerical_jacobian(const ResidualFunction& residuals, const Eigen::VectorXd& x,
                                   const Eigen::VectorXd& at_x, double relative_step) {
  Eigen::MatrixXd jacobian(at_x.size(), x.size());
  for (Eigen::Index j = 0; j < x.size(); ++j) {
    Eigen::VectorXd shifted = x;
    const double step = relative_step * std::max(1.0, std::abs(x[j]));
    shifted[j] += step;
    jacobian.col(j) = (residuals(shifted) - at_x) / step;
  }
  return jacobian;
}

}  // namespace

Eigen::VectorXd LeastSquaresResult::standard_errors() const {
  const Eigen::Index m = residuals.size();
  const Eigen::Index n = x.size();
  Eigen::VectorXd errors = Eigen::VectorXd::Constant(n, std::numeric_limits<double>::quiet_NaN());
  if (m <= n || jacobian.rows() != m) return errors;
  const Eigen::MatrixXd normal = jacobian.transpose() * jacobian;
  Eigen::FullPivLU<Eigen::MatrixXd> lu(normal);
  if (!lu.isInvertible()) return errors;
  const double variance = residuals.squaredNorm() / static_cast<double>(m - n);
  const Eigen::MatrixXd covariance = lu.inverse() * variance;
  for (Eigen::Index i = 0; i < n; ++i) errors[i] = std::sqrt(std::max(0.0, covariance(i, i)));
  return errors;
}

LeastSquaresResult levenberg_marquardt(const ResidualFunction& residuals, const Eigen::VectorXd& start,
                                       const LeastSquaresOptions& options) {
  LeastSquaresResult result;
  Eigen::VectorXd x = start;
  Eigen::VectorXd r = residuals(x);
  double cost = 0.5 * r.squaredNorm();
  result.initial_cost = cost;
  double damping = options.initial_damping;
  Eigen::MatrixXd jacobian = numerical_jacobian(residuals, x, r, options.relative_step);
  int iteration = 0;
  bool converged = false;
  for (; iteration < options.max_iterations && !converged; ++iteration) {
    const Eigen::MatrixXd normal = jacobian.transpose() * jacobian;
    const Eigen::VectorXd gradient = jacobian.transpose() * r;
    if (gradient.lpNorm<Eigen::Infinity>() < options.tolerance) break;
    bool improved = false;
    for (int attempt = 0; attempt < 30 && !improved; ++attempt) {
      Eigen::MatrixXd damped = normal;
      for (Eigen::Index i = 0; i < damped.rows(); ++i) damped(i, i) += damping * std::max(normal(i, i), 1e-12);
      const Eigen::VectorXd step = damped.ldlt().solve(-gradient);
      if (!step.allFinite()) {
        damping *= 10;
        continue;
      }
      const Eigen::VectorXd candidate = x + step;
      const Eigen::VectorXd candidate_r = residuals(candidate);
      const double candidate_cost = 0.5 * candidate_r.squaredNorm();
      if (std::isfinite(candidate_cost) && candidate_cost < cost) {
        const double decrease = cost - candidate_cost;
        x = candidate;
        r = candidate_r;
        cost = candidate_cost;
        damping = std::max(damping / 3, 1e-12);
        improved = true;
        if (options.verbose) spdlog::debug("least squares: iteration {} cost {:.6g} damping {:.2g}", iteration, cost, damping);
        converged = decrease < options.tolerance * std::max(cost, 1e-30) || step.norm() < options.tolerance;
      } else {
        damping *= 4;
      }
    }
    if (!improved) break;
    jacobian = numerical_jacobian(residuals, x, r, options.relative_step);
  }
  result.x = x;
  result.final_cost = cost;
  result.iterations = iteration;
  result.residuals = r;
  result.jacobian = jacobian;
  return result;
}

}  // namespace tandem::calibration
