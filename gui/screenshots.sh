#!/usr/bin/env bash
# Renders screenshots of tandem-studio's main views from a real run, under Xvfb (no display
# needed), so a reviewer can look at the app:
#
#   gui/screenshots.sh OUTDIR [scenario.yaml]
#
# writes OUTDIR/editor.png, result.png, timeline.png, sweep.png, history.png and
# predicted-vs-measured.png. The scenario (default: scenarios/default.yaml) is simulated by the
# twin inside the app, then swept over SWEEP (default: strategy.tp=1,2,4 and
# strategy.micro_batch=1,2). When the engine is built, a real `engine train` run of a scenario
# the twin chose (`simrun --best`) is recorded first, so History shows a real run beside the
# simulated ones and predicted-vs-measured has a pair to plot. Runs go to a scratch run store,
# never to your default one.
#
# Binaries are taken from $TANDEM_BUILD_DIR/bin (default: build/bin, then build-*/bin), or from
# $TANDEM_STUDIO, $SIMRUN and $ENGINE when set.
set -euo pipefail

if [[ $# -lt 1 || "$1" == "-h" || "$1" == "--help" ]]; then
  sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
  exit $(( $# < 1 ? 2 : 0 ))
fi

outdir=$1
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
scenario=${2:-$root/scenarios/default.yaml}
read -r -a sweep <<< "${SWEEP:---sweep strategy.tp=1,2,4 --sweep strategy.micro_batch=1,2}"

find_binary() {  # find_binary NAME OVERRIDE
  local name=$1 override=$2 dir
  if [[ -n "$override" ]]; then echo "$override"; return; fi
  for dir in "${TANDEM_BUILD_DIR:-$root/build}/bin" "$root"/build*/bin; do
    if [[ -x "$dir/$name" ]]; then echo "$dir/$name"; return; fi
  done
  command -v "$name" || true
}

studio=$(find_binary tandem-studio "${TANDEM_STUDIO:-}")
simrun=$(find_binary simrun "${SIMRUN:-}")
engine=$(find_binary engine "${ENGINE:-}")
if [[ -z "$studio" ]]; then
  echo "error: tandem-studio not found; build it (cmake -DTANDEM_GUI=ON ...) or set TANDEM_STUDIO" >&2
  exit 1
fi
if ! command -v xvfb-run > /dev/null; then
  echo "error: xvfb-run not found (Debian: apt-get install xvfb)" >&2
  exit 1
fi

mkdir -p "$outdir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
db=$work/runs.db
export TANDEM_DB=$db XDG_CONFIG_HOME=$work/config

if [[ -n "$engine" && -n "$simrun" ]]; then
  # The loop of issue 4 in miniature: the twin picks the fastest tiny-cpu strategy it can run,
  # simulates it (with its trace), and the engine trains it for real.
  echo "recording a real engine train run (tiny-cpu) beside the twin's prediction..." >&2
  "$simrun" "$root/scenarios/tiny-cpu.yaml" --sweep strategy.micro_batch=4,8 --best "$work/best.yaml" \
    --db "$db" --quiet > /dev/null
  "$simrun" "$work/best.yaml" --db "$db" --quiet > /dev/null
  "$engine" train "$work/best.yaml" --steps 20 --eval-every 0 --db "$db" --quiet > /dev/null
else
  echo "note: simrun or engine not built; History will show simulated runs only" >&2
fi

xvfb-run -a -s "-screen 0 1280x800x24" \
  "$studio" --db "$db" --screenshots "$outdir" "${sweep[@]}" "$scenario"
