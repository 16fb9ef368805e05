#include "calibration/microbenchmarks.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "calibration/process.hpp"
#include "kernels/cpu/kernels.hpp"
#include "report/enum_names.hpp"
#include "strategy/model_formulas.hpp"
#include "strategy/scenario.hpp"

namespace tandem::calibration {

using strategy::ComputeKind;
using strategy::OpCode;
using strategy::Phase;
using Clock = std::chrono::steady_clock;

namespace {

struct Timing {
  double median = 0, min = 0, max = 0;
  int repeats = 0;
};

// Evicts the private caches between calls: in a training step an op's inputs were written by
// earlier ops and have left L1/L2 (a microbenchmark that re-runs on hot caches is up to ~2x
// faster than the same op in the engine's trace).
void evict_private_caches(std::size_t bytes) {
  if (bytes == 0) return;
  static std::vector<char> buffer;
  if (buffer.size() < bytes) buffer.assign(bytes, 1);
  volatile char sink = 0;
  for (std::size_t i = 0; i < bytes; i += 64) {
    buffer[i] = static_cast<char>(buffer[i] + 1);
    sink = sink + buffer[i];
  }
  (void)sink;
}

template <typename F>
Timing time_calls(F&& call, const MicrobenchmarkOptions& options) {
  call();  // warm-up: first-touch page faults, packing buffers, OpenMP team start
  std::vector<double> samples;
  const auto begin = Clock::now();
  while (static_cast<int>(samples.size()) < options.max_repeats) {
    evict_private_caches(options.evict_bytes);
    const auto start = Clock::now();
    call();
    const auto end = Clock::now();
    samples.push_back(std::chrono::duration<double>(end - start).count());
    const double elapsed = std::chrono::duration<double>(end - begin).count();
    if (static_cast<int>(samples.size()) >= options.min_repeats && elapsed >= options.min_seconds) break;
  }
  std::sort(samples.begin(), samples.end());
  Timing t;
  t.repeats = static_cast<int>(samples.size());
  const std::size_t n = samples.size();
  t.median = n % 2 == 1 ? samples[n / 2] : 0.5 * (samples[n / 2 - 1] + samples[n / 2]);
  t.min = samples.front();
  t.max = samples.back();
  return t;
}

// Deterministic, well-scaled inputs (no denormals, no overflow in exp).
std::vector<float> filled(std::size_t n, float scale = 0.02f, unsigned seed = 1) {
  std::vector<float> v(n);
  std::uint32_t state = 2463534242u ^ seed;
  for (std::size_t i = 0; i < n; ++i) {
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    v[i] = scale * (static_cast<float>(state % 2001) / 1000.0f - 1.0f);
  }
  return v;
}

std::vector<std::int32_t> tokens_of(std::size_t n, int vocab) {
  std::vector<std::int32_t> t(n);
  for (std::size_t i = 0; i < n; ++i) t[i] = static_cast<std::int32_t>((i * 2654435761u) % static_cast<unsigned>(vocab));
  return t;
}

const char* phase_name(Phase phase) {
  switch (phase) {
    case Phase::Forward: return "forward";
    case Phase::BackwardInput: return "backward-input";
    case Phase::BackwardWeight: return "backward-weight";
    case Phase::Optimizer: return "optimizer";
    case Phase::None: return "none";
  }
  return "none";
}

std::optional<Phase> phase_from_name(const std::string& name) {
  for (Phase p : {Phase::Forward, Phase::BackwardInput, Phase::BackwardWeight, Phase::Optimizer, Phase::None})
    if (name == phase_name(p)) return p;
  return std::nullopt;
}

std::optional<ComputeKind> compute_kind_from_name(const std::string& name) {
  for (ComputeKind k : {ComputeKind::Matmul, ComputeKind::Attention, ComputeKind::Norm, ComputeKind::Elementwise,
                        ComputeKind::Embedding, ComputeKind::Loss, ComputeKind::Optimizer, ComputeKind::None})
    if (name == strategy::to_string(k)) return k;
  return std::nullopt;
}

// A case: the op it stands for, a label, and the kernel call (buffers owned by the closure).
struct ComputeCase {
  strategy::Op op;
  std::string label;
  std::string kernel;
  nlohmann::json extra = nlohmann::json::object();
  std::function<void()> call;
};

strategy::Op matmul_op(OpCode code, Phase phase, double m, double n, double k) {
  strategy::Op op;
  op.code = code;
  op.type = strategy::OpType::Compute;
  op.compute_kind = ComputeKind::Matmul;
  op.phase = phase;
  op.m = static_cast<std::int64_t>(m);
  op.n = static_cast<std::int64_t>(n);
  op.k = static_cast<std::int64_t>(k);
  op.flops = 2 * m * n * k;
  op.bytes = 4 * (m * k + k * n + m * n);  // fp32, as strategy/program_builder.cpp counts a matmul
  return op;
}

// The kernel call of a matmul op, by phase (the program's (m x k)·(k x n) in the engine's kernel
// arguments; see engine/model/gpt_stage.cpp):
//   forward          out (M,N) = inp (M,K) · W (N,K)ᵀ       M = m, N = n, K = k
//   backward-input   dinp (M,K) = dout (M,N) · W (N,K)       M = m, K = n, N = k
//   backward-weight  dW (N,K) += dout (M,N)ᵀ · inp (M,K)     N = m, K = n, M = k
ComputeCase matmul_case(const strategy::Op& op, bool bias) {
  ComputeCase c;
  c.op = op;
  const int m = static_cast<int>(op.m), n = static_cast<int>(op.n), k = static_cast<int>(op.k);
  namespace kc = kernels::cpu;
  switch (op.phase) {
    case Phase::BackwardInput: {
      const int M = m, K = n, N = k;
      auto dinp = std::make_shared<std::vector<float>>(static_cast<std::size_t>(M) * K);
      auto dout = std::make_shared<std::vector<float>>(filled(static_cast<std::size_t>(M) * N));
      auto w = std::make_shared<std::vector<float>>(filled(static_cast<std::size_t>(N) * K, 0.02f, 2));
      c.kernel = "matmul_backward_input";
      c.call = [=] { kc::matmul_backward_input(dinp->data(), dout->data(), w->data(), M, K, N, false); };
      break;
    }
    case Phase::BackwardWeight: {
      const int N = m, K = n, M = k;
      auto dw = std::make_shared<std::vector<float>>(static_cast<std::size_t>(N) * K);
      auto db = std::make_shared<std::vector<float>>(bias ? static_cast<std::size_t>(N) : 0);
      auto dout = std::make_shared<std::vector<float>>(filled(static_cast<std::size_t>(M) * N));
      auto inp = std::make_shared<std::vector<float>>(filled(static_cast<std::size_t>(M) * K, 0.02f, 3));
      c.kernel = "matmul_backward_weight";
      c.call = [=] { kc::matmul_backward_weight(dw->data(), bias ? db->data() : nullptr, dout->data(), inp->data(), M, K, N); };
      break;
    }
    default: {
      const int M = m, N = n, K = k;
      auto out = std::make_shared<std::vector<float>>(static_cast<std::size_t>(M) * N);
      auto inp = std::make_shared<std::vector<float>>(filled(static_cast<std::size_t>(M) * K));
      auto w = std::make_shared<std::vector<float>>(filled(static_cast<std::size_t>(N) * K, 0.02f, 2));
      auto b = std::make_shared<std::vector<float>>(filled(static_cast<std::size_t>(N), 0.02f, 4));
      c.kernel = "matmul_forward";
      c.call = [=] { kc::matmul_forward(out->data(), inp->data(), w->data(), bias ? b->data() : nullptr, M, K, N); };
      break;
    }
  }
  c.extra["bias"] = bias;
  return c;
}

// ---- the GEMM grid --------------------------------------------------------------------------------

std::vector<ComputeCase> matmul_grid(bool quick) {
  std::vector<ComputeCase> cases;
  const std::vector<int> rows = quick ? std::vector<int>{64, 512} : std::vector<int>{64, 256, 1024, 2048};
  const std::vector<int> widths = quick ? std::vector<int>{64, 384} : std::vector<int>{32, 128, 384, 1024};
  for (int m : rows)
    for (int n : widths)
      for (int k : widths) {
        // A transformer's GEMMs: tokens x width (forward, backward-input), width x width over
        // the tokens (backward-weight).
        const strategy::Op forward = matmul_op(OpCode::QkvForward, Phase::Forward, m, n, k);
        const strategy::Op input = matmul_op(OpCode::QkvBackwardInput, Phase::BackwardInput, m, n, k);
        const strategy::Op weight = matmul_op(OpCode::QkvBackwardWeight, Phase::BackwardWeight, n, k, m);
        for (const strategy::Op& op : {forward, input, weight}) {
          ComputeCase c = matmul_case(op, op.phase != Phase::BackwardInput);
          c.label = std::string("matmul ") + phase_name(op.phase) + " " + std::to_string(op.m) + "x" +
                    std::to_string(op.n) + "x" + std::to_string(op.k);
          c.extra["set"] = "grid";
          cases.push_back(std::move(c));
        }
      }
  return cases;
}

// ---- the program ops of the profile set -------------------------------------------------------------

struct ProfileModel {
  int hidden, heads, seq, vocab, micro_batch;
  bool llama = false;  // RMSNorm + SwiGLU + RoPE
};

std::vector<ProfileModel> profile_set(bool quick) {
  if (quick) return {{64, 4, 64, 256, 8, false}, {128, 4, 64, 512, 4, true}};
  return {{64, 4, 64, 256, 8, false},   {128, 4, 128, 512, 4, false}, {256, 8, 128, 1024, 4, false},
          {512, 8, 256, 2048, 2, false}, {128, 4, 64, 512, 4, true},   {256, 8, 256, 256, 1, false}};
}

strategy::Scenario profile_scenario(const ProfileModel& p) {
  std::ostringstream yaml;
  yaml << "name: profile\nmodel: {layers: 1, hidden: " << p.hidden << ", heads: " << p.heads << ", vocab: " << p.vocab
       << ", seq_len: " << p.seq;
  if (p.llama) yaml << ", norm: rmsnorm, activation: swiglu, position: rope";
  yaml << "}\ncluster: {gpu: cpu, nodes: 1, gpus_per_node: 1, threads_per_rank: 1}\n"
       << "strategy: {tp: 1, pp: 1, dp: 1, micro_batch: " << p.micro_batch << ", global_batch: " << p.micro_batch
       << ", precision: fp32, optimizer: adamw}\n";
  return strategy::parse_scenario(yaml.str(), std::filesystem::current_path());
}

std::vector<ComputeCase> program_cases(const ProfileModel& p) {
  namespace kc = kernels::cpu;
  const strategy::Scenario scenario = profile_scenario(p);
  const strategy::ModelSpec& model = *scenario.model;
  const strategy::Program program = strategy::build_program(scenario);
  const int B = p.micro_batch, T = model.seq_len, C = model.hidden, V = model.vocab;
  const int Hq = model.heads, Hkv = model.kv_heads, D = model.head_dim();
  const int F = model.ffn_hidden;
  const int M = B * T;
  const bool swiglu = model.activation == strategy::Activation::SwiGlu;
  const bool rms = model.norm == strategy::Norm::RmsNorm;
  const bool bias = !rms;  // GPT-2 style layers carry biases in the engine
  std::int64_t parameters = 0;
  for (const auto& tensor : strategy::parameter_tensors(model, 1)) parameters += tensor.rows * tensor.cols;

  std::ostringstream name;
  name << "h" << C << " s" << T << " b" << B << " v" << V << (p.llama ? " llama" : "");
  std::vector<ComputeCase> cases;
  std::set<OpCode> seen;
  for (const strategy::Op& op : program.stage_ops.at(0)) {
    if (op.type != strategy::OpType::Compute || op.recompute || !seen.insert(op.code).second) continue;
    ComputeCase c;
    c.op = op;
    const std::size_t MC = static_cast<std::size_t>(M) * C;
    switch (op.compute_kind) {
      case ComputeKind::Matmul: {
        const bool with_bias = bias && op.code != OpCode::LmHeadForward && op.code != OpCode::LmHeadBackwardWeight &&
                               op.phase != Phase::BackwardInput;
        c = matmul_case(op, with_bias);
        c.op = op;
        break;
      }
      case ComputeKind::Attention: {
        const std::size_t qkv_size = static_cast<std::size_t>(M) * (Hq + 2 * Hkv) * D;
        auto qkv = std::make_shared<std::vector<float>>(filled(qkv_size, 0.5f));
        auto out = std::make_shared<std::vector<float>>(static_cast<std::size_t>(M) * Hq * D);
        auto lse = std::make_shared<std::vector<float>>(static_cast<std::size_t>(B) * Hq * T);
        kc::attention_forward(out->data(), lse->data(), qkv->data(), B, T, Hq, Hkv, D);
        if (op.code == OpCode::AttentionCoreForward) {
          c.kernel = "attention_forward";
          c.call = [=] { kc::attention_forward(out->data(), lse->data(), qkv->data(), B, T, Hq, Hkv, D); };
        } else {
          auto dqkv = std::make_shared<std::vector<float>>(qkv_size);
          auto dout = std::make_shared<std::vector<float>>(filled(static_cast<std::size_t>(M) * Hq * D));
          c.kernel = "attention_backward";
          c.call = [=] {
            kc::attention_backward(dqkv->data(), dout->data(), qkv->data(), out->data(), lse->data(), B, T, Hq, Hkv, D);
          };
        }
        break;
      }
      case ComputeKind::Norm: {
        auto inp = std::make_shared<std::vector<float>>(filled(MC, 1.0f));
        auto out = std::make_shared<std::vector<float>>(MC);
        auto w = std::make_shared<std::vector<float>>(filled(C, 1.0f, 5));
        auto b = std::make_shared<std::vector<float>>(filled(C, 0.1f, 6));
        auto mean = std::make_shared<std::vector<float>>(M);
        auto rstd = std::make_shared<std::vector<float>>(M);
        const bool forward = op.phase == Phase::Forward;
        if (rms) kc::rmsnorm_forward(out->data(), rstd->data(), inp->data(), w->data(), M, C);
        else kc::layernorm_forward(out->data(), mean->data(), rstd->data(), inp->data(), w->data(), b->data(), M, C);
        if (forward) {
          c.kernel = rms ? "rmsnorm_forward" : "layernorm_forward";
          if (rms) c.call = [=] { kc::rmsnorm_forward(out->data(), rstd->data(), inp->data(), w->data(), M, C); };
          else c.call = [=] { kc::layernorm_forward(out->data(), mean->data(), rstd->data(), inp->data(), w->data(), b->data(), M, C); };
        } else {
          auto dinp = std::make_shared<std::vector<float>>(MC);
          auto dw = std::make_shared<std::vector<float>>(C);
          auto db = std::make_shared<std::vector<float>>(C);
          auto dout = std::make_shared<std::vector<float>>(filled(MC));
          c.kernel = rms ? "rmsnorm_backward" : "layernorm_backward";
          if (rms)
            c.call = [=] { kc::rmsnorm_backward(dinp->data(), dw->data(), dout->data(), inp->data(), w->data(), rstd->data(), M, C, true); };
          else
            c.call = [=] {
              kc::layernorm_backward(dinp->data(), dw->data(), db->data(), dout->data(), inp->data(), w->data(),
                                     mean->data(), rstd->data(), M, C, true);
            };
        }
        break;
      }
      case ComputeKind::Elementwise: {
        if (op.code == OpCode::MlpActivationForward || op.code == OpCode::MlpActivationBackward) {
          const std::size_t in_width = swiglu ? 2 * static_cast<std::size_t>(F) : F;
          auto inp = std::make_shared<std::vector<float>>(filled(M * in_width, 1.0f));
          auto out = std::make_shared<std::vector<float>>(static_cast<std::size_t>(M) * F);
          if (op.code == OpCode::MlpActivationForward) {
            c.kernel = swiglu ? "swiglu_forward" : "gelu_forward";
            if (swiglu) c.call = [=] { kc::swiglu_forward(out->data(), inp->data(), M, F); };
            else c.call = [=] { kc::gelu_forward(out->data(), inp->data(), static_cast<std::size_t>(M) * F); };
          } else {
            auto dinp = std::make_shared<std::vector<float>>(M * in_width);
            auto dout = std::make_shared<std::vector<float>>(filled(static_cast<std::size_t>(M) * F));
            c.kernel = swiglu ? "swiglu_backward" : "gelu_backward";
            if (swiglu) c.call = [=] { kc::swiglu_backward(dinp->data(), inp->data(), dout->data(), M, F); };
            else c.call = [=] { kc::gelu_backward(dinp->data(), inp->data(), dout->data(), static_cast<std::size_t>(M) * F); };
          }
        } else if (op.code == OpCode::AttentionResidualForward || op.code == OpCode::MlpResidualForward) {
          auto a = std::make_shared<std::vector<float>>(filled(MC));
          auto b = std::make_shared<std::vector<float>>(filled(MC, 0.02f, 7));
          auto out = std::make_shared<std::vector<float>>(MC);
          c.kernel = "residual_forward";
          c.call = [=] { kc::residual_forward(out->data(), a->data(), b->data(), MC); };
        } else if (op.code == OpCode::RotaryForward || op.code == OpCode::RotaryBackward) {
          auto qkv = std::make_shared<std::vector<float>>(filled(static_cast<std::size_t>(M) * (Hq + 2 * Hkv) * D));
          const bool forward = op.code == OpCode::RotaryForward;
          c.kernel = forward ? "rope_forward" : "rope_backward";
          if (forward) c.call = [=] { kc::rope_forward(qkv->data(), B, T, Hq, Hkv, D); };
          else c.call = [=] { kc::rope_backward(qkv->data(), B, T, Hq, Hkv, D); };
        } else {
          continue;  // residual backward: an identity in the engine (no kernel runs)
        }
        break;
      }
      case ComputeKind::Embedding: {
        auto tokens = std::make_shared<std::vector<std::int32_t>>(tokens_of(static_cast<std::size_t>(M), V));
        auto table = std::make_shared<std::vector<float>>(filled(static_cast<std::size_t>(V) * C));
        auto positions = std::make_shared<std::vector<float>>(model.position == strategy::Position::Learned
                                                                  ? filled(static_cast<std::size_t>(T) * C)
                                                                  : std::vector<float>{});
        // The lambdas hold the shared_ptrs (not raw pointers into them): the buffers must live as
        // long as the case does.
        if (op.code == OpCode::EmbeddingForward) {
          auto out = std::make_shared<std::vector<float>>(MC);
          c.kernel = "embedding_forward";
          c.call = [=] {
            kc::embedding_forward(out->data(), tokens->data(), table->data(),
                                  positions->empty() ? nullptr : positions->data(), B, T, C, 0, V);
          };
        } else {
          auto dout = std::make_shared<std::vector<float>>(filled(MC));
          auto grad = std::make_shared<std::vector<float>>(static_cast<std::size_t>(V) * C);
          auto position_grad = std::make_shared<std::vector<float>>(positions->size());
          c.kernel = "embedding_backward";
          c.call = [=] {
            kc::embedding_backward(grad->data(), position_grad->empty() ? nullptr : position_grad->data(), dout->data(),
                                   tokens->data(), B, T, C, 0, V);
          };
        }
        break;
      }
      case ComputeKind::Loss: {
        auto logits = std::make_shared<std::vector<float>>(filled(static_cast<std::size_t>(M) * V, 1.0f));
        auto targets = std::make_shared<std::vector<std::int32_t>>(tokens_of(static_cast<std::size_t>(M), V));
        auto losses = std::make_shared<std::vector<float>>(M);
        auto lse = std::make_shared<std::vector<float>>(M);
        kc::cross_entropy_forward(losses->data(), lse->data(), logits->data(), targets->data(), M, V, V);
        if (op.code == OpCode::CrossEntropyForward) {
          c.kernel = "cross_entropy_forward";
          c.call = [=] { kc::cross_entropy_forward(losses->data(), lse->data(), logits->data(), targets->data(), M, V, V); };
        } else {
          auto dlogits = std::make_shared<std::vector<float>>(static_cast<std::size_t>(M) * V);
          c.kernel = "cross_entropy_backward";
          c.call = [=] {
            kc::cross_entropy_backward(dlogits->data(), logits->data(), lse->data(), targets->data(), 1.0f / M, M, V, V);
          };
        }
        break;
      }
      case ComputeKind::Optimizer: {
        const std::size_t n = static_cast<std::size_t>(parameters);
        auto param = std::make_shared<std::vector<float>>(filled(n));
        auto grad = std::make_shared<std::vector<float>>(filled(n, 0.001f, 8));
        auto m1 = std::make_shared<std::vector<float>>(n);
        auto m2 = std::make_shared<std::vector<float>>(n);
        auto step = std::make_shared<int>(0);
        c.kernel = "adamw_update";
        c.extra["parameters"] = parameters;
        c.call = [=] { kc::adamw_update(param->data(), grad->data(), m1->data(), m2->data(), n, 1e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, ++*step); };
        break;
      }
      case ComputeKind::None:
        continue;
    }
    if (!c.call) continue;
    c.label = std::string(strategy::to_string(op.code)) + " (" + name.str() + ")";
    c.extra["set"] = "program";
    c.extra["model"] = {{"hidden", C}, {"heads", Hq}, {"seq_len", T}, {"vocab", V}, {"micro_batch", B},
                        {"llama", p.llama}};
    cases.push_back(std::move(c));
  }
  return cases;
}

std::string op_params_json(const ComputeCase& c, int threads) {
  nlohmann::json j = c.extra;
  j["compute_kind"] = std::string(strategy::to_string(c.op.compute_kind));
  j["phase"] = phase_name(c.op.phase);
  j["code"] = std::string(strategy::to_string(c.op.code));
  j["kernel"] = c.kernel;
  j["m"] = c.op.m;
  j["n"] = c.op.n;
  j["k"] = c.op.k;
  j["batch"] = c.op.batch;
  j["threads"] = threads;
  j["precision"] = "fp32";
  return j.dump();
}

}  // namespace

int physical_cores() {
  // Distinct (physical id, core id) pairs of /proc/cpuinfo; the logical CPUs when unknown.
  std::ifstream in("/proc/cpuinfo");
  std::set<std::pair<std::string, std::string>> cores;
  std::string line, physical = "0";
  while (std::getline(in, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, colon);
    key.erase(key.find_last_not_of(" \t") + 1);
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    if (key == "physical id") physical = value;
    if (key == "core id") cores.insert({physical, value});
  }
  const long logical = ::sysconf(_SC_NPROCESSORS_ONLN);
  if (cores.empty()) return static_cast<int>(std::max(1L, logical));
  return static_cast<int>(cores.size());
}

std::vector<report::Microbenchmark> run_compute_microbenchmarks(const MicrobenchmarkOptions& options,
                                                               const MicrobenchmarkProgress& progress) {
  std::vector<ComputeCase> cases = matmul_grid(options.quick);
  for (const ProfileModel& model : profile_set(options.quick)) {
    auto more = program_cases(model);
    for (auto& c : more) cases.push_back(std::move(c));
  }
  std::vector<int> threads = options.threads;
  if (threads.empty()) {
    threads = {1};
    const int cores = physical_cores();
    if (cores > 1) threads.push_back(cores);
  }
  const int previous_threads = kernels::cpu::kernel_threads();
  std::vector<report::Microbenchmark> results;
  const std::size_t total = cases.size() * threads.size();
  std::size_t done = 0;
  for (int t : threads) {
    kernels::cpu::set_kernel_threads(t);
    for (const ComputeCase& c : cases) {
      const Timing timing = time_calls(c.call, options);
      report::Microbenchmark record;
      record.op = std::string(strategy::to_string(c.op.compute_kind));
      record.params_json = op_params_json(c, t);
      record.size_bytes = c.op.bytes;
      record.flops = c.op.flops;
      record.repeats = timing.repeats;
      record.time_s = timing.median;
      record.time_min_s = timing.min;
      record.time_max_s = timing.max;
      results.push_back(std::move(record));
      ++done;
      if (progress) progress(done, total, c.label + ", " + std::to_string(t) + " thread" + (t > 1 ? "s" : ""));
    }
  }
  kernels::cpu::set_kernel_threads(previous_threads);
  return results;
}

bool op_of_microbenchmark(const report::Microbenchmark& record, strategy::Op& op, int& threads) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(record.params_json.empty() ? "{}" : record.params_json);
  } catch (const std::exception&) {
    return false;
  }
  if (!j.is_object() || !j.contains("compute_kind")) return false;
  const auto kind = compute_kind_from_name(j.value("compute_kind", ""));
  const auto phase = phase_from_name(j.value("phase", "none"));
  if (!kind || !phase) return false;
  op = strategy::Op{};
  op.type = strategy::OpType::Compute;
  op.compute_kind = *kind;
  op.phase = *phase;
  if (const auto code = report::op_code_from_name(j.value("code", ""))) op.code = *code;
  op.m = j.value("m", std::int64_t{0});
  op.n = j.value("n", std::int64_t{0});
  op.k = j.value("k", std::int64_t{0});
  op.batch = j.value("batch", std::int64_t{1});
  op.flops = record.flops;
  op.bytes = record.size_bytes;
  threads = j.value("threads", 1);
  return true;
}

