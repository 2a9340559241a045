#!/usr/bin/env bash
# Every `sharebench check` case on a real GPU with a real MPS daemon in a private pipe directory:
# healthy, no daemon, empty dir, wrong pipe dir (silent fallback), active thread percentage, the run gate,
# pipe dir unreadable by a non-root user, daemon killed (stale socket), a hanging control client.
# Usage (repo root, as root, release binary in dist/): bash bench/device/check-cases.sh
set -u
B=$(readlink -f "${SHAREBENCH_BIN:-dist/sharebench}")
P=/tmp/sb-mps-pipe; L=/tmp/sb-mps-log; E=/tmp/sb-empty
rm -rf "$P" "$L" "$E"; mkdir -p "$P" "$L" "$E"
case_() { echo; echo "### $1"; shift; echo "\$ $*"; "$@"; echo "(exit $?)"; }

case_ "no daemon (pipe dir missing)" env CUDA_MPS_PIPE_DIRECTORY=/tmp/sb-none "$B" check
case_ "empty pipe dir" env CUDA_MPS_PIPE_DIRECTORY=$E "$B" check
CUDA_MPS_PIPE_DIRECTORY=$P CUDA_MPS_LOG_DIRECTORY=$L nvidia-cuda-mps-control -d
sleep 0.5
case_ "healthy daemon, this process joins" env CUDA_MPS_PIPE_DIRECTORY=$P "$B" check
case_ "active thread percentage 25" env CUDA_MPS_PIPE_DIRECTORY=$P CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=25 "$B" check
case_ "wrong pipe dir in the process (silent fallback)" env CUDA_MPS_PIPE_DIRECTORY=$E "$B" check --pipe-dir $P
case_ "expecting time-slicing while a daemon serves this pipe dir" env CUDA_MPS_PIPE_DIRECTORY=$P "$B" check --expect timeslice
case_ "run --mode mps, joined" env CUDA_MPS_PIPE_DIRECTORY=$P "$B" run --mode mps --kernels 20 --out /tmp/sb-run-mps.json --force
python3 -c "import json;d=json.load(open('/tmp/sb-run-mps.json'));print('result verdict:',d['sharing']['verdict'])"
case_ "run --mode mps with the wrong pipe dir is refused" env CUDA_MPS_PIPE_DIRECTORY=$E "$B" run --mode mps --kernels 20
case_ "run --mode timeslice while the daemon serves this pipe dir is refused" env CUDA_MPS_PIPE_DIRECTORY=$P "$B" run --mode timeslice --kernels 20
cp "$B" /tmp/sb-bin && chmod 755 /tmp/sb-bin
chmod 700 $P
case_ "pipe dir mode 700, checked by uid 65534" setpriv --reuid=65534 --regid=65534 --clear-groups env CUDA_MPS_PIPE_DIRECTORY=$P /tmp/sb-bin check
chmod 755 $P
echo "### daemon killed (SIGKILL), stale files left"
pkill -9 -f nvidia-cuda-mps-control; pkill -9 -f nvidia-cuda-mps-server; sleep 0.5
ls -la $P
case_ "stale socket" env CUDA_MPS_PIPE_DIRECTORY=$P "$B" check
printf '#!/bin/sh\nexec sleep 30\n' > /tmp/sb-hang && chmod 755 /tmp/sb-hang
case_ "control client hangs" env CUDA_MPS_PIPE_DIRECTORY=$P "$B" check --mps-control /tmp/sb-hang --mps-timeout 2s
rm -rf "$P" "$L" "$E" /tmp/sb-bin /tmp/sb-hang
