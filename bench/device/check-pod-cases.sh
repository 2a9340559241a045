#!/usr/bin/env bash
# `sharebench check` and `run --mode mps` where a Pod runs them: in a PID namespace of its own with its own /proc
# (pid 1 inside; the MPS daemon's client table shows the node's pid), with a private IPC namespace, as uid 65532,
# against a private MPS daemon on the "node"; and every true fallback in the same places.
# Usage (repo root, as root, release binary in dist/): bash bench/device/check-pod-cases.sh
set -u
S=/tmp/sb-pod-cases; rm -rf $S; mkdir -p $S/pipe $S/log $S/other $S/other-log $S/empty; chmod 755 $S
cp "$(readlink -f "${SHAREBENCH_BIN:-dist/sharebench}")" $S/sharebench; B=$S/sharebench
P=$S/pipe
CUDA_MPS_PIPE_DIRECTORY=$P CUDA_MPS_LOG_DIRECTORY=$S/log nvidia-cuda-mps-control -d
CUDA_MPS_PIPE_DIRECTORY=$S/other CUDA_MPS_LOG_DIRECTORY=$S/other-log nvidia-cuda-mps-control -d
sleep 0.5
POD=(unshare --pid --fork --mount-proc)
AS65532=(setpriv --reuid=65532 --regid=65532 --clear-groups)
case_() { echo; echo "### $1"; shift; echo "\$ $*"; "$@"; echo "(exit $?)"; }
case_ "own PID namespace (a Pod without hostPID), daemon on the node" env CUDA_MPS_PIPE_DIRECTORY=$P "${POD[@]}" $B check
case_ "own PID + IPC namespaces, uid 65532" env CUDA_MPS_PIPE_DIRECTORY=$P "${POD[@]}" --ipc "${AS65532[@]}" $B check
case_ "own PID, IPC, UTS, mount namespaces, uid 65532, active thread percentage 25" \
  env CUDA_MPS_PIPE_DIRECTORY=$P CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=25 "${POD[@]}" --ipc --uts --mount "${AS65532[@]}" $B check
echo; echo "### run --mode mps in its own PID + IPC namespaces as uid 65532 (result on stdout)"
env CUDA_MPS_PIPE_DIRECTORY=$P "${POD[@]}" --ipc "${AS65532[@]}" $B run --mode mps --kernels 50 > $S/run.json; echo "(exit $?)"
python3 -c "import json; r = json.load(open('$S/run.json')); print('result:', r['sharing']['verdict'], 'proof', r['sharing']['proof'], r['lanes'][0]['kernels'], 'kernels')"
case_ "own PID namespace, the process's pipe directory empty (silent fallback)" \
  env CUDA_MPS_PIPE_DIRECTORY=$S/empty "${POD[@]}" $B check --pipe-dir $P
case_ "own PID + IPC namespaces, uid 65532, empty pipe directory" \
  env CUDA_MPS_PIPE_DIRECTORY=$S/empty "${POD[@]}" --ipc "${AS65532[@]}" $B check --pipe-dir $P
case_ "own PID namespace, a client of another daemon's pipe directory" \
  env CUDA_MPS_PIPE_DIRECTORY=$S/other "${POD[@]}" $B check --pipe-dir $P
case_ "two GPU processes of one PID namespace: a joined worker and a check beside it, then a fallback beside it" \
  env CUDA_MPS_PIPE_DIRECTORY=$P "${POD[@]}" sh -c "$B run --mode mps --kernel tiny --duration 6s > /dev/null & sleep 2.5; $B check; echo \"(check exit \$?)\"; CUDA_MPS_PIPE_DIRECTORY=$S/empty $B check --pipe-dir $P; echo \"(fallback check exit \$?)\"; wait"
case_ "--expect timeslice in its own PID namespace, no daemon" env CUDA_MPS_PIPE_DIRECTORY=$S/empty "${POD[@]}" --ipc $B check --expect timeslice
case_ "own PID namespace WITHOUT its own /proc (CUDA itself fails)" env CUDA_MPS_PIPE_DIRECTORY=$P unshare --pid --fork $B check
case_ "the node's PID namespace (as before)" env CUDA_MPS_PIPE_DIRECTORY=$P $B check
echo; echo "### the daemon's client table during a Pod-namespace client"
env CUDA_MPS_PIPE_DIRECTORY=$P "${POD[@]}" sh -c "$B run --mode mps --kernel tiny --duration 3s > /dev/null & sleep 2; echo ps | CUDA_MPS_PIPE_DIRECTORY=$P nvidia-cuda-mps-control; readlink /proc/self/ns/pid; wait"
for d in $P $S/other; do echo quit | CUDA_MPS_PIPE_DIRECTORY=$d nvidia-cuda-mps-control; done
sleep 1; pgrep -a nvidia-cuda-mps || echo "no MPS process left"
