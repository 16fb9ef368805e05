#pragma once
// Nonlinear least squares for the fits: Levenberg-Marquardt (Eigen) with a forward-difference
// Jacobian. Minimises 0.5·|r(x)|² over x; the callers map bounded parameters (efficiencies,
// latencies, rates) onto unconstrained x themselves.

#include <functional>

#include <Eigen/Dense>

namespace tandem::calibration {

struct LeastSquaresOptions {
  int max_iterations = 100;
  double relative_step = 1e-4;     // finite-difference step, relative to max(|x_i|, 1)
  double tolerance = 1e-10;        // stop when the cost or the step stops changing
  double initial_damping = 1e-3;
  bool verbose = false;            // one line per iteration on spdlog's debug level
};

struct LeastSquaresResult {
  Eigen::VectorXd x;
  double initial_cost = 0;  // 0.5·|r|² at the start
  double final_cost = 0;
  int iterations = 0;
  Eigen::VectorXd residuals;
  Eigen::MatrixXd jacobian;   // at the solution
  // Standard errors of x from (JᵀJ)⁻¹·σ², σ² = |r|² / (m - n) (NaN when m <= n or singular).
  Eigen::VectorXd standard_errors() const;
};

using ResidualFunction = std::function<Eigen::VectorXd(const Eigen::VectorXd&)>;

LeastSquaresResult levenberg_marquardt(const ResidualFunction& residuals, const Eigen::VectorXd& start,
                                       const LeastSquaresOptions& options = {});

}  // namespace tandem::calibration
