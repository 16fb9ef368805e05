// APOLLO, APOLLO-Mini and GaLore against float64 references (OPTIMIZERS.md): projections and
// their refresh at step T+1, channel- and tensor-wise scaling, the norm-growth limiter,
// sqrt(scale), top-r singular vectors, HF AdamW on the parameters they do not project.
#include <numbers>

#include <Eigen/Dense>
#include <Eigen/SVD>

#include "engine/optim/galore.hpp"
#include "engine/optim/random.hpp"
#include "tests/optim/optim_test_support.hpp"

namespace tandem::optim_test {
namespace {

using MatrixD = Eigen::MatrixXd;

MatrixD as_matrix(const std::vector<float>& values, std::int64_t rows, std::int64_t cols) {
  MatrixD m(rows, cols);
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < cols; ++j) m(i, j) = values[static_cast<std::size_t>(i * cols + j)];
  return m;
}

// The projection stream as random.hpp specifies it, written independently here.
std::uint64_t mix(std::uint64_t& x) {
  x += 0x9E3779B97F4A7C15ull;
  std::uint64_t z = x;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
MatrixD reference_projection(std::uint64_t scenario_seed, const std::string& name, std::uint64_t index,
                             std::int64_t rows, std::int64_t cols, std::int64_t rank) {
  std::uint64_t hash = 0xCBF29CE484222325ull;
  for (char c : name) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001B3ull;
  }
  std::uint64_t seed_state = scenario_seed ^ hash;
  const std::uint64_t tensor_seed = mix(seed_state);
  std::uint64_t x = tensor_seed + index * 0xD1B54A32D192ED03ull;
  std::vector<double> values(static_cast<std::size_t>(rows * cols));
  for (std::size_t i = 0; i < values.size(); i += 2) {
    const double u1 = static_cast<double>((mix(x) >> 11) + 1) / 9007199254740992.0;
    const double u2 = static_cast<double>(mix(x) >> 11) / 9007199254740992.0;
    const double radius = std::sqrt(-2.0 * std::log(u1));
    values[i] = static_cast<float>(radius * std::cos(2 * std::numbers::pi * u2) / std::sqrt(double(rank)));
    if (i + 1 < values.size())
      values[i + 1] = static_cast<float>(radius * std::sin(2 * std::numbers::pi * u2) / std::sqrt(double(rank)));
  }
  MatrixD p(rows, cols);
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < cols; ++j) p(i, j) = values[static_cast<std::size_t>(i * cols + j)];
  return p;
}

// Top-r singular vectors in float64 with GaLore's sign rule (largest-magnitude entry positive).
MatrixD reference_svd_projection(const MatrixD& g, std::int64_t rank) {
  const bool right = g.rows() >= g.cols();
  Eigen::JacobiSVD<MatrixD> svd(g, Eigen::ComputeThinU | Eigen::ComputeThinV);
  MatrixD vectors = (right ? svd.matrixV() : svd.matrixU()).leftCols(rank);
  for (Eigen::Index k = 0; k < rank; ++k) {
    Eigen::Index largest = 0;
    vectors.col(k).cwiseAbs().maxCoeff(&largest);
    if (vectors(largest, k) < 0) vectors.col(k) *= -1;
  }
  return right ? MatrixD(vectors.transpose()) : vectors;  // r x n, or m x r
}

struct LowRankTensorReference {
  MatrixD p, mr, vr, projection;
  std::uint64_t projections = 0;
  double previous_norm = -1;
  std::vector<double> m, v;  // HF AdamW for the others
};

struct Settings {
  std::string name;
  double lr, wd, b1 = 0.9, b2 = 0.999, eps = 1e-6, scale, limit = 1.01;
  std::int64_t rank;
  int gap;
  bool tensor_wise = false, limiter = true, svd = false;
  std::uint64_t seed = 1234;
};

