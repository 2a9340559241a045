#!/usr/bin/env bash
# Waits for a Job to end either way: exits 0 when it completed, 1 at once when it failed (kubectl wait
# --for=condition=complete would wait out its whole timeout on a Job that failed, exactly the case of an MPS
# worker that refuses to measure), 2 after TIMEOUT seconds. On failure it prints the Job's failed Pods and the
# last lines of their logs, where sharebench says why.
# Usage: bash manifests/wait-job.sh [JOB] [TIMEOUT_S] [kubectl flags, e.g. -n NAMESPACE]
set -u
job=${1:-sharebench}; timeout=${2:-1800}; shift $(( $# < 2 ? $# : 2 ))
kubectl=${KUBECTL:-kubectl}
deadline=$(( $(date +%s) + timeout ))
while :; do
  # The conditions that hold: Complete (or SuccessCriteriaMet), Failed (or FailureTarget).
  held=$("$kubectl" "$@" get "job/$job" -o 'jsonpath={.status.conditions[?(@.status=="True")].type}' 2>&1) || {
    echo "wait-job: cannot read job/$job: $held" >&2; exit 2; }
  case " $held " in
    *" Complete "*) echo "wait-job: job/$job completed"; exit 0 ;;
    *" Failed "*|*" FailureTarget "*)
      echo "wait-job: job/$job FAILED ($held); its failed Pods and the end of their logs:" >&2
      "$kubectl" "$@" get pods -l "job-name=$job" --field-selector=status.phase=Failed >&2 || true
      "$kubectl" "$@" logs -l "job-name=$job" --tail=5 --prefix >&2 || true
      exit 1 ;;
  esac
  if [ "$(date +%s)" -ge "$deadline" ]; then echo "wait-job: job/$job still running after ${timeout} s" >&2; exit 2; fi
  sleep 5
done
