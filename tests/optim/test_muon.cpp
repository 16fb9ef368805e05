// Muon and MuonBP against float64 references (OPTIMIZERS.md "Muon", "MuonBP"): NS5 on
// non-square and transposed matrices, Nesterov, both scalings, AdamW for the rest; MuonBP's full
// vs block steps, local row blocks, and tensor-parallel shards gathered over a thread group.
#include <thread>

#include <Eigen/Dense>
#include <Eigen/SVD>

#include "engine/optim/muonbp.hpp"
#include "engine/optim/newton_schulz.hpp"
#include "tests/optim/optim_test_support.hpp"

#if defined(TANDEM_TEST_HAVE_COMM_LIBRARY)
#include "comm/communicator.hpp"
#endif

namespace tandem::optim_test {
namespace {

using MatrixD = Eigen::MatrixXd;

MatrixD as_matrix(const std::vector<double>& values, std::int64_t rows, std::int64_t cols) {
  MatrixD m(rows, cols);
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < cols; ++j) m(i, j) = values[static_cast<std::size_t>(i * cols + j)];
  return m;
}
std::vector<double> as_vector(const MatrixD& m) {
  std::vector<double> values(static_cast<std::size_t>(m.size()));
  for (Eigen::Index i = 0; i < m.rows(); ++i)
    for (Eigen::Index j = 0; j < m.cols(); ++j) values[static_cast<std::size_t>(i * m.cols() + j)] = m(i, j);
  return values;
}

// NS5 in float64, straight from OPTIMIZERS.md.
MatrixD reference_ns5(MatrixD x, int steps = 5) {
  const double a = 3.4445, b = -4.7750, c = 2.0315;
  const bool transposed = x.rows() > x.cols();
  if (transposed) x.transposeInPlace();
  x /= (x.norm() + 1e-7);
  for (int i = 0; i < steps; ++i) {
    const MatrixD A = x * x.transpose();
    const MatrixD B = b * A + c * A * A;
    x = a * x + B * x;
  }
  if (transposed) x.transposeInPlace();
  return x;
}

double shape_scale(double rows, double cols) { return std::sqrt(std::max(1.0, rows / cols)); }

TEST(NewtonSchulz, MatchesFloat64ReferenceOnWideTallAndSquareMatrices) {
  for (const auto& [rows, cols] : std::vector<std::pair<int, int>>{{24, 40}, {40, 24}, {32, 32}, {1, 9}}) {
    std::vector<float> g(static_cast<std::size_t>(rows * cols));
    fill_normal(g, 31 + rows, 1.0);
    std::vector<float> out(g.size());
    engine::optim::newton_schulz(g.data(), rows, cols, 5, out.data());
    const MatrixD expected = reference_ns5(as_matrix(to_double(g), rows, cols));
    expect_close(out, as_vector(expected), 1e-4, 2e-5,
                 "NS5 " + std::to_string(rows) + "x" + std::to_string(cols));
  }
}

TEST(NewtonSchulz, SingularValuesLandBetweenHalfAndOneAndAHalf) {
  for (const auto& [rows, cols] : std::vector<std::pair<int, int>>{{64, 192}, {256, 96}, {48, 160}}) {
    std::vector<float> g(static_cast<std::size_t>(rows * cols));
    fill_normal(g, 5 + cols, 1.0);
    std::vector<float> out(g.size());
    engine::optim::newton_schulz(g.data(), rows, cols, 5, out.data());
    Eigen::JacobiSVD<MatrixD> svd(as_matrix(to_double(out), rows, cols));
    const Eigen::VectorXd sigma = svd.singularValues();
    EXPECT_GT(sigma.minCoeff(), 0.5) << rows << "x" << cols;
    EXPECT_LT(sigma.maxCoeff(), 1.5) << rows << "x" << cols;
  }
}

// ---------------------------------------------------------------------------------------------
// Muon step by step
// ---------------------------------------------------------------------------------------------
struct MuonReference {
  double lr, wd, beta;
  bool nesterov;
  std::string scaling;
  double aux_lr, aux_b1, aux_b2, aux_eps, aux_wd;
  int ns_steps;
  std::vector<std::vector<double>> p, m, v;  // per tensor
};

double update_scale(const std::string& scaling, double rows, double cols) {
  return scaling == "rms" ? 0.2 * std::sqrt(std::max(rows, cols)) : shape_scale(rows, cols);
}

// One Muon step of the whole list in float64; `block_rows` > 0 turns hidden matrices' step into
// a block step over that many row blocks with step size lr_block.
void reference_muon_step(MuonReference& r, std::vector<HostTensor>& tensors, int t, double eta,
                         int row_blocks = 0, double eta_block = 0) {
  for (std::size_t k = 0; k < tensors.size(); ++k) {
    HostTensor& tensor = tensors[k];
    auto& p = r.p[k];
    const std::size_t n = tensor.grad.size();
    if (tensor.role == ParameterRole::HiddenMatrix && tensor.rows > 1 && tensor.cols > 1) {
      auto& M = r.m[k];
      std::vector<double> U(n);
      for (std::size_t i = 0; i < n; ++i) {
        const double g = tensor.grad[i];
        M[i] = r.beta * M[i] + (1 - r.beta) * g;
        U[i] = r.nesterov ? (1 - r.beta) * g + r.beta * M[i] : M[i];
      }
      MatrixD O(tensor.rows, tensor.cols);
      double step = eta;
      const MatrixD Um = as_matrix(U, tensor.rows, tensor.cols);
      if (row_blocks == 0) {
        O = reference_ns5(Um, r.ns_steps) * update_scale(r.scaling, tensor.rows, tensor.cols);
      } else {
        for (int b = 0; b < row_blocks; ++b) {
          const std::int64_t begin = tensor.rows * b / row_blocks, end = tensor.rows * (b + 1) / row_blocks;
          O.middleRows(begin, end - begin) = reference_ns5(Um.middleRows(begin, end - begin), r.ns_steps) *
                                             update_scale(r.scaling, end - begin, tensor.cols);
        }
        step = eta_block;
      }
      const std::vector<double> o = as_vector(O);
      for (std::size_t i = 0; i < n; ++i) {
        p[i] *= 1 - step * r.wd;
        p[i] -= step * o[i];
      }
    } else {
      const double aux = r.aux_lr * eta / r.lr;
      const double lambda = tensor.role == ParameterRole::Vector ? 0.0 : r.aux_wd;
      for (std::size_t i = 0; i < n; ++i) {
        const double g = tensor.grad[i];
        p[i] *= 1 - aux * lambda;
        r.m[k][i] = r.aux_b1 * r.m[k][i] + (1 - r.aux_b1) * g;
        r.v[k][i] = r.aux_b2 * r.v[k][i] + (1 - r.aux_b2) * g * g;
        p[i] -= aux / (1 - std::pow(r.aux_b1, t)) * r.m[k][i] /
                (std::sqrt(r.v[k][i]) / std::sqrt(1 - std::pow(r.aux_b2, t)) + r.aux_eps);
      }
    }
  }
}

std::vector<HostTensor> muon_tensors() {
  return {HostTensor("layers.0.attn.qkv.weight", 24, 40, ParameterRole::HiddenMatrix, true, 21),
          HostTensor("layers.0.mlp.fc.weight", 40, 24, ParameterRole::HiddenMatrix, true, 22),
          HostTensor("layers.0.attn.proj.weight", 32, 32, ParameterRole::HiddenMatrix, true, 23),
          HostTensor("layers.0.odd.weight", 7, 10, ParameterRole::HiddenMatrix, true, 24),
          HostTensor("embedding.weight", 12, 8, ParameterRole::Embedding, false, 25),
          HostTensor("head.weight", 12, 8, ParameterRole::OutputHead, false, 26),
          HostTensor("layers.0.ln.gain", 8, 1, ParameterRole::Vector, false, 27)};
}

MuonReference make_reference(const ResolvedOptimizer& c, std::vector<HostTensor>& tensors) {
  MuonReference r{c.lr, c.weight_decay, c.number("momentum"), c.boolean("nesterov"), c.choice("scaling"),
                  c.number("aux_lr"), c.number("aux_beta1"), c.number("aux_beta2"),
                  c.number("aux_eps"), c.number("aux_weight_decay"), static_cast<int>(c.integer("ns_steps")),
                  {}, {}, {}};
  for (auto& t : tensors) {
    r.p.push_back(to_double(t.value));
    r.m.push_back(std::vector<double>(t.value.size(), 0.0));
    r.v.push_back(std::vector<double>(t.value.size(), 0.0));
  }
  return r;
}

void set_gradients(std::vector<HostTensor>& tensors, int t) {
  for (std::size_t k = 0; k < tensors.size(); ++k) {
    fill_normal(tensors[k].grad, 500 + 31 * t + k, 0.2);
    if (t == 1 && k == 3) std::fill(tensors[k].grad.begin(), tensors[k].grad.end(), 0.0f);
  }
}

void check_all(std::vector<HostTensor>& tensors, const MuonReference& r, const std::string& what) {
  for (std::size_t k = 0; k < tensors.size(); ++k) {
    expect_close(tensors[k].value, r.p[k], 2e-5, 2e-6, what + " " + tensors[k].name);
  }
}

void run_muon(const std::map<std::string, std::string>& args) {
  const ResolvedOptimizer config = resolve("muon", args);
  auto optimizer = engine::optim::make_optimizer(config);
  auto tensors = muon_tensors();
  MuonReference r = make_reference(config, tensors);
  const std::vector<float> zero_grad_before = tensors[3].value;
  for (int t = 1; t <= 4; ++t) {
    set_gradients(tensors, t);
    const double eta = config.lr * (1.0 - 0.2 * (t - 1));
    reference_muon_step(r, tensors, t, eta);
    auto params = views(tensors);
    optimizer->step(params, {t, eta, nullptr});
    check_all(tensors, r, "muon step " + std::to_string(t));
    if (t == 1) {
      // Zero gradient, zero momentum: NS5(0) = 0, only the decay moves the weights.
      for (std::size_t i = 0; i < zero_grad_before.size(); ++i) {
        EXPECT_FLOAT_EQ(tensors[3].value[i],
                        zero_grad_before[i] * static_cast<float>(1 - eta * config.weight_decay));
      }
    }
  }
}

TEST(Muon, MatchesFloat64ReferenceWithNesterovAndShapeScaling) {
  run_muon({{"weight_decay", "0.1"}, {"aux_weight_decay", "0.05"}});
}
TEST(Muon, MatchesFloat64ReferenceWithoutNesterov) { run_muon({{"nesterov", "false"}}); }
TEST(Muon, MatchesFloat64ReferenceWithMoonlightRmsScaling) {
  run_muon({{"scaling", "rms"}, {"lr", "1e-3"}, {"weight_decay", "0.1"}, {"ns_steps", "6"}});
}

// ---------------------------------------------------------------------------------------------
// MuonBP
// ---------------------------------------------------------------------------------------------
TEST(MuonBP, PeriodOneIsMuon) {
  const std::map<std::string, std::string> args{{"weight_decay", "0.1"}};
  auto muon = engine::optim::make_optimizer(resolve("muon", args));
  auto args_bp = args;
  args_bp["period"] = "1";
  auto muonbp = engine::optim::make_optimizer(resolve("muonbp", args_bp));
  EXPECT_EQ(muonbp->name(), "muonbp");
  auto a = muon_tensors();
  auto b = muon_tensors();
  for (int t = 1; t <= 4; ++t) {
    set_gradients(a, t);
    set_gradients(b, t);
    auto pa = views(a);
    auto pb = views(b);
    muon->step(pa, {t, 0.02, nullptr});
    muonbp->step(pb, {t, 0.02, nullptr});
    for (std::size_t k = 0; k < a.size(); ++k) EXPECT_EQ(a[k].value, b[k].value) << a[k].name << " step " << t;
  }
}

// Full at t = 1 and 4 (period 3), block steps on 2 local row blocks at t = 2, 3, 5.
void run_local_blocks(const std::map<std::string, std::string>& extra, double expected_ratio) {
  std::map<std::string, std::string> args{{"period", "3"}, {"blocks", "2"}, {"weight_decay", "0.1"}};
  args.insert(extra.begin(), extra.end());
  const ResolvedOptimizer config = resolve("muonbp", args);
  auto optimizer = engine::optim::make_optimizer(config);
  auto tensors = muon_tensors();
  MuonReference r = make_reference(config, tensors);
  for (int t = 1; t <= 5; ++t) {
    set_gradients(tensors, t);
    const double eta = config.lr;
    const bool full = (t - 1) % 3 == 0;
    reference_muon_step(r, tensors, t, eta, full ? 0 : 2, eta * expected_ratio);
    auto params = views(tensors);
    optimizer->step(params, {t, eta, nullptr});
    check_all(tensors, r, std::string(full ? "full" : "block") + " step " + std::to_string(t));
  }
}

TEST(MuonBP, BlockStepsOrthogonaliseEachRowBlockWithAutomaticStepRatio) {
  run_local_blocks({}, 1.0 / std::sqrt(2.0));
}
TEST(MuonBP, BlockStepsUseTheGivenStepRatio) { run_local_blocks({{"block_lr_ratio", "0.5"}}, 0.5); }

TEST(MuonBP, BlockStepDiffersFromFullStep) {
  // The same momentum, one block step vs one full step: the updates must differ.
  auto block = engine::optim::make_optimizer(resolve("muonbp", {{"period", "2"}, {"block_lr_ratio", "1"}}));
  auto full = engine::optim::make_optimizer(resolve("muonbp", {{"period", "1"}}));
  HostTensor a("w", 40, 24, ParameterRole::HiddenMatrix, true, 3), b = a;
  for (int t = 1; t <= 2; ++t) {
    fill_normal(a.grad, 90 + t);
    b.grad = a.grad;
    auto pa = a.view();
    auto pb = b.view();
    block->step(std::span(&pa, 1), {t, 0.02, nullptr});
    full->step(std::span(&pb, 1), {t, 0.02, nullptr});
    if (t == 1) {
      EXPECT_EQ(a.value, b.value);
    }
    if (t == 2) {
      EXPECT_NE(a.value, b.value);
    }
  }
}

// Two tensor-parallel ranks (threads), each holding one shard of every hidden matrix.
struct ShardedRun {
  std::vector<std::vector<HostTensor>> rank_tensors;  // [rank][tensor]
  int gathers = 0;
};

HostTensor shard_of(const HostTensor& full, int dim, int index, int count) {
  HostTensor shard = full;
  shard.shard_dim = dim;
  shard.shard_index = index;
  shard.shard_count = count;
  if (dim == 0) {
    shard.rows = full.rows / count;
  } else {
    shard.cols = full.cols / count;
  }
  shard.value.assign(static_cast<std::size_t>(shard.rows * shard.cols), 0.0f);
  shard.grad = shard.value;
  return shard;
}

void copy_slice(const std::vector<float>& full, std::int64_t full_cols, HostTensor& shard,
                bool to_shard_grad) {
  std::vector<float>& target = to_shard_grad ? shard.grad : shard.value;
  for (std::int64_t i = 0; i < shard.rows; ++i) {
    for (std::int64_t j = 0; j < shard.cols; ++j) {
      const std::int64_t fi = shard.shard_dim == 0 ? shard.shard_index * shard.rows + i : i;
      const std::int64_t fj = shard.shard_dim == 1 ? shard.shard_index * shard.cols + j : j;
      target[static_cast<std::size_t>(i * shard.cols + j)] = full[static_cast<std::size_t>(fi * full_cols + fj)];
    }
  }
}

std::vector<double> slice_of(const std::vector<double>& full, std::int64_t full_cols, const HostTensor& shard) {
  std::vector<double> out(static_cast<std::size_t>(shard.rows * shard.cols));
  for (std::int64_t i = 0; i < shard.rows; ++i) {
    for (std::int64_t j = 0; j < shard.cols; ++j) {
      const std::int64_t fi = shard.shard_dim == 0 ? shard.shard_index * shard.rows + i : i;
      const std::int64_t fj = shard.shard_dim == 1 ? shard.shard_index * shard.cols + j : j;
      out[static_cast<std::size_t>(i * shard.cols + j)] = full[static_cast<std::size_t>(fi * full_cols + fj)];
    }
  }
  return out;
}

void run_tensor_parallel(const std::string& name, int period) {
  std::map<std::string, std::string> args{{"weight_decay", "0.1"}};
  if (name == "muonbp") args["period"] = std::to_string(period);
  const ResolvedOptimizer config = resolve(name, args);
  const int tp = 2;
  // Full matrices: a column-parallel weight (rows split) and a row-parallel one (cols split).
  std::vector<HostTensor> full{HostTensor("layers.0.mlp.fc.weight", 40, 24, ParameterRole::HiddenMatrix, true, 41),
                               HostTensor("layers.0.mlp.proj.weight", 24, 40, ParameterRole::HiddenMatrix, true, 42)};
  const int dims[2] = {0, 1};
  MuonReference r = make_reference(config, full);
  auto shared = std::make_shared<ThreadGroupShared>(tp);
  std::vector<std::vector<HostTensor>> shards(tp);
  for (int rank = 0; rank < tp; ++rank) {
    for (std::size_t k = 0; k < full.size(); ++k) {
      shards[rank].push_back(shard_of(full[k], dims[k], rank, tp));
      copy_slice(full[k].value, full[k].cols, shards[rank][k], false);
    }
  }
  std::vector<std::unique_ptr<engine::optim::Optimizer>> optimizers;
  std::vector<std::unique_ptr<ThreadGroupCommunicator>> groups;
  for (int rank = 0; rank < tp; ++rank) {
    optimizers.push_back(engine::optim::make_optimizer(config));
    groups.push_back(std::make_unique<ThreadGroupCommunicator>(shared, rank));
  }
  const int steps = 4;
  for (int t = 1; t <= steps; ++t) {
    for (std::size_t k = 0; k < full.size(); ++k) fill_normal(full[k].grad, 700 + 13 * t + k, 0.2);
    for (int rank = 0; rank < tp; ++rank) {
      for (std::size_t k = 0; k < full.size(); ++k) copy_slice(full[k].grad, full[k].cols, shards[rank][k], true);
    }
    const bool full_step = name == "muon" || (t - 1) % period == 0;
    // Reference: full steps on the whole matrix; block steps = each TP shard on its own.
    for (std::size_t k = 0; k < full.size(); ++k) {
      std::vector<HostTensor> one{full[k]};
      MuonReference rk = r;
      rk.p = {r.p[k]};
      rk.m = {r.m[k]};
      rk.v = {r.v[k]};
      if (full_step || dims[k] == 0) {
        // Row shards of a row-split matrix are its row blocks.
        reference_muon_step(rk, one, t, config.lr, full_step ? 0 : tp, config.lr / std::sqrt(2.0));
      } else {
        // Column shards: orthogonalise each column block on its own (transpose trick).
        auto& M = rk.m[0];
        std::vector<double> U(M.size());
        for (std::size_t i = 0; i < M.size(); ++i) {
          const double g = one[0].grad[i];
          M[i] = rk.beta * M[i] + (1 - rk.beta) * g;
          U[i] = rk.nesterov ? (1 - rk.beta) * g + rk.beta * M[i] : M[i];
        }
        const MatrixD Um = as_matrix(U, one[0].rows, one[0].cols);
        MatrixD O(one[0].rows, one[0].cols);
        const std::int64_t width = one[0].cols / tp;
        for (int b = 0; b < tp; ++b) {
          O.middleCols(b * width, width) = reference_ns5(Um.middleCols(b * width, width)) *
                                           shape_scale(static_cast<double>(one[0].rows), static_cast<double>(width));
        }
        const double step = config.lr / std::sqrt(2.0);
        const std::vector<double> o = as_vector(O);
        for (std::size_t i = 0; i < o.size(); ++i) {
          rk.p[0][i] = rk.p[0][i] * (1 - step * rk.wd) - step * o[i];
        }
      }
      r.p[k] = rk.p[0];
      r.m[k] = rk.m[0];
    }
    std::vector<std::thread> threads;
    std::vector<std::string> errors(tp);
    for (int rank = 0; rank < tp; ++rank) {
      threads.emplace_back([&, rank] {
        try {
          auto params = views(shards[rank]);
          optimizers[rank]->step(params, {t, config.lr, groups[rank].get()});
        } catch (const std::exception& e) {
          errors[rank] = e.what();
        }
      });
    }
    for (auto& thread : threads) thread.join();
    for (int rank = 0; rank < tp; ++rank) {
      ASSERT_EQ(errors[rank], "") << "rank " << rank;
      for (std::size_t k = 0; k < full.size(); ++k) {
        expect_close(shards[rank][k].value, slice_of(r.p[k], full[k].cols, shards[rank][k]), 2e-5, 2e-6,
                     name + " rank " + std::to_string(rank) + " " + full[k].name + " step " + std::to_string(t));
      }
    }
  }
  const int expected_gathers = name == "muon" ? steps * 2 : ((steps - 1) / period + 1) * 2;
  EXPECT_EQ(groups[0]->gathers, expected_gathers);
}

TEST(MuonBP, TensorParallelFullAndBlockStepsMatchFullMatrixReference) { run_tensor_parallel("muonbp", 2); }
TEST(Muon, TensorParallelShardsGatherEveryStepAndMatchFullMatrixMuon) { run_tensor_parallel("muon", 1); }

TEST(MuonBP, ShardedParameterWithoutTensorGroupIsAClearError) {
  auto optimizer = engine::optim::make_optimizer(resolve("muonbp"));
  HostTensor w("layers.0.mlp.fc.weight", 20, 24, ParameterRole::HiddenMatrix, true, 3);
  w.shard_dim = 0;
  w.shard_count = 2;
  auto p = w.view();
  try {
    optimizer->step(std::span(&p, 1), {1, 0.02, nullptr});
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("layers.0.mlp.fc.weight"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("tensor_group is null"), std::string::npos) << e.what();
  }
}

#if defined(TANDEM_TEST_HAVE_COMM_LIBRARY)
TEST(MuonBP, SingleProcessTensorGroupBehavesLikeNoGroup) {
  auto group = comm::make_single_process_communicator();
  auto with_group = engine::optim::make_optimizer(resolve("muonbp", {{"period", "2"}}));
  auto without = engine::optim::make_optimizer(resolve("muonbp", {{"period", "2"}}));
  auto a = muon_tensors();
  auto b = muon_tensors();
  for (int t = 1; t <= 3; ++t) {
    set_gradients(a, t);
    set_gradients(b, t);
    auto pa = views(a);
    auto pb = views(b);
    with_group->step(pa, {t, 0.02, group.get()});
    without->step(pb, {t, 0.02, nullptr});
    for (std::size_t k = 0; k < a.size(); ++k) EXPECT_EQ(a[k].value, b[k].value) << a[k].name;
  }
}
#endif

// ---------------------------------------------------------------------------------------------
// MuonBP without tensor parallelism: the blocks are the shards TP of degree `blocks` would make.
// ---------------------------------------------------------------------------------------------
TEST(MuonBP, SplitBlocksAreTheRowsOrColumnsATensorParallelRankWouldHold) {
  HostTensor qkv("layers.0.attn.qkv.weight", 32, 24, ParameterRole::HiddenMatrix, true, 1);
  qkv.split_sections = {16, 8, 8};  // Q 16 rows, K and V 8 each (GQA)
  const auto qkv_blocks = engine::optim::split_blocks(qkv.view(), 2);
  std::vector<std::int64_t> rank0, rank1;
  for (std::int64_t i = 0; i < 8; ++i) rank0.push_back(i);     // Q rows 0-7
  for (std::int64_t i = 16; i < 20; ++i) rank0.push_back(i);   // K rows 16-19
  for (std::int64_t i = 24; i < 28; ++i) rank0.push_back(i);   // V rows 24-27
  for (std::int64_t i = 8; i < 16; ++i) rank1.push_back(i);
  for (std::int64_t i = 20; i < 24; ++i) rank1.push_back(i);
  for (std::int64_t i = 28; i < 32; ++i) rank1.push_back(i);
  ASSERT_EQ(qkv_blocks.size(), 2u);
  EXPECT_EQ(qkv_blocks[0], rank0);
  EXPECT_EQ(qkv_blocks[1], rank1);

  HostTensor out("layers.0.attn.out.weight", 6, 7, ParameterRole::HiddenMatrix, true, 2);
  out.split_dim = 1;
  const auto out_blocks = engine::optim::split_blocks(out.view(), 2);
  EXPECT_EQ(out_blocks, (std::vector<std::vector<std::int64_t>>{{0, 1, 2}, {3, 4, 5, 6}}));
  // More blocks than the shortest section has rows: as many blocks as it has.
  EXPECT_EQ(engine::optim::split_blocks(qkv.view(), 64).size(), 8u);

  HostTensor bad = qkv;
  bad.split_sections = {16, 8, 7};
  EXPECT_THROW(engine::optim::split_blocks(bad.view(), 2), std::invalid_argument);
  bad.split_dim = 2;
  EXPECT_THROW(engine::optim::split_blocks(bad.view(), 2), std::invalid_argument);
}

// Block steps on column blocks (a row-parallel weight) and on per-section row blocks (fused
// qkv) against float64 NS5 of exactly those sub-matrices, written out by hand here.
TEST(MuonBP, BlockStepsOfUnshardedMatricesFollowTheSplit) {
  const ResolvedOptimizer config = resolve("muonbp", {{"period", "2"}, {"weight_decay", "0.1"}});
  auto optimizer = engine::optim::make_optimizer(config);
  std::vector<HostTensor> tensors{HostTensor("layers.0.attn.qkv.weight", 32, 24, ParameterRole::HiddenMatrix, true, 5),
                                  HostTensor("layers.0.attn.out.weight", 24, 40, ParameterRole::HiddenMatrix, true, 6)};
  tensors[0].split_sections = {16, 8, 8};
  tensors[1].split_dim = 1;
  MuonReference r = make_reference(config, tensors);
  const double beta = r.beta, eta = config.lr, eta_block = eta / std::sqrt(2.0);
  for (int t = 1; t <= 2; ++t) {
    for (std::size_t k = 0; k < tensors.size(); ++k) fill_normal(tensors[k].grad, 900 + 7 * t + k, 0.2);
    for (std::size_t k = 0; k < tensors.size(); ++k) {
      const HostTensor& tensor = tensors[k];
      std::vector<double> U(tensor.grad.size());
      for (std::size_t i = 0; i < U.size(); ++i) {
        r.m[k][i] = beta * r.m[k][i] + (1 - beta) * tensor.grad[i];
        U[i] = (1 - beta) * tensor.grad[i] + beta * r.m[k][i];
      }
      const MatrixD Um = as_matrix(U, tensor.rows, tensor.cols);
      MatrixD O(tensor.rows, tensor.cols);
      double step = eta;
      if (t == 1) {
        O = reference_ns5(Um) * shape_scale(double(tensor.rows), double(tensor.cols));
      } else if (k == 0) {
        // Rank b's rows: Q[8b, 8b+8), K[16+4b, 16+4b+4), V[24+4b, 24+4b+4).
        for (int b = 0; b < 2; ++b) {
          MatrixD block(16, tensor.cols);
          block << Um.middleRows(8 * b, 8), Um.middleRows(16 + 4 * b, 4), Um.middleRows(24 + 4 * b, 4);
          const MatrixD ob = reference_ns5(block) * shape_scale(16, double(tensor.cols));
          O.middleRows(8 * b, 8) = ob.middleRows(0, 8);
          O.middleRows(16 + 4 * b, 4) = ob.middleRows(8, 4);
          O.middleRows(24 + 4 * b, 4) = ob.middleRows(12, 4);
        }
        step = eta_block;
      } else {
        for (int b = 0; b < 2; ++b) {
          O.middleCols(20 * b, 20) = reference_ns5(Um.middleCols(20 * b, 20)) * shape_scale(double(tensor.rows), 20);
        }
        step = eta_block;
      }
      const std::vector<double> o = as_vector(O);
      for (std::size_t i = 0; i < o.size(); ++i) r.p[k][i] = r.p[k][i] * (1 - step * r.wd) - step * o[i];
    }
    auto params = views(tensors);
    optimizer->step(params, {t, eta, nullptr});
    check_all(tensors, r, std::string(t == 1 ? "full" : "block") + " step " + std::to_string(t));
  }
}

// Two tensor-parallel ranks (threads) holding [Q_r | K_r | V_r] of a fused qkv weight and a column
// block of a row-parallel weight, against ONE process stepping the whole matrices with blocks 2:
// the same weights, full steps (gathered) and block steps alike.
TEST(MuonBP, OneProcessWithBlocksTwoStepsLikeTwoTensorParallelRanks) {
  const ResolvedOptimizer config = resolve("muonbp", {{"period", "3"}, {"blocks", "2"}, {"weight_decay", "0.1"}});
  const int tp = 2;
  std::vector<HostTensor> whole{HostTensor("layers.0.attn.qkv.weight", 32, 24, ParameterRole::HiddenMatrix, true, 8),
                                HostTensor("layers.0.attn.out.weight", 24, 40, ParameterRole::HiddenMatrix, true, 9)};
  whole[0].split_sections = {16, 8, 8};
  whole[1].split_dim = 1;
  // Local row r of rank `rank`'s qkv shard is full row qkv_row(rank, r).
  auto qkv_row = [](int rank, std::int64_t r) -> std::int64_t {
    if (r < 8) return 8 * rank + r;
    if (r < 12) return 16 + 4 * rank + (r - 8);
    return 24 + 4 * rank + (r - 12);
  };
  auto to_shard = [&](const std::vector<float>& full, std::size_t k, int rank, std::vector<float>& local) {
    if (k == 0) {
      for (std::int64_t r = 0; r < 16; ++r)
        for (std::int64_t c = 0; c < 24; ++c) local[static_cast<std::size_t>(r * 24 + c)] = full[static_cast<std::size_t>(qkv_row(rank, r) * 24 + c)];
    } else {
      for (std::int64_t r = 0; r < 24; ++r)
        for (std::int64_t c = 0; c < 20; ++c) local[static_cast<std::size_t>(r * 20 + c)] = full[static_cast<std::size_t>(r * 40 + 20 * rank + c)];
    }
  };
  std::vector<std::vector<HostTensor>> shards(tp);
  for (int rank = 0; rank < tp; ++rank) {
    shards[rank] = {HostTensor(whole[0].name, 16, 24, ParameterRole::HiddenMatrix, true),
                    HostTensor(whole[1].name, 24, 20, ParameterRole::HiddenMatrix, true)};
    for (std::size_t k = 0; k < 2; ++k) {
      shards[rank][k].shard_dim = static_cast<int>(k);
      shards[rank][k].shard_index = rank;
      shards[rank][k].shard_count = tp;
      to_shard(whole[k].value, k, rank, shards[rank][k].value);
    }
  }
  auto shared = std::make_shared<ThreadGroupShared>(tp);
  std::vector<std::unique_ptr<engine::optim::Optimizer>> optimizers;
  std::vector<std::unique_ptr<ThreadGroupCommunicator>> groups;
  for (int rank = 0; rank < tp; ++rank) {
    optimizers.push_back(engine::optim::make_optimizer(config));
    groups.push_back(std::make_unique<ThreadGroupCommunicator>(shared, rank));
  }
  auto one_process = engine::optim::make_optimizer(config);
  for (int t = 1; t <= 5; ++t) {
    for (std::size_t k = 0; k < 2; ++k) {
      fill_normal(whole[k].grad, 1000 + 11 * t + k, 0.2);
      for (int rank = 0; rank < tp; ++rank) to_shard(whole[k].grad, k, rank, shards[rank][k].grad);
    }
    auto params = views(whole);
    one_process->step(params, {t, config.lr, nullptr});
    std::vector<std::thread> threads;
    std::vector<std::string> errors(tp);
    for (int rank = 0; rank < tp; ++rank) {
      threads.emplace_back([&, rank] {
        try {
          auto local = views(shards[rank]);
          optimizers[rank]->step(local, {t, config.lr, groups[rank].get()});
        } catch (const std::exception& e) {
          errors[rank] = e.what();
        }
      });
    }
    for (auto& thread : threads) thread.join();
    for (int rank = 0; rank < tp; ++rank) {
      ASSERT_EQ(errors[rank], "") << "rank " << rank;
      for (std::size_t k = 0; k < 2; ++k) {
        std::vector<float> expected(shards[rank][k].value.size());
        to_shard(whole[k].value, k, rank, expected);
        // Block steps see identical inputs; full steps NS5 a row permutation of the same matrix.
        expect_close(shards[rank][k].value, to_double(expected), 1e-6, 1e-5,
                     "rank " + std::to_string(rank) + " " + whole[k].name + " step " + std::to_string(t));
      }
    }
  }
}

TEST(MuonBP, RowBlocksCoverTheMatrixNearlyEvenly) {
  const auto blocks = engine::optim::row_blocks(7, 2);
  ASSERT_EQ(blocks.size(), 2u);
  EXPECT_EQ(blocks[0].begin, 0);
  EXPECT_EQ(blocks[0].end, 3);
  EXPECT_EQ(blocks[1].begin, 3);
  EXPECT_EQ(blocks[1].end, 7);
  EXPECT_EQ(engine::optim::row_blocks(3, 8).size(), 3u);
}

}  // namespace
}  // namespace tandem::optim_test