void reference_step(const Settings& s, HostTensor& tensor, LowRankTensorReference& r, int t, double eta) {
  const std::int64_t m = tensor.rows, n = tensor.cols;
  const MatrixD g = as_matrix(tensor.grad, m, n);
  const double lambda = tensor.role == ParameterRole::Vector ? 0.0 : s.wd;
  if (!(tensor.attention_or_mlp && m > 1 && n > 1)) {
    // HF AdamW.
    for (std::int64_t i = 0; i < m * n; ++i) {
      const double gi = tensor.grad[static_cast<std::size_t>(i)];
      r.m[i] = s.b1 * r.m[i] + (1 - s.b1) * gi;
      r.v[i] = s.b2 * r.v[i] + (1 - s.b2) * gi * gi;
      double& p = r.p(i / n, i % n);
      p -= eta * std::sqrt(1 - std::pow(s.b2, t)) / (1 - std::pow(s.b1, t)) * r.m[i] / (std::sqrt(r.v[i]) + s.eps);
      p -= eta * lambda * p;
    }
    return;
  }
  const bool right = m >= n;
  if ((t - 1) % s.gap == 0) {  // steps 1, T+1, 2T+1
    r.projection = s.svd ? reference_svd_projection(g, s.rank)
                         : reference_projection(s.seed, tensor.name, r.projections, right ? s.rank : m,
                                                right ? n : s.rank, s.rank);
    r.projections += 1;
  }
  const MatrixD R = right ? MatrixD(g * r.projection.transpose()) : MatrixD(r.projection.transpose() * g);
  if (r.mr.size() == 0) r.mr = r.vr = MatrixD::Zero(R.rows(), R.cols());
  r.mr = s.b1 * r.mr + (1 - s.b1) * R;
  r.vr = s.b2 * r.vr + (1 - s.b2) * R.cwiseProduct(R);
  const MatrixD N = r.mr.array() / (r.vr.array().sqrt() + s.eps);
  const double step_size = eta * std::sqrt(1 - std::pow(s.b2, t)) / (1 - std::pow(s.b1, t));
  MatrixD update;
  if (s.svd) {
    update = (right ? MatrixD(N * r.projection) : MatrixD(r.projection * N)) * s.scale;
  } else {
    MatrixD gs = g;
    if (s.tensor_wise) {
      gs *= N.norm() / (R.norm() + 1e-8);
    } else if (R.rows() < R.cols()) {
      for (Eigen::Index j = 0; j < n; ++j) gs.col(j) *= N.col(j).norm() / (R.col(j).norm() + 1e-8);
    } else {
      for (Eigen::Index i = 0; i < m; ++i) gs.row(i) *= N.row(i).norm() / (R.row(i).norm() + 1e-8);
    }
    if (s.limiter) {
      const double norm = gs.norm();
      if (r.previous_norm >= 0) {
        const double limiter = std::max(norm / (r.previous_norm + 1e-8), s.limit) / s.limit;
        gs /= limiter;
        r.previous_norm = norm / limiter;
      } else {
        r.previous_norm = norm;
      }
    }
    update = gs * std::sqrt(s.scale);
  }
  r.p -= step_size * update;
  r.p -= eta * lambda * r.p;
}

std::vector<HostTensor> low_rank_tensors() {
  return {HostTensor("layers.0.mlp.fc.weight", 24, 16, ParameterRole::HiddenMatrix, true, 61),   // m >= n
          HostTensor("layers.0.attn.qkv.weight", 12, 20, ParameterRole::HiddenMatrix, true, 62), // m < n
          HostTensor("embedding.weight", 10, 6, ParameterRole::Embedding, false, 63),
          HostTensor("layers.0.attn.qkv.bias", 12, 1, ParameterRole::Vector, true, 64)};
}