// ---- communication ----------------------------------------------------------------------------------

std::vector<report::Microbenchmark> run_communication_microbenchmarks(comm::Communicator& world,
                                                                     const MicrobenchmarkOptions& options,
                                                                     const MicrobenchmarkProgress& progress) {
  std::vector<report::Microbenchmark> results;
  const int size = world.size();
  if (size < 2) return results;
  const std::vector<double> sizes = options.quick ? std::vector<double>{4096, 1 << 20}
                                                  : std::vector<double>{1024, 16384, 262144, 4 << 20, 32 << 20};
  const std::vector<std::string> kinds{"all-reduce", "all-gather", "reduce-scatter", "broadcast", "send-recv"};
  std::vector<int> groups;
  for (int g = 2; g <= size; g *= 2) groups.push_back(g);
  if (groups.back() != size) groups.push_back(size);
  const std::size_t total = groups.size() * kinds.size() * sizes.size();
  std::size_t done = 0;
  for (int g : groups) {
    // The first g ranks form the group; the others wait at the world barrier.
    std::unique_ptr<comm::Communicator> group = world.split(world.rank() < g ? 0 : comm::kNoGroup, world.rank());
    for (const std::string& kind : kinds) {
      for (double bytes : sizes) {
        double time = 0, time_min = 0, time_max = 0;
        int repeats = 0;
        if (group) {
          const int n = group->size();
          const int r = group->rank();
          // Elements per rank as nccl-tests counts S: all-reduce/broadcast S = the buffer,
          // all-gather S = the gathered output, reduce-scatter S = the input, send-recv S = the message.
          const std::size_t elements = static_cast<std::size_t>(bytes / 4);
          const std::size_t block = std::max<std::size_t>(1, elements / static_cast<std::size_t>(n));
          std::vector<float> a(std::max(elements, block * n), 1.0f), b(std::max(elements, block * n), 0.0f);
          auto call = [&] {
            if (kind == "all-reduce") {
              group->all_reduce_async(a.data(), elements, comm::DataType::Float32, comm::ReduceOp::Sum)->wait();
            } else if (kind == "all-gather") {
              group->all_gather_async(a.data(), b.data(), block, comm::DataType::Float32)->wait();
            } else if (kind == "reduce-scatter") {
              group->reduce_scatter_async(a.data(), b.data(), block, comm::DataType::Float32, comm::ReduceOp::Sum)->wait();
            } else if (kind == "broadcast") {
              group->broadcast(a.data(), elements, comm::DataType::Float32, 0);
            } else {
              // Pipeline-style pairs: rank 2i sends to 2i+1 (an odd last rank idles).
              const int peer = r % 2 == 0 ? r + 1 : r - 1;
              if (peer < n) {
                if (r % 2 == 0) group->send_async(a.data(), elements, comm::DataType::Float32, peer, 7)->wait();
                else group->recv_async(b.data(), elements, comm::DataType::Float32, peer, 7)->wait();
              }
            }
          };
          // Synchronised repetitions: a barrier, then the op; the time of each is rank 0's.
          std::vector<double> samples;
          call();
          const auto begin = Clock::now();
          int target = options.max_repeats;
          for (int i = 0; i < target; ++i) {
            group->barrier();
            const auto start = Clock::now();
            call();
            samples.push_back(std::chrono::duration<double>(Clock::now() - start).count());
            // Rank 0 decides when enough samples were taken and tells the group.
            double stop = 0;
            if (r == 0) {
              const double elapsed = std::chrono::duration<double>(Clock::now() - begin).count();
              stop = (i + 1 >= options.min_repeats && elapsed >= options.min_seconds) ? 1 : 0;
            }
            group->broadcast(&stop, 1, comm::DataType::Float64, 0);
            if (stop > 0) break;
          }
          // Every rank's own samples; the group's time is the slowest rank's median.
          std::sort(samples.begin(), samples.end());
          double stats[3] = {samples[samples.size() / 2], samples.front(), samples.back()};
          double mins[1] = {stats[1]};
          group->all_reduce(stats, 1, comm::DataType::Float64, comm::ReduceOp::Max);
          group->all_reduce(&stats[2], 1, comm::DataType::Float64, comm::ReduceOp::Max);
          group->all_reduce(mins, 1, comm::DataType::Float64, comm::ReduceOp::Min);
          time = stats[0];
          time_min = mins[0];
          time_max = stats[2];
          repeats = static_cast<int>(samples.size());
        }
        world.barrier();
        if (world.rank() == 0) {
          report::Microbenchmark record;
          record.op = kind;
          record.params_json = nlohmann::json{{"kind", kind},
                                              {"group_size", g},
                                              {"world_size", size},
                                              {"ranks_on_machine", size},
                                              {"precision", "fp32"},
                                              {"api", kind == "broadcast" ? "blocking" : "async+wait"},
                                              {"mpi_transport", mpi_transport_settings()}}
                                   .dump();
          record.size_bytes = bytes;
          record.repeats = repeats;
          record.time_s = time;
          record.time_min_s = time_min;
          record.time_max_s = time_max;
          results.push_back(std::move(record));
        }
        ++done;
        if (progress && world.rank() == 0)
          progress(done, total, kind + " " + std::to_string(static_cast<long long>(bytes)) + " B over " + std::to_string(g) + " ranks");
      }
    }
    world.barrier();
  }
  return results;
}

}  // namespace tandem::calibration
