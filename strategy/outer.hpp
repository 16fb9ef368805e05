#pragma once
// Outer optimizers and low-communication training (`strategy.outer`): SNOO, DiLoCo, Streaming
// DiLoCo and NoLoCo (../shared/reference/OPTIMIZERS.md, "Outer optimizers and low-communication
// training"). What the strategy layer, the twin and the engine must agree on lives here: the
// methods and their reference defaults, the synchronisation schedule, the Streaming DiLoCo
// fragments and the bytes of a quantized exchange, and NoLoCo's seeded groups.
//
// Workers are the data-parallel replicas (W = dp; a worker may itself be tensor, pipeline or
// context parallel). With a method other than `none` the inner steps do not reduce gradients
// across workers: each worker trains on its own slice of the global batch and the workers only
// meet at the outer synchronisations.

#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace tandem::strategy {

enum class OuterMethod : std::uint8_t { None, Snoo, DiLoCo, StreamingDiLoCo, NoLoCo };
enum class OuterQuantization : std::uint8_t { None, Fp8, Int4 };

struct OuterSpec {
  OuterMethod method = OuterMethod::None;
  int inner_steps = 1;     // H (K for SNOO): inner steps between two syncs of the same parameters
  double outer_lr = 1;     // eta_o
  double momentum = 0;     // mu
  int fragments = 1;       // Streaming DiLoCo: F
  int delay = 0;           // Streaming DiLoCo: tau, inner steps the exchange overlaps
  double mix = 0;          // Streaming DiLoCo: alpha, weight of the local parameters when mixing
  OuterQuantization quantize = OuterQuantization::None;  // Streaming DiLoCo exchange
  int group_size = 2;      // NoLoCo: workers averaged together

  bool enabled() const { return method != OuterMethod::None; }
  // Inner steps between two outer synchronisations (of any parameters): H, or H / F for
  // Streaming DiLoCo (one fragment at a time). 1 for `none`.
  int sync_period() const;
  // Inner steps an exchange may overlap before the outer update waits for it (Streaming DiLoCo's
  // delay; 0 = blocking).
  int overlap_steps() const { return method == OuterMethod::StreamingDiLoCo ? delay : 0; }
};

// The reference defaults of each method (OPTIMIZERS.md): inner steps, outer learning rate,
// momentum. DiLoCo: H 500, 0.7, 0.9 (OpenDiLoCo/torchft); SNOO: K 28, 0.68, 0.37
// (modded-nanogpt); Streaming DiLoCo: H 100, 0.7, 0.9 (the paper's H, DiLoCo's outer optimizer);
// NoLoCo: H 50, 0.7, 0.5 (gensyn-ai/noloco).
struct OuterDefaults {
  int inner_steps = 1;
  double outer_lr = 1;
  double momentum = 0;
};
OuterDefaults outer_defaults(OuterMethod method);

std::string_view to_string(OuterMethod method);
std::string_view to_string(OuterQuantization quantization);

// ---- quantized exchange (Streaming DiLoCo) ----------------------------------------------------
// Values are quantized in blocks of kQuantizationBlock consecutive elements, each block with one
// fp32 scale (absmax / the format's largest value): fp8 = E4M3 (1 byte per value, largest 448),
// int4 = symmetric integers -7..7 (half a byte per value). Unquantized exchanges are fp32.
inline constexpr int kQuantizationBlock = 256;
// Bytes one exchange of `elements` values puts on the wire (values + scales).
double quantized_bytes(double elements, OuterQuantization quantization);

// ---- Streaming DiLoCo fragments ---------------------------------------------------------------
// A rank's parameters (its flat local parameter vector, in the engine's bucket order) split into
// `fragments` contiguous, nearly equal ranges: fragment f = [n*f/F, n*(f+1)/F).
std::pair<std::int64_t, std::int64_t> fragment_range(std::int64_t elements, int fragments, int fragment);

// The schedule, counting inner steps from 1. Every sync_period() steps one exchange starts at the
// end of the inner step: the k-th (k = step / period, from 1) exchanges fragment (k - 1) mod F
// (always fragment 0 for methods without fragments); its outer update is applied at the end of
// step + overlap_steps(). Returns the fragment whose exchange starts after `step`, or -1.
int fragment_starting_after(const OuterSpec& outer, std::int64_t step);

// ---- NoLoCo groups -----------------------------------------------------------------------------
// The group of every worker at outer step `outer_step` (counted from 0): a permutation of the
// workers seeded by (seed, outer_step), cut into consecutive groups of `group_size`. A pure
// function, so every rank computes the same groups without communicating. Returns the group id
// of each worker (ids 0 .. workers/group_size - 1).
std::vector<int> noloco_groups(std::uint64_t seed, std::int64_t outer_step, int workers, int group_size);

}  // namespace tandem::strategy
