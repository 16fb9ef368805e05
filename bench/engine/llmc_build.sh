#!/bin/sh
# Builds llm.c's CPU reference (train_gpt2.c) for one batch shape, OUTSIDE this project, for the
# side-by-side step-time comparison in bench/engine/README.md. Nothing of llm.c is kept in the
# project: give it a fetched copy of the llm.c repository and an output directory elsewhere.
#
#   bench/engine/llmc_build.sh LLMC_DIR OUT_DIR B T [STEPS]
#
# B and T are constants in train_gpt2.c's main(), so this writes a copy with them replaced, the
# training loop cut to STEPS steps (default 3), and the validation passes and text sampling
# switched off (they are not training steps); then compiles it as llm.c's Makefile does
# (-Ofast -march=native -fopenmp -DOMP) to OUT_DIR/train_gpt2_B<B>_T<T>. Run it from a directory
# holding gpt2_124M.bin and the token shards that bench/engine/llmc_inputs.py writes; it prints
# "step N: train loss L (took X ms)" per step. OMP_NUM_THREADS sets its threads.
set -eu
if [ $# -lt 4 ]; then
  echo "usage: $0 LLMC_DIR OUT_DIR B T [STEPS]" >&2
  exit 2
fi
llmc=$1 out=$2 B=$3 T=$4 steps=${5:-3}
src=$llmc/train_gpt2.c
[ -f "$src" ] || { echo "$src not found" >&2; exit 2; }
mkdir -p "$out"
copy=$out/train_gpt2_B${B}_T${T}.c
sed -e "s/^\( *\)int B = 4;/\1int B = $B;/" \
    -e "s/^\( *\)int T = 64;/\1int T = $T;/" \
    -e "s/for (int step = 0; step <= 40; step++)/for (int step = 0; step < $steps; step++)/" \
    -e "s/if (step % 10 == 0) {/if (0) { \/\/ validation off for timing/" \
    -e "s/if (step > 0 \&\& step % 20 == 0) {/if (0) { \/\/ sampling off for timing/" \
    "$src" > "$copy"
for pattern in "int B = $B;" "int T = $T;" "step < $steps;" "validation off" "sampling off"; do
  grep -q "$pattern" "$copy" || { echo "could not patch '$pattern' into $copy (llm.c changed?)" >&2; exit 1; }
done
cc -Ofast -march=native -fopenmp -DOMP -Wno-unused-result -I"$llmc" "$copy" -lm -o "$out/train_gpt2_B${B}_T${T}"
echo "$out/train_gpt2_B${B}_T${T}"