void run(const Settings& s, const std::map<std::string, std::string>& args, int steps) {
  auto optimizer = engine::optim::make_optimizer(resolve(s.name, args, s.seed));
  auto tensors = low_rank_tensors();
  std::vector<LowRankTensorReference> refs(tensors.size());
  for (std::size_t k = 0; k < tensors.size(); ++k) {
    refs[k].p = as_matrix(tensors[k].value, tensors[k].rows, tensors[k].cols);
    refs[k].m.assign(tensors[k].value.size(), 0.0);
    refs[k].v.assign(tensors[k].value.size(), 0.0);
  }
  for (int t = 1; t <= steps; ++t) {
    const double eta = s.lr * (1.0 - 0.05 * (t - 1));
    for (std::size_t k = 0; k < tensors.size(); ++k) {
      fill_normal(tensors[k].grad, 900 + 7 * t + k, 0.1);
      // Growing gradients at steps 2-3 trigger the norm-growth limiter; shrinking ones later do not.
      const float growth = t <= 3 ? static_cast<float>(1 << (2 * t)) : 1.0f / static_cast<float>(t);
      for (float& g : tensors[k].grad) g *= growth;
      reference_step(s, tensors[k], refs[k], t, eta);
    }
    auto params = views(tensors);
    optimizer->step(params, {t, eta, nullptr});
    for (std::size_t k = 0; k < tensors.size(); ++k) {
      std::vector<double> expected(tensors[k].value.size());
      for (std::int64_t i = 0; i < tensors[k].rows; ++i)
        for (std::int64_t j = 0; j < tensors[k].cols; ++j)
          expected[static_cast<std::size_t>(i * tensors[k].cols + j)] = refs[k].p(i, j);
      expect_close(tensors[k].value, expected, 1e-4, 2e-6,
                   s.name + " " + tensors[k].name + " step " + std::to_string(t));
    }
  }
}

TEST(Apollo, ChannelWiseMatchesFloat64ReferenceAcrossProjectionRefresh) {
  Settings s{.name = "apollo", .lr = 0.01, .wd = 0.1, .scale = 4, .rank = 4, .gap = 3};
  run(s, {{"rank", "4"}, {"update_proj_gap", "3"}, {"weight_decay", "0.1"}, {"scale", "4"}}, 7);
}

TEST(Apollo, WithoutLimiterMatchesFloat64Reference) {
  Settings s{.name = "apollo", .lr = 0.01, .wd = 0.0, .scale = 1, .rank = 3, .gap = 2, .limiter = false};
  run(s, {{"rank", "3"}, {"update_proj_gap", "2"}, {"norm_growth_limiter", "false"}}, 4);
}

TEST(ApolloMini, TensorWiseRankOneMatchesFloat64Reference) {
  Settings s{.name = "apollo-mini", .lr = 0.01, .wd = 0.0, .scale = 128, .rank = 1, .gap = 2,
             .tensor_wise = true};
  run(s, {{"update_proj_gap", "2"}}, 5);
}

TEST(Galore, MatchesFloat64ReferenceAcrossSvdRefresh) {
  Settings s{.name = "galore", .lr = 0.01, .wd = 0.1, .scale = 0.25, .rank = 3, .gap = 2, .svd = true};
  run(s, {{"rank", "3"}, {"update_proj_gap", "2"}, {"weight_decay", "0.1"}}, 5);
}

TEST(Apollo, RefreshAtStepTPlusOneMatters) {
  // The same run with T = 3 and T = 1000 agrees through step 3 and differs at step 4 = T+1.
  auto refreshing = engine::optim::make_optimizer(resolve("apollo", {{"rank", "4"}, {"update_proj_gap", "3"}}));
  auto fixed = engine::optim::make_optimizer(resolve("apollo", {{"rank", "4"}, {"update_proj_gap", "1000"}}));
  HostTensor a("layers.0.mlp.fc.weight", 24, 16, ParameterRole::HiddenMatrix, true, 5), b = a;
  for (int t = 1; t <= 4; ++t) {
    fill_normal(a.grad, 40 + t);
    b.grad = a.grad;
    auto pa = a.view();
    auto pb = b.view();
    refreshing->step(std::span(&pa, 1), {t, 0.01, nullptr});
    fixed->step(std::span(&pb, 1), {t, 0.01, nullptr});
    if (t <= 3) {
      EXPECT_EQ(a.value, b.value) << "step " << t;
    }
    if (t == 4) {
      EXPECT_NE(a.value, b.value);
    }
  }
}

