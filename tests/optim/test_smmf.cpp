// SMMF against a float64 reference of the reference code's algorithm (OPTIMIZERS.md "SMMF"):
// most-square reshape, rank-1 non-negative factorised moments, 1-bit momentum sign, schedules.
#include "tests/optim/optim_test_support.hpp"

namespace tandem::optim_test {
namespace {

struct SmmfReference {
  std::int64_t a = 0, b = 0;
  std::vector<double> p, rm, cm, rv, cv;
  std::vector<bool> sign;
};

void nnmf(const std::vector<double>& matrix, std::int64_t a, std::int64_t b, std::vector<double>& rows,
          std::vector<double>& cols) {
  rows.assign(a, 0.0);
  cols.assign(b, 0.0);
  for (std::int64_t i = 0; i < a; ++i)
    for (std::int64_t j = 0; j < b; ++j) rows[i] += matrix[i * b + j], cols[j] += matrix[i * b + j];
  std::vector<double>& shorter = a < b ? rows : cols;
  double total = 0;
  for (double x : shorter) total += x;
  if (total != 0)
    for (double& x : shorter) x /= total;
}

void reference_step(SmmfReference& r, const HostTensor& tensor, int t, double lr, double wd, double beta,
                    double eps, double decay_rate, double growth) {
  const std::int64_t a = r.a, b = r.b;
  const double lambda = tensor.role == ParameterRole::Vector ? 0.0 : wd;
  std::vector<double> m(a * b), v(a * b), abs_m(a * b);
  for (std::int64_t i = 0; i < a; ++i) {
    for (std::int64_t j = 0; j < b; ++j) {
      const double magnitude = r.rm[i] * r.cm[j];
      m[i * b + j] = r.sign[i * b + j] ? magnitude : -magnitude;
      v[i * b + j] = r.rv[i] * r.cv[j];
    }
  }
  const double beta_m = beta * std::pow(growth, t - 1.0);
  const double beta_v = 1.0 - std::pow(double(t), decay_rate);
  for (std::int64_t k = 0; k < a * b; ++k) {
    const double g = tensor.grad[k];
    m[k] = beta_m * m[k] + (1 - beta_m) * g;
    v[k] = beta_v * v[k] + (1 - beta_v) * g * g;
    r.sign[k] = m[k] > 0;
    abs_m[k] = std::fabs(m[k]);
    r.p[k] *= 1 - lr * lambda;
    r.p[k] -= lr * m[k] / (std::sqrt(v[k]) + eps);
  }
  nnmf(abs_m, a, b, r.rm, r.cm);
  nnmf(v, a, b, r.rv, r.cv);
}

TEST(Smmf, MatchesFloat64ReferenceStepByStep) {
  const double lr = 1e-3, wd = 0.1, beta = 0.9, eps = 1e-8, decay_rate = -0.8, growth = 0.999;
  auto optimizer = engine::optim::make_optimizer(resolve("smmf", {{"weight_decay", "0.1"}}));
  std::vector<HostTensor> tensors{
      HostTensor("layers.0.mlp.fc.weight", 6, 10, ParameterRole::HiddenMatrix, true, 81),  // 60 -> 10x6
      HostTensor("layers.0.attn.proj.weight", 4, 4, ParameterRole::HiddenMatrix, true, 82),  // 16 -> 4x4
      HostTensor("layers.0.ln.gain", 12, 1, ParameterRole::Vector, false, 83),             // 12 -> 4x3
      HostTensor("layers.0.ln.bias", 13, 1, ParameterRole::Vector, false, 84)};            // 13 -> 13x1
  const std::pair<std::int64_t, std::int64_t> shapes[] = {{10, 6}, {4, 4}, {4, 3}, {13, 1}};
  std::vector<SmmfReference> refs(tensors.size());
  for (std::size_t k = 0; k < tensors.size(); ++k) {
    refs[k].a = shapes[k].first;
    refs[k].b = shapes[k].second;
    EXPECT_EQ(strategy::most_square_factorization(tensors[k].rows * tensors[k].cols), shapes[k]);
    refs[k].p = to_double(tensors[k].value);
    refs[k].rm.assign(refs[k].a, 0.0);
    refs[k].rv.assign(refs[k].a, 0.0);
    refs[k].cm.assign(refs[k].b, 0.0);
    refs[k].cv.assign(refs[k].b, 0.0);
    refs[k].sign.assign(refs[k].a * refs[k].b, false);
  }
  for (int t = 1; t <= 6; ++t) {
    const double eta = lr * (1.0 - 0.1 * (t - 1));
    for (std::size_t k = 0; k < tensors.size(); ++k) {
      fill_normal(tensors[k].grad, 300 + 11 * t + k, 0.05);
      if (t == 3) std::fill(tensors[k].grad.begin(), tensors[k].grad.end(), 0.0f);  // zero gradient
      if (t == 1) tensors[k].grad[1] = 0.0f;
      reference_step(refs[k], tensors[k], t, eta, wd, beta, eps, decay_rate, growth);
    }
    auto params = views(tensors);
    optimizer->step(params, {t, eta, nullptr});
    for (std::size_t k = 0; k < tensors.size(); ++k) {
      expect_close(tensors[k].value, refs[k].p, 1e-5, 2e-6, tensors[k].name + " step " + std::to_string(t));
    }
  }
}

TEST(Smmf, UnfactorisedVectorsWhenVectorReshapeIsOff) {
  const double lr = 1e-3, beta = 0.9, eps = 1e-8, decay_rate = -0.8, growth = 0.999;
  auto optimizer = engine::optim::make_optimizer(resolve("smmf", {{"vector_reshape", "false"}}));
  HostTensor gain("layers.0.ln.gain", 12, 1, ParameterRole::Vector, false, 83);
  std::vector<double> p = to_double(gain.value), m(12, 0.0), v(12, 0.0);
  for (int t = 1; t <= 3; ++t) {
    fill_normal(gain.grad, 40 + t, 0.05);
    const double beta_m = beta * std::pow(growth, t - 1.0), beta_v = 1.0 - std::pow(double(t), decay_rate);
    for (std::size_t i = 0; i < 12; ++i) {
      const double g = gain.grad[i];
      m[i] = beta_m * m[i] + (1 - beta_m) * g;
      v[i] = beta_v * v[i] + (1 - beta_v) * g * g;
      p[i] -= lr * m[i] / (std::sqrt(v[i]) + eps);
    }
    auto param = gain.view();
    optimizer->step(std::span(&param, 1), {t, lr, nullptr});
    expect_close(gain.value, p, 1e-5, 2e-6, "step " + std::to_string(t));
  }
  EXPECT_EQ(optimizer->state_bytes(), 2u * 12u * sizeof(float));
}

}  // namespace
}  // namespace tandem::optim_test
