#pragma once
// Muon's quintic Newton-Schulz orthogonalisation (KellerJordan/Muon zeropower_via_newtonschulz5;
// OPTIMIZERS.md "Muon"), in fp32 with Eigen:
//   (a, b, c) = (3.4445, -4.7750, 2.0315)
//   X = G ; if rows > cols: X = X^T          (so X X^T is the smaller Gram matrix)
//   X /= (||X||_F + 1e-7)
//   steps times: A = X X^T ; B = b*A + c*A*A ; X = a*X + B*X
//   transpose back if transposed
// The result's singular values land roughly in (0.5, 1.5), not exactly 1.

#include <cstdint>

namespace tandem::engine::optim {

inline constexpr double kNewtonSchulzA = 3.4445;
inline constexpr double kNewtonSchulzB = -4.7750;
inline constexpr double kNewtonSchulzC = 2.0315;

// g and out: rows x cols, row-major; they may be the same buffer.
void newton_schulz(const float* g, std::int64_t rows, std::int64_t cols, int steps, float* out);

}  // namespace tandem::engine::optim
