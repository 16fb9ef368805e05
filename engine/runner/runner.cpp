#include "engine/runner/runner.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "engine/model/geometry.hpp"
#include "strategy/optimizer_catalog.hpp"

namespace tandem::engine {

using strategy::CollectiveKind;
using strategy::GroupKind;
using strategy::Op;
using strategy::OpCode;
using strategy::OpType;
using strategy::Phase;

namespace {

std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

optim::ParameterRole role_of(strategy::TensorRole role) {
  switch (role) {
    case strategy::TensorRole::Embedding:
    case strategy::TensorRole::Position: return optim::ParameterRole::Embedding;
    case strategy::TensorRole::OutputHead: return optim::ParameterRole::OutputHead;
    case strategy::TensorRole::HiddenMatrix: return optim::ParameterRole::HiddenMatrix;
    case strategy::TensorRole::Vector: return optim::ParameterRole::Vector;
  }
  return optim::ParameterRole::Vector;
}

}  // namespace

template <typename Scalar>
struct Runner<Scalar>::Pending {
  const Op* op = nullptr;
  comm::RequestPtr request;
  double start = 0;
  bool is_send = false;
  int micro_batch = -1;
  // Pipeline scatter/gather: after the recv of this rank's slice, all-gather the message over
  // the tensor-parallel group (done at a dependent op's wait, a point in program order that
  // every tensor-parallel rank reaches in the same order).
  Scalar* gather_buffer = nullptr;
  std::size_t gather_count = 0;
};

template <typename Scalar>
Runner<Scalar>::Runner(const strategy::Scenario& scenario, comm::Communicator& world, Backend<Scalar>& backend,
                       RunnerOptions options, comm::Communicator* host_world)
    : scenario_(scenario), options_(options), backend_(&backend) {
  const strategy::StrategySpec& s = *scenario_.strategy;
  program_ = strategy::build_program(scenario_);
  parallel_ = make_parallel_context(world, program_.layout);
  if (host_world != nullptr && host_world != &world)
    host_parallel_ = std::make_unique<ParallelContext>(make_parallel_context(*host_world, program_.layout));
  ops_ = &program_.ops_of_rank(parallel_.rank);
  rank_class_ = program_.class_of_rank.at(static_cast<std::size_t>(parallel_.rank));
  zero_ = s.zero;
  micro_batches_ = s.micro_batches();
  grad_clip_ = scenario_.training.grad_clip;

  const strategy::RankCoordinates& c = parallel_.coordinates;
  const StageGeometry geometry = make_geometry(scenario_, c.tp, c.dp, c.pp);
  model_ = std::make_unique<GptStage<Scalar>>(backend, *scenario_.model, geometry, s.grad_bucket_bytes, s.zero);
  model_->parameters().initialize(geometry, scenario_.training.seed);
  // With an outer method every worker trains on its own mean loss (its slice of the global
  // batch): no gradient all-reduce averages the workers.
  const double scaled_sequences = s.outer.enabled() ? static_cast<double>(s.global_batch) / s.dp : s.global_batch;
  model_->set_loss_scale(1.0 / (scaled_sequences * scenario_.model->seq_len));

  // The program's gradient buckets and ours must be the same ranges.
  const ParameterLayout& layout = model_->parameters().layout();
  for (const Op& op : *ops_) {
    if (op.code != OpCode::DpGradientReduce) continue;
    const auto k = static_cast<std::size_t>(op.bucket);
    if (op.bucket < 0 || k >= layout.buckets.size() ||
        static_cast<double>(layout.buckets[k].parameters) * 4 != op.bytes)
      throw std::logic_error("engine: the program's gradient bucket " + std::to_string(op.bucket) + " (" +
                             std::to_string(op.bytes) + " bytes) does not match the engine's parameter layout (" +
                             std::to_string(layout.buckets.size()) + " buckets)");
  }

  // ZeRO: this rank's shard of every bucket.
  if (zero_ > 0 && geometry.dp > 1) {
    std::size_t total = 0;
    for (const GradientBucket& bucket : layout.buckets) {
      shard_offset_.push_back(total);
      total += bucket.size / static_cast<std::size_t>(geometry.dp);
    }
    shard_grads_ = DeviceBuffer<Scalar>(backend, total);
  }
  build_gradient_pieces();

  if constexpr (std::is_same_v<Scalar, float>) {
    if (!options_.gradients_only) {
      const strategy::ResolvedOptimizer resolved =
          strategy::resolve_optimizer(s.optimizer, s.optimizer_args, scenario_.training.lr,
                                      scenario_.training.weight_decay, scenario_.training.seed);
      optimizer_ = optim::make_optimizer(resolved);
    }
  }

  // A common clock origin: rank 0's steady clock (one machine: the same clock everywhere).
  std::int64_t origin = steady_ns();
  host_parallel().world->broadcast(&origin, 1, comm::DataType::Int64, 0);
  origin_ns_ = origin;
}

template <typename Scalar>
Runner<Scalar>::~Runner() {
  // Never leave a transfer in flight on buffers we are about to free.
  for (auto& pending : pending_) {
    try {
      if (pending->request) pending->request->wait();
    } catch (...) {
    }
  }
}

template <typename Scalar>
double Runner<Scalar>::now() const {
  return static_cast<double>(steady_ns() - origin_ns_) * 1e-9;
}

template <typename Scalar>
comm::Communicator& Runner<Scalar>::group(GroupKind kind) {
  comm::Communicator* communicator = parallel_.group(kind);
  if (communicator == nullptr)
    throw std::logic_error("engine: rank " + std::to_string(parallel_.rank) + " has no " +
                           std::string(strategy::to_string(kind)) + " communicator");
  return *communicator;
}

template <typename Scalar>
void Runner<Scalar>::build_gradient_pieces() {
  pieces_.clear();
  const ParameterLayout& layout = model_->parameters().layout();
  Scalar* grads = model_->parameters().grads();
  const int dp = model_->geometry().dp;
  if (shard_grads_.size() == 0) {
    for (const LocalTensor& tensor : layout.tensors)
      pieces_.push_back({&tensor, tensor.offset, grads + tensor.offset, static_cast<std::size_t>(tensor.size()), 0});
    return;
  }
  const auto r = static_cast<std::size_t>(model_->geometry().dp_rank);
  for (std::size_t k = 0; k < layout.buckets.size(); ++k) {
    const GradientBucket& bucket = layout.buckets[k];
    const std::size_t shard = bucket.size / static_cast<std::size_t>(dp);
    const std::size_t begin = bucket.offset + r * shard, end = begin + shard;
    for (const LocalTensor& tensor : layout.tensors) {
      if (tensor.bucket != static_cast<int>(k)) continue;
      const std::size_t t_begin = tensor.offset, t_end = tensor.offset + static_cast<std::size_t>(tensor.size());
      const std::size_t lo = std::max(begin, t_begin), hi = std::min(end, t_end);
      if (lo >= hi) continue;
      pieces_.push_back({&tensor, lo, shard_grads_.data() + shard_offset_[k] + (lo - begin), hi - lo, lo - t_begin});
    }
  }
}

template <typename Scalar>
double Runner<Scalar>::local_sum_of_squares() {
  double total = 0;
  for (const GradientPiece& piece : pieces_)
    if (piece.tensor->counts_in_norm) total += backend_->sum_of_squares(piece.grad, piece.size);
  return total;
}

template <typename Scalar>
void Runner<Scalar>::record(const Op& op, double start, double end) {
  if (!options_.record_trace) return;
  trace_.push_back(report::record_for(op, parallel_.rank, rank_class_, start, end));
}

template <typename Scalar>
void Runner<Scalar>::wait_for(std::uint32_t op_id) {
  for (auto it = pending_.begin(); it != pending_.end(); ++it) {
    if ((*it)->op->id != op_id) continue;
    (*it)->request->wait();
    complete_gather(**it);
    record(*(*it)->op, (*it)->start, now());
    pending_.erase(it);
    return;
  }
}

template <typename Scalar>
void Runner<Scalar>::wait_slot_sends(int micro_batch) {
  const int slot = model_->slot_of(micro_batch);
  for (std::size_t i = 0; i < pending_.size();) {
    Pending& p = *pending_[i];
    if (p.is_send && p.micro_batch != micro_batch && model_->slot_of(p.micro_batch) == slot) {
      p.request->wait();
      record(*p.op, p.start, now());
      pending_.erase(pending_.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      ++i;
    }
  }
}

template <typename Scalar>
void Runner<Scalar>::poll() {
  for (std::size_t i = 0; i < pending_.size();) {
    Pending& p = *pending_[i];
    if (p.gather_buffer == nullptr && p.request->test()) {
      record(*p.op, p.start, now());
      pending_.erase(pending_.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      ++i;
    }
  }
}

template <typename Scalar>
void Runner<Scalar>::finish_all() {
  while (!pending_.empty()) {
    Pending& p = *pending_.front();
    p.request->wait();
    complete_gather(p);
    record(*p.op, p.start, now());
    pending_.erase(pending_.begin());
  }
}

template <typename Scalar>
bool Runner<Scalar>::pipeline_scatter_gather(const Op& op, std::size_t count) const {
  // The program sends 1/tp of the activation per tensor-parallel rank without sequence
  // parallelism (Megatron's scatter/gather of pipeline messages) when its bytes say so.
  const StageGeometry& g = model_->geometry();
  if (g.tp == 1 || g.sequence_parallel) return false;
  const double full_bytes = static_cast<double>(count) * sizeof(Scalar);
  return std::abs(op.bytes * g.tp - full_bytes) < 0.5 && count % static_cast<std::size_t>(g.tp) == 0;
}

template <typename Scalar>
void Runner<Scalar>::complete_gather(Pending& p) {
  if (p.gather_buffer == nullptr) return;
  const comm::DataType type = std::is_same_v<Scalar, float> ? comm::DataType::Float32 : comm::DataType::Float64;
  const auto r = static_cast<std::size_t>(model_->geometry().tp_rank);
  group(GroupKind::Tensor).all_gather(p.gather_buffer + r * p.gather_count, p.gather_buffer, p.gather_count, type);
  p.gather_buffer = nullptr;
}

template <typename Scalar>
void Runner<Scalar>::tp_norm_gradient_reduce(const Op& op) {
  (void)op;
  std::size_t total = 0;
  for (const GradientPiece& piece : pieces_)
    if (piece.tensor->spec.role == strategy::TensorRole::Vector && piece.tensor->spec.tp_shard_dim < 0)
      total += piece.size;
  if (pack_.size() < total) pack_ = DeviceBuffer<Scalar>(*backend_, total);
  std::size_t at = 0;
  for (const GradientPiece& piece : pieces_)
    if (piece.tensor->spec.role == strategy::TensorRole::Vector && piece.tensor->spec.tp_shard_dim < 0) {
      backend_->copy(pack_.data() + at, piece.grad, piece.size);
      at += piece.size;
    }
  const comm::DataType type = std::is_same_v<Scalar, float> ? comm::DataType::Float32 : comm::DataType::Float64;
  group(GroupKind::Tensor).all_reduce(pack_.data(), total, type, comm::ReduceOp::Sum);
  at = 0;
  for (const GradientPiece& piece : pieces_)
    if (piece.tensor->spec.role == strategy::TensorRole::Vector && piece.tensor->spec.tp_shard_dim < 0) {
      backend_->copy(piece.grad, pack_.data() + at, piece.size);
      at += piece.size;
    }
}

template <typename Scalar>
void Runner<Scalar>::start_communication(const Op& op) {
  const comm::DataType type = std::is_same_v<Scalar, float> ? comm::DataType::Float32 : comm::DataType::Float64;
  auto pending = std::make_unique<Pending>();
  pending->op = &op;
  pending->start = now();
  pending->micro_batch = op.micro_batch;
  const ParameterLayout& layout = model_->parameters().layout();
  Scalar* grads = model_->parameters().grads();
  Scalar* values = model_->parameters().values();
  const StageGeometry& g = model_->geometry();
  switch (op.code) {
    case OpCode::PpSendActivation:
    case OpCode::PpSendGradient: {
      const CommBuffers<Scalar> b = model_->comm_buffers(op);
      const int peer = op.code == OpCode::PpSendActivation ? g.stage + 1 : g.stage - 1;
      const int tag = 2 * op.micro_batch + (op.code == OpCode::PpSendGradient ? 1 : 0);
      if (pipeline_scatter_gather(op, b.count)) {
        const std::size_t slice = b.count / static_cast<std::size_t>(g.tp);
        pending->request = group(GroupKind::Pipeline)
                               .send_async(b.input + static_cast<std::size_t>(g.tp_rank) * slice, slice, type, peer, tag);
      } else {
        pending->request = group(GroupKind::Pipeline).send_async(b.input, b.count, type, peer, tag);
      }
      pending->is_send = true;
      break;
    }
    case OpCode::PpRecvActivation:
    case OpCode::PpRecvGradient: {
      const CommBuffers<Scalar> b = model_->comm_buffers(op);
      const int peer = op.code == OpCode::PpRecvActivation ? g.stage - 1 : g.stage + 1;
      const int tag = 2 * op.micro_batch + (op.code == OpCode::PpRecvGradient ? 1 : 0);
      if (pipeline_scatter_gather(op, b.count)) {
        const std::size_t slice = b.count / static_cast<std::size_t>(g.tp);
        pending->request = group(GroupKind::Pipeline)
                               .recv_async(b.output + static_cast<std::size_t>(g.tp_rank) * slice, slice, type, peer, tag);
        pending->gather_buffer = b.output;
        pending->gather_count = slice;
      } else {
        pending->request = group(GroupKind::Pipeline).recv_async(b.output, b.count, type, peer, tag);
      }
      break;
    }
    case OpCode::DpGradientReduce: {
      const GradientBucket& bucket = layout.buckets.at(static_cast<std::size_t>(op.bucket));
      comm::Communicator& data = group(op.group);
      if (shard_grads_.size() == 0) {
        pending->request = data.all_reduce_async(grads + bucket.offset, bucket.size, type, comm::ReduceOp::Sum);
      } else {
        const std::size_t shard = bucket.size / static_cast<std::size_t>(g.dp);
        pending->request = data.reduce_scatter_async(grads + bucket.offset,
                                                     shard_grads_.data() + shard_offset_[static_cast<std::size_t>(op.bucket)],
                                                     shard, type, comm::ReduceOp::Sum);
      }
      break;
    }
    case OpCode::DpParameterGather: {
      const GradientBucket& bucket = layout.buckets.at(static_cast<std::size_t>(op.bucket));
      const std::size_t shard = bucket.size / static_cast<std::size_t>(g.dp);
      Scalar* base = values + bucket.offset;
      pending->request = group(op.group).all_gather_async(base + static_cast<std::size_t>(g.dp_rank) * shard, base,
                                                          shard, type);
      break;
    }
    case OpCode::EmbeddingGradientReduce: {
      const LocalTensor* embedding = layout.find("embedding.token.weight");
      pending->request = group(GroupKind::EmbeddingTie)
                             .all_reduce_async(grads + embedding->offset, static_cast<std::size_t>(embedding->size()),
                                               type, comm::ReduceOp::Sum);
      break;
    }
    case OpCode::GradientNormReduce: {
      comm::Communicator* norm_group = host_parallel().group(op.group);
      if (norm_group == nullptr) throw std::logic_error("engine: no communicator for the gradient norm");
      pending->request = norm_group->all_reduce_async(&norm_partial_, 1, comm::DataType::Float64, comm::ReduceOp::Sum);
      break;
    }
    case OpCode::TpNormGradientReduce: {
      // A buffer hazard the program's dependencies do not state (the twin overlaps the two): the
      // replicated gains live in the data-parallel buckets, which an in-flight DpGradientReduce
      // may still be writing. Both are sums, so finishing the bucket reductions first is exact.
      for (std::size_t i = 0; i < pending_.size();) {
        if (pending_[i]->op->code == OpCode::DpGradientReduce) {
          wait_for(pending_[i]->op->id);
          i = 0;
        } else {
          ++i;
        }
      }
      pending->start = now();
      tp_norm_gradient_reduce(op);
      record(op, pending->start, now());
      return;
    }
    case OpCode::OptimizerGather:
      // MuonBP's momentum gather happens inside the optimizer's step (StepContext::tensor_group);
      // it is recorded with OptimizerStep, which covers it.
      return;
    default: {
      if (op.group != GroupKind::Tensor)
        throw std::logic_error("engine: op " + std::to_string(op.id) + " (" + std::string(strategy::to_string(op.code)) +
                               ") is not a communication op the runner knows");
      const CommBuffers<Scalar> b = model_->comm_buffers(op);
      comm::Communicator& tensor = group(GroupKind::Tensor);
      // Vocab-parallel cross-entropy: the program models one all-reduce of 3 values per token;
      // the engine moves the same 3 values per token and rank as an all-gather of each shard's
      // softmax statistics relative to its own max (one collective instead of Megatron's
      // max all-reduce followed by a sum all-reduce), combined by CrossEntropyForward.
      const CollectiveKind kind = op.code == OpCode::TpCrossEntropyForward ? CollectiveKind::AllGather : op.collective;
      switch (kind) {
        case CollectiveKind::AllReduce:
          pending->request = tensor.all_reduce_async(b.output, b.count, type, comm::ReduceOp::Sum);
          break;
        case CollectiveKind::AllGather:
          pending->request = tensor.all_gather_async(b.input, b.output, b.count, type);
          break;
        case CollectiveKind::ReduceScatter:
          pending->request = tensor.reduce_scatter_async(b.input, b.output, b.count, type, comm::ReduceOp::Sum);
          break;
        default:
          throw std::logic_error("engine: tensor-parallel op " + std::to_string(op.id) + " has an unexpected kind");
      }
      break;
    }
  }
  pending_.push_back(std::move(pending));
}

template <typename Scalar>
void Runner<Scalar>::optimizer_step() {
  // The program's grad-norm op (and its all-reduce over the ranks, which this op waits for).
  if (have_norm_) grad_norm_ = std::sqrt(norm_partial_);
  // torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is below 1.
  // An optimizer that applies StepContext::grad_scale reads the gradients scaled (the same float
  // products) instead: one pass less over all gradients (~0.5 GB read and written at GPT-2 124M).
  double grad_scale = 1.0;
  if (grad_clip_ > 0 && grad_norm_ >= 0) {
    const double coefficient = grad_clip_ / (grad_norm_ + 1e-6);
    if (coefficient < 1.0) {
      const bool folded = !options_.gradients_only && optimizer_ && optimizer_->applies_grad_scale();
      if (folded) {
        grad_scale = static_cast<double>(static_cast<Scalar>(coefficient));
      } else {
        for (const GradientPiece& piece : pieces_)
          backend_->scale_in_place(piece.grad, piece.size, static_cast<Scalar>(coefficient));
      }
    }
  }
  if (options_.gradients_only) return;
  if constexpr (std::is_same_v<Scalar, float>) {
    const StageGeometry& g = model_->geometry();
    const bool host = backend_->is_host_memory();
    Scalar* values = model_->parameters().values();
    std::size_t total = 0;
    for (const GradientPiece& piece : pieces_) total += piece.size;
    if (!host) {
      host_values_.resize(total);
      host_grads_.resize(total);
    }
    std::vector<optim::ParameterTensor> tensors;
    tensors.reserve(pieces_.size());
    std::size_t at = 0;
    const bool sharded = shard_grads_.size() > 0;
    for (const GradientPiece& piece : pieces_) {
      optim::ParameterTensor t;
      const LocalTensor& tensor = *piece.tensor;
      if (host) {
        t.value = values + piece.value_offset;
        t.grad = piece.grad;
      } else {
        backend_->download(host_values_.data() + at, values + piece.value_offset, piece.size);
        backend_->download(host_grads_.data() + at, piece.grad, piece.size);
        t.value = host_values_.data() + at;
        t.grad = host_grads_.data() + at;
      }
      at += piece.size;
      t.role = role_of(tensor.spec.role);
      if (sharded) {
        // ZeRO: an element-wise optimizer over this rank's piece of the tensor.
        t.name = tensor.spec.name + "@" + std::to_string(piece.piece_start);
        t.rows = static_cast<std::int64_t>(piece.size);
        t.cols = 1;
      } else {
        t.name = tensor.spec.name;
        t.rows = tensor.rows;
        t.cols = tensor.cols;
        t.attention_or_mlp = tensor.spec.attention_or_mlp;
        t.shard_dim = g.tp > 1 ? tensor.spec.tp_shard_dim : -1;
        t.shard_index = t.shard_dim >= 0 ? g.tp_rank : 0;
        t.shard_count = t.shard_dim >= 0 ? g.tp : 1;
        // How tensor parallelism splits the tensor: MuonBP's block steps at tp 1 follow it.
        t.split_dim = tensor.spec.tp_shard_dim == 1 ? 1 : 0;
        if (t.shard_dim < 0) t.split_sections = tensor_parallel_sections(tensor.spec, g);
      }
      tensors.push_back(std::move(t));
    }
    optim::StepContext context;
    context.step = step_number_;
    context.lr = step_lr_;
    context.tensor_group = g.tp > 1 ? host_parallel().tensor.get() : nullptr;  // host memory
    context.grad_scale = grad_scale;
    optimizer_->step(tensors, context);
    if (!host) {
      at = 0;
      for (const GradientPiece& piece : pieces_) {
        backend_->upload(values + piece.value_offset, host_values_.data() + at, piece.size);
        at += piece.size;
      }
    }
  } else {
    throw std::logic_error("engine: the optimizer step runs in float only (double is for gradient checks)");
  }
}

template <typename Scalar>
void Runner<Scalar>::execute(const Op& op, bool forward_only) {
  if (forward_only && (op.phase != Phase::Forward || op.type == OpType::Marker)) return;
  // Outer synchronisation ops run between inner steps, in engine/outer, which records them
  // under their ids; nothing in the inner step waits for them.
  if (strategy::is_outer_op(op.code)) return;
  for (std::uint32_t dep : op.deps) wait_for(dep);
  if (op.micro_batch >= 0 && op.type != OpType::Marker) wait_slot_sends(op.micro_batch);
  const double start = now();
  switch (op.type) {
    case OpType::Marker:
      if (op.code == OpCode::StepEnd) finish_all();
      record(op, start, now());
      break;
    case OpType::Compute:
      if (op.code == OpCode::GradientNorm) {
        norm_partial_ = local_sum_of_squares();
        have_norm_ = true;
        record(op, start, now());
        break;
      }
      if (op.code == OpCode::OptimizerStep) {
        optimizer_step();
        const double end = now();
        record(op, start, end);
        for (const Op& other : *ops_)
          if (other.code == OpCode::OptimizerGather) record(other, start, end);
        break;
      }
      model_->run(op);
      backend_->synchronize();
      record(op, start, now());
      break;
    case OpType::Collective:
    case OpType::SendRecv:
      start_communication(op);
      break;
  }
  poll();
}

template <typename Scalar>
StepResult Runner<Scalar>::step(int step_number, double lr, const MicroBatchSource& source) {
  const double step_start = now();
  step_number_ = step_number;
  step_lr_ = lr;
  grad_norm_ = -1;
  have_norm_ = false;
  trace_.clear();
  model_->reset_loss();
  // The program's first compute op (grad-zero) clears the gradients the last step accumulated.
  const StageGeometry& g = model_->geometry();
  int fetched = -1;
  for (const Op& op : *ops_) {
    // Data: the first stage needs the inputs, the last the targets of the micro-batch.
    if ((op.code == OpCode::EmbeddingForward || op.code == OpCode::FinalNormForward) && op.micro_batch != fetched &&
        !op.recompute) {
      source(op.micro_batch, inputs_, targets_);
      fetched = op.micro_batch;
      if (g.first_stage) model_->set_inputs(op.micro_batch, inputs_);
      if (g.last_stage) model_->set_targets(op.micro_batch, targets_);
    }
    execute(op, false);
  }
  finish_all();
  // The loss of the global batch: summed over the last stage's data-parallel replicas (one
  // tensor-parallel rank each), known to every rank.
  double totals[2] = {0, 0};
  if (g.last_stage && g.tp_rank == 0) {
    totals[0] = model_->loss_sum();
    totals[1] = static_cast<double>(model_->loss_tokens());
  }
  host_parallel().world->all_reduce(totals, 2, comm::DataType::Float64, comm::ReduceOp::Sum);
  StepResult result;
  result.loss = totals[1] > 0 ? totals[0] / totals[1] : 0.0;
  result.grad_norm = grad_norm_;
  result.seconds = now() - step_start;
  return result;
}

template <typename Scalar>
double Runner<Scalar>::evaluate(const MicroBatchSource& source) {
  const bool record_trace = options_.record_trace;
  options_.record_trace = false;
  model_->reset_loss();
  const StageGeometry& g = model_->geometry();
  int fetched = -1;
  for (const Op& op : *ops_) {
    if (op.phase != Phase::Forward || op.type == OpType::Marker) continue;
    if ((op.code == OpCode::EmbeddingForward || op.code == OpCode::FinalNormForward) && op.micro_batch != fetched) {
      source(op.micro_batch, inputs_, targets_);
      fetched = op.micro_batch;
      if (g.first_stage) model_->set_inputs(op.micro_batch, inputs_);
      if (g.last_stage) model_->set_targets(op.micro_batch, targets_);
    }
    execute(op, true);
  }
  finish_all();
  options_.record_trace = record_trace;
  double totals[2] = {0, 0};
  if (g.last_stage && g.tp_rank == 0) {
    totals[0] = model_->loss_sum();
    totals[1] = static_cast<double>(model_->loss_tokens());
  }
  host_parallel().world->all_reduce(totals, 2, comm::DataType::Float64, comm::ReduceOp::Sum);
  return totals[1] > 0 ? totals[0] / totals[1] : 0.0;
}

template class Runner<float>;
template class Runner<double>;

}  // namespace tandem::engine
