#!/bin/sh
# Runs a tenant on the cores its Pod would own under the kubelet's static CPU manager policy (a Guaranteed Pod
# with whole CPUs gets cores of its own): CPUS_PER_POD cores (default 2) a Pod, Pod i on cores i*n .. i*n+n-1,
# from SHAREBENCH_WORKER_INDEX, which sharebench gives every tenant, supervised or alone.
# Usage: sharebench compare --exec -- sh bench/tenants/pinned.sh python3 bench/tenants/resnet.py --batch 1
n=${CPUS_PER_POD:-2}
i=${SHAREBENCH_WORKER_INDEX:?SHAREBENCH_WORKER_INDEX is not set: run this under sharebench}
first=$((i * n))
exec taskset -c "$first-$((first + n - 1))" "$@"
