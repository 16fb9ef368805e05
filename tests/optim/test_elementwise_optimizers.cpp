// AdamW (PyTorch), AdamW (HF), Lion and Adan against float64 references written straight from
// OPTIMIZERS.md, step by step: first step, zero-gradient step, scheduled lr, decay only on 2-D.
#include <algorithm>
#include <cmath>

#include "tests/optim/optim_test_support.hpp"

namespace tandem::optim_test {
namespace {

// One hidden matrix (decayed), one embedding (decayed), one vector (never decayed).
std::vector<HostTensor> small_tensors() {
  return {HostTensor("layers.0.mlp.fc.weight", 6, 5, ParameterRole::HiddenMatrix, true, 11),
          HostTensor("embedding.weight", 4, 3, ParameterRole::Embedding, false, 12),
          HostTensor("layers.0.ln.gain", 7, 1, ParameterRole::Vector, false, 13)};
}

// Gradient for step t: random, except step 3 (all zero) and step 1 (a few exact zeros).
void set_gradients(std::vector<HostTensor>& tensors, int t) {
  for (std::size_t k = 0; k < tensors.size(); ++k) {
    HostTensor& tensor = tensors[k];
    fill_normal(tensor.grad, 1000 + 17 * t + k, 0.3);
    if (t == 3) std::fill(tensor.grad.begin(), tensor.grad.end(), 0.0f);
    if (t == 1) tensor.grad[0] = tensor.grad[2] = 0.0f;
  }
}

double scheduled_lr(double peak, int t) { return peak * (1.0 - 0.1 * (t - 1)); }

struct Moments {
  std::vector<double> m, v, d, n, previous;
};

TEST(AdamW, MatchesFloat64ReferenceStepByStep) {
  const double lr = 2e-3, wd = 0.05, b1 = 0.8, b2 = 0.95, eps = 1e-8;
  auto optimizer = engine::optim::make_optimizer(
      resolve("adamw", {{"lr", "2e-3"}, {"weight_decay", "0.05"}, {"beta1", "0.8"}, {"beta2", "0.95"}}));
  ASSERT_EQ(optimizer->name(), "adamw");
  auto tensors = small_tensors();
  std::vector<std::vector<double>> reference;
  std::vector<Moments> moments(tensors.size());
  for (auto& t : tensors) reference.push_back(to_double(t.value));
  for (auto& s : moments) s.m.assign(64, 0), s.v.assign(64, 0);

  for (int t = 1; t <= 5; ++t) {
    set_gradients(tensors, t);
    const double eta = scheduled_lr(lr, t);
    for (std::size_t k = 0; k < tensors.size(); ++k) {
      const double lambda = tensors[k].role == ParameterRole::Vector ? 0.0 : wd;
      for (std::size_t i = 0; i < tensors[k].grad.size(); ++i) {
        const double g = tensors[k].grad[i];
        double& p = reference[k][i];
        double& m = moments[k].m[i];
        double& v = moments[k].v[i];
        p *= 1 - eta * lambda;
        m = b1 * m + (1 - b1) * g;
        v = b2 * v + (1 - b2) * g * g;
        p -= eta / (1 - std::pow(b1, t)) * m / (std::sqrt(v) / std::sqrt(1 - std::pow(b2, t)) + eps);
      }
    }
    auto params = views(tensors);
    optimizer->step(params, {t, eta, nullptr});
    for (std::size_t k = 0; k < tensors.size(); ++k) {
      expect_close(tensors[k].value, reference[k], 1e-5, 1e-6, tensors[k].name + " step " + std::to_string(t));
    }
  }
}

TEST(AdamWHf, MatchesFloat64ReferenceStepByStep) {
  const double lr = 1e-3, wd = 0.1, b1 = 0.9, b2 = 0.999, eps = 1e-6;
  auto optimizer = engine::optim::make_optimizer(resolve("adamw-hf", {{"weight_decay", "0.1"}}));
  auto tensors = small_tensors();
  std::vector<std::vector<double>> reference;
  std::vector<Moments> moments(tensors.size());
  for (auto& t : tensors) reference.push_back(to_double(t.value));
  for (auto& s : moments) s.m.assign(64, 0), s.v.assign(64, 0);
  for (int t = 1; t <= 5; ++t) {
    set_gradients(tensors, t);
    const double eta = scheduled_lr(lr, t);
    for (std::size_t k = 0; k < tensors.size(); ++k) {
      const double lambda = tensors[k].role == ParameterRole::Vector ? 0.0 : wd;
      for (std::size_t i = 0; i < tensors[k].grad.size(); ++i) {
        const double g = tensors[k].grad[i];
        double& p = reference[k][i];
        double& m = moments[k].m[i];
        double& v = moments[k].v[i];
        m = b1 * m + (1 - b1) * g;
        v = b2 * v + (1 - b2) * g * g;
        p -= eta * std::sqrt(1 - std::pow(b2, t)) / (1 - std::pow(b1, t)) * m / (std::sqrt(v) + eps);
        p -= eta * lambda * p;  // decay after the update
      }
    }
    auto params = views(tensors);
    optimizer->step(params, {t, eta, nullptr});
    for (std::size_t k = 0; k < tensors.size(); ++k) {
      expect_close(tensors[k].value, reference[k], 1e-5, 1e-6, tensors[k].name + " step " + std::to_string(t));
    }
  }
}

TEST(Lion, MatchesFloat64ReferenceAndSignOfZeroIsZero) {
  const double lr = 1e-3, wd = 0.2, b1 = 0.9, b2 = 0.99;
  auto optimizer = engine::optim::make_optimizer(resolve("lion", {{"lr", "1e-3"}, {"weight_decay", "0.2"}}));
  auto tensors = small_tensors();
  std::vector<std::vector<double>> reference;
  std::vector<Moments> moments(tensors.size());
  for (auto& t : tensors) reference.push_back(to_double(t.value));
  for (auto& s : moments) s.m.assign(64, 0);
  for (int t = 1; t <= 5; ++t) {
    set_gradients(tensors, t);
    const std::vector<float> vector_before = tensors[2].value;
    const double eta = scheduled_lr(lr, t);
    for (std::size_t k = 0; k < tensors.size(); ++k) {
      const double lambda = tensors[k].role == ParameterRole::Vector ? 0.0 : wd;
      for (std::size_t i = 0; i < tensors[k].grad.size(); ++i) {
        const double g = tensors[k].grad[i];
        double& p = reference[k][i];
        double& m = moments[k].m[i];
        p *= 1 - eta * lambda;
        const double c = b1 * m + (1 - b1) * g;
        p -= eta * (c > 0 ? 1.0 : (c < 0 ? -1.0 : 0.0));
        m = b2 * m + (1 - b2) * g;
      }
    }
    auto params = views(tensors);
    optimizer->step(params, {t, eta, nullptr});
    for (std::size_t k = 0; k < tensors.size(); ++k) {
      expect_close(tensors[k].value, reference[k], 1e-6, 1e-7, tensors[k].name + " step " + std::to_string(t));
    }
    if (t == 1) {
      // m = 0 and g = 0: c = 0, sign(0) = 0, and a vector is not decayed: exactly unchanged.
      EXPECT_EQ(tensors[2].value[0], vector_before[0]);
      EXPECT_EQ(tensors[2].value[2], vector_before[2]);
      EXPECT_NE(tensors[2].value[1], vector_before[1]);
    }
  }
}

void run_adan(const std::string& decay_form, double max_grad_norm) {
  const double lr = 1e-3, wd = 0.02, b1 = 0.98, b2 = 0.92, b3 = 0.99, eps = 1e-8;
  auto optimizer = engine::optim::make_optimizer(resolve(
      "adan", {{"weight_decay", "0.02"}, {"decay_form", decay_form},
               {"max_grad_norm", std::to_string(max_grad_norm)}}));
  auto tensors = small_tensors();
  std::vector<std::vector<double>> reference;
  std::vector<Moments> s(tensors.size());
  for (auto& t : tensors) reference.push_back(to_double(t.value));
  for (auto& x : s) x.m.assign(64, 0), x.d.assign(64, 0), x.n.assign(64, 0), x.previous.assign(64, 0);
  for (int t = 1; t <= 5; ++t) {
    set_gradients(tensors, t);
    // Make step 2's gradient large so that a clip, when asked for, is active.
    if (t == 2) {
      for (auto& tensor : tensors) {
        for (float& g : tensor.grad) g *= 10.0f;
      }
    }
    double clip = 1.0;
    if (max_grad_norm > 0) {
      double squared = 0;
      for (auto& tensor : tensors) {
        for (float g : tensor.grad) squared += static_cast<double>(g) * g;
      }
      clip = std::min(1.0, max_grad_norm / (std::sqrt(squared) + eps));
    }
    const double eta = scheduled_lr(lr, t);
    for (std::size_t k = 0; k < tensors.size(); ++k) {
      const double lambda = tensors[k].role == ParameterRole::Vector ? 0.0 : wd;
      for (std::size_t i = 0; i < tensors[k].grad.size(); ++i) {
        const double g = static_cast<double>(tensors[k].grad[i]) * clip;
        double& p = reference[k][i];
        if (t == 1) s[k].previous[i] = g;  // Adan's first-step rule: diff = 0
        const double diff = g - s[k].previous[i];
        double& m = s[k].m[i];
        double& d = s[k].d[i];
        double& n = s[k].n[i];
        m = b1 * m + (1 - b1) * g;
        d = b2 * d + (1 - b2) * diff;
        n = b3 * n + (1 - b3) * (g + b2 * diff) * (g + b2 * diff);
        const double den = std::sqrt(n) / std::sqrt(1 - std::pow(b3, t)) + eps;
        const double update = eta / (1 - std::pow(b1, t)) * m / den + eta * b2 / (1 - std::pow(b2, t)) * d / den;
        if (decay_form == "prox") {
          p = (p - update) / (1 + eta * lambda);
        } else {
          p *= 1 - eta * lambda;
          p -= update;
        }
        s[k].previous[i] = g;
      }
    }
    auto params = views(tensors);
    optimizer->step(params, {t, eta, nullptr});
    for (std::size_t k = 0; k < tensors.size(); ++k) {
      expect_close(tensors[k].value, reference[k], 1e-5, 2e-6,
                   decay_form + " " + tensors[k].name + " step " + std::to_string(t));
    }
  }
}

TEST(Adan, ProxFormMatchesFloat64ReferenceWithFirstStepRule) { run_adan("prox", 0.0); }
TEST(Adan, DecoupledFormMatchesFloat64Reference) { run_adan("decoupled", 0.0); }
TEST(Adan, GlobalNormClipMatchesFloat64Reference) { run_adan("prox", 1.0); }

}  // namespace
}  // namespace tandem::optim_test