TEST(Apollo, NormGrowthLimiterCapsGrowthAtTheLimit) {
  // Tensor-wise scaling, no decay: the update of step t is step_size_t * sqrt(scale) * Gs_t, so
  // ||delta_2|| / step_size_2 = 1.01 * ||delta_1|| / step_size_1 when the gradient grows 10x.
  auto optimizer = engine::optim::make_optimizer(resolve("apollo-mini", {}));
  HostTensor w("layers.0.mlp.fc.weight", 24, 16, ParameterRole::HiddenMatrix, true, 5);
  fill_normal(w.grad, 77);
  std::vector<double> norms;
  for (int t = 1; t <= 2; ++t) {
    if (t == 2) {
      for (float& g : w.grad) g *= 10.0f;
    }
    const std::vector<float> before = w.value;
    auto p = w.view();
    optimizer->step(std::span(&p, 1), {t, 0.01, nullptr});
    double squared = 0;
    for (std::size_t i = 0; i < before.size(); ++i) squared += std::pow(double(w.value[i]) - before[i], 2);
    const double step_size = 0.01 * std::sqrt(1 - std::pow(0.999, t)) / (1 - std::pow(0.9, t));
    norms.push_back(std::sqrt(squared) / step_size);
  }
  EXPECT_NEAR(norms[1] / norms[0], 1.01, 1e-3);
}

TEST(Apollo, ProjectionEntriesAreNormalWithVarianceOneOverRank) {
  const std::int64_t rank = 8;
  std::vector<float> values(200000);
  engine::optim::fill_gaussian_projection(engine::optim::projection_tensor_seed(99, "w"), 0, rank,
                                          values.data(), values.size());
  double sum = 0, squared = 0;
  for (float x : values) sum += x, squared += double(x) * x;
  const double mean = sum / values.size(), variance = squared / values.size() - mean * mean;
  EXPECT_NEAR(mean, 0.0, 4 * std::sqrt(1.0 / rank / values.size()));
  EXPECT_NEAR(variance, 1.0 / rank, 0.01 / rank);
  // Deterministic: the same seed, name and index give the same numbers; another index differs.
  std::vector<float> again(16), other(16);
  engine::optim::fill_gaussian_projection(engine::optim::projection_tensor_seed(99, "w"), 0, rank, again.data(), 16);
  engine::optim::fill_gaussian_projection(engine::optim::projection_tensor_seed(99, "w"), 1, rank, other.data(), 16);
  EXPECT_TRUE(std::equal(again.begin(), again.end(), values.begin()));
  EXPECT_FALSE(std::equal(other.begin(), other.end(), values.begin()));
}

TEST(Galore, ProjectionIsTheTopSingularVectors) {
  for (const auto& [m, n] : std::vector<std::pair<int, int>>{{30, 12}, {9, 25}}) {
    std::vector<float> g(static_cast<std::size_t>(m * n));
    fill_normal(g, 123 + m);
    const std::int64_t rank = 4;
    const std::vector<float> projection = engine::optim::galore_projection(g.data(), m, n, rank);
    Eigen::JacobiSVD<MatrixD> svd(as_matrix(g, m, n), Eigen::ComputeThinU | Eigen::ComputeThinV);
    const bool right = m >= n;
    const MatrixD& vectors = right ? svd.matrixV() : svd.matrixU();
    for (std::int64_t k = 0; k < rank; ++k) {
      double dot = 0, largest = 0;
      const std::int64_t length = right ? n : m;
      for (std::int64_t i = 0; i < length; ++i) {
        const double x = right ? projection[static_cast<std::size_t>(k * n + i)]
                               : projection[static_cast<std::size_t>(i * rank + k)];
        dot += x * vectors(i, k);
        if (std::fabs(x) > std::fabs(largest)) largest = x;
      }
      EXPECT_NEAR(std::fabs(dot), 1.0, 1e-5) << m << "x" << n << " vector " << k;
      EXPECT_GT(largest, 0.0) << "sign rule: the largest-magnitude entry is positive";
    }
  }
}

}  // namespace
}  // namespace tandem::optim_test
