// Run under mpirun with 2 ranks (tests/optim/CMakeLists.txt): each rank holds one tensor-parallel
// shard of two hidden matrices (one split by rows, one by columns) and steps MuonBP (period 2)
// and Muon over the MPI world as the tensor group. Every rank also runs, alone, Muon on the whole
// matrices (the reference for full steps) and NS5 on each shard (the reference for block steps)
// in float64, and checks its slice. Exit code 0 on success on every rank.
#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <Eigen/Dense>

#include "comm/mpi_communicator.hpp"
#include "engine/optim/optimizer.hpp"
#include "strategy/optimizer_catalog.hpp"

namespace {

using namespace tandem;
using MatrixD = Eigen::MatrixXd;

MatrixD ns5(MatrixD x) {
  const double a = 3.4445, b = -4.7750, c = 2.0315;
  const bool transposed = x.rows() > x.cols();
  if (transposed) x.transposeInPlace();
  x /= (x.norm() + 1e-7);
  for (int i = 0; i < 5; ++i) {
    const MatrixD A = x * x.transpose();
    x = a * x + (b * A + c * A * A) * x;
  }
  if (transposed) x.transposeInPlace();
  return x;
}

double scale(double rows, double cols) { return std::sqrt(std::max(1.0, rows / cols)); }

MatrixD random_matrix(std::int64_t rows, std::int64_t cols, std::uint64_t seed) {
  std::mt19937_64 generator(seed);
  std::normal_distribution<double> normal(0.0, 0.2);
  MatrixD m(rows, cols);
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < cols; ++j) m(i, j) = static_cast<float>(normal(generator));
  return m;
}

MatrixD block_of(const MatrixD& full, int dim, int index, int count) {
  if (dim == 0) {
    const auto rows = full.rows() / count;
    return full.middleRows(index * rows, rows);
  }
  const auto cols = full.cols() / count;
  return full.middleCols(index * cols, cols);
}

int run(const std::string& name, comm::Communicator& world) {
  const int tp = world.size(), rank = world.rank();
  const int period = 2;
  std::map<std::string, std::string> args{{"weight_decay", "0.1"}};
  if (name == "muonbp") args["period"] = std::to_string(period);
  const auto config = strategy::resolve_optimizer(name, args, std::nullopt, std::nullopt, 1);
  const double lr = config.lr, beta = config.number("momentum"), wd = config.weight_decay;
  auto optimizer = engine::optim::make_optimizer(config);

  const std::int64_t shapes[2][2] = {{40, 24}, {24, 40}};
  const int dims[2] = {0, 1};
  std::vector<MatrixD> p_full, m_full;
  std::vector<std::vector<float>> value(2), grad(2);
  std::vector<engine::optim::ParameterTensor> params(2);
  for (int k = 0; k < 2; ++k) {
    p_full.push_back(random_matrix(shapes[k][0], shapes[k][1], 10 + k));
    m_full.push_back(MatrixD::Zero(shapes[k][0], shapes[k][1]));
    const MatrixD local = block_of(p_full[k], dims[k], rank, tp);
    value[k].resize(static_cast<std::size_t>(local.size()));
    grad[k].resize(value[k].size());
    for (Eigen::Index i = 0; i < local.rows(); ++i)
      for (Eigen::Index j = 0; j < local.cols(); ++j) value[k][i * local.cols() + j] = static_cast<float>(local(i, j));
    auto& p = params[k];
    p.name = k == 0 ? "layers.0.mlp.fc.weight" : "layers.0.mlp.proj.weight";
    p.value = value[k].data();
    p.grad = grad[k].data();
    p.rows = local.rows();
    p.cols = local.cols();
    p.role = engine::optim::ParameterRole::HiddenMatrix;
    p.attention_or_mlp = true;
    p.shard_dim = dims[k];
    p.shard_index = rank;
    p.shard_count = tp;
  }

  int failures = 0;
  for (int t = 1; t <= 4; ++t) {
    const bool full_step = name == "muon" || (t - 1) % period == 0;
    for (int k = 0; k < 2; ++k) {
      const MatrixD g = random_matrix(shapes[k][0], shapes[k][1], 100 * t + k);
      const MatrixD g_local = block_of(g, dims[k], rank, tp);
      for (Eigen::Index i = 0; i < g_local.rows(); ++i)
        for (Eigen::Index j = 0; j < g_local.cols(); ++j) grad[k][i * g_local.cols() + j] = static_cast<float>(g_local(i, j));
      m_full[k] = beta * m_full[k] + (1 - beta) * g;
      const MatrixD u = (1 - beta) * g + beta * m_full[k];
      MatrixD o(u.rows(), u.cols());
      double step = lr;
      if (full_step) {
        o = ns5(u) * scale(double(u.rows()), double(u.cols()));
      } else {
        for (int b = 0; b < tp; ++b) {
          const MatrixD ub = block_of(u, dims[k], b, tp);
          const MatrixD ob = ns5(ub) * scale(double(ub.rows()), double(ub.cols()));
          if (dims[k] == 0) o.middleRows(b * ub.rows(), ub.rows()) = ob;
          else o.middleCols(b * ub.cols(), ub.cols()) = ob;
        }
        step = lr / std::sqrt(double(tp));
      }
      p_full[k] = p_full[k] * (1 - step * wd) - step * o;
    }
    optimizer->step(params, {t, lr, &world});
    for (int k = 0; k < 2; ++k) {
      const MatrixD expected = block_of(p_full[k], dims[k], rank, tp);
      double worst = 0;
      for (Eigen::Index i = 0; i < expected.rows(); ++i)
        for (Eigen::Index j = 0; j < expected.cols(); ++j)
          worst = std::max(worst, std::fabs(value[k][i * expected.cols() + j] - expected(i, j)) /
                                      (2e-6 + 2e-5 * std::fabs(expected(i, j))));
      if (worst > 1.0) {
        std::fprintf(stderr, "rank %d %s %s step %d (%s): off by %.2f x tolerance\n", rank, name.c_str(),
                     params[k].name.c_str(), t, full_step ? "full" : "block", worst);
        ++failures;
      }
    }
  }
  return failures;
}

}  // namespace

int main() {
  auto world = tandem::comm::make_mpi_world_communicator();
  if (world->size() != 2) {
    std::fprintf(stderr, "run with 2 ranks (mpirun -np 2), got %d\n", world->size());
    return 2;
  }
  int failures = 0;
  try {
    failures += run("muonbp", *world);
    failures += run("muon", *world);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rank %d: %s\n", world->rank(), e.what());
    return 1;
  }
  if (failures == 0) std::printf("rank %d: muonbp and muon tensor-parallel steps match\n", world->rank());
  return failures == 0 ? 0 : 1;
}
