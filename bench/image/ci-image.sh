#!/usr/bin/env bash
# The runtime image, built and run without a Docker daemon and without pulling a base (issue 29, part 1):
#   1. what the image holds is read from the Dockerfile's runtime stage (one source: an instruction this script
#      does not know fails it, so the two cannot drift apart): its Debian suite, packages, the binary's place,
#      ENV, USER, ENTRYPOINT and CMD;
#   2. the Debian root comes from Debian's packages (mmdebstrap, minbase plus those packages), the binary is the
#      one given (CI's own build), and buildah assembles and commits the image with that configuration;
#   3. the image is turned into an OCI runtime bundle as a runtime would (umoci unpack: its user, environment,
#      entrypoint and command become config.json), its root made read-only, and an OCI runtime (runc; crun where
#      this host's cgroups allow) runs it as the image's user: `--help`, `check` (its no-GPU answer) and `report`
#      of a committed result set from a read-only volume onto a writable one.
#   4. the dra-timeslicing Job's first Pod (no GPU claim) translated by bench/pods and run by the same runtime on
#      the image's root: its uid, capabilities, seccomp, no_new_privs, read-only root, memory limit, masks.
# Usage (repo root, as root): bash bench/image/ci-image.sh BINARY [WORKDIR]
set -euo pipefail
BIN=$(readlink -f "${1:?the sharebench binary to put in the image}")
if [ -n "${2:-}" ]; then W=$2; mkdir -p "$W"; else W=$(mktemp -d /tmp/sharebench-image.XXXX); trap 'rm -rf "$W"' EXIT; fi
STORE=(--storage-driver vfs --root "$W/storage" --runroot "$W/run")
export BUILDAH_ISOLATION=chroot

# 1. The runtime stage: everything after the last FROM.
eval "$(python3 bench/image/runtime_stage.py Dockerfile)"
echo "image: debian $SUITE + [$PACKAGES], binary at $BINARY_PATH, user $USER_SPEC, env [$ENV_LIST], entrypoint $ENTRYPOINT_JSON, cmd $CMD_JSON"

# 2. Root file system from Debian's packages, then the image.
if [ ! -s "$W/rootfs.tar" ]; then bash bench/image/image-root.sh "$W/rootfs.tar"; fi
ctr=$(buildah "${STORE[@]}" from scratch)
buildah "${STORE[@]}" add "$ctr" "$W/rootfs.tar" / > /dev/null
buildah "${STORE[@]}" copy --chmod 0755 "$ctr" "$BIN" "$BINARY_PATH" > /dev/null
config=(--user "$USER_SPEC" --entrypoint "$ENTRYPOINT_JSON" --cmd "$CMD_JSON")
for e in $ENV_LIST; do config+=(--env "$e"); done
buildah "${STORE[@]}" config "${config[@]}" "$ctr"
buildah "${STORE[@]}" commit --quiet "$ctr" localhost/sharebench:ci > /dev/null
buildah "${STORE[@]}" push --quiet localhost/sharebench:ci "oci:$W/oci:ci"
echo "image built: $(du -sh "$W/oci" | cut -f1) (OCI layout)"

# 3. A bundle from the image, as a runtime unpacks it; the Pod's read-only root and volumes.
runtime=runc
if command -v crun > /dev/null && ! grep -q ' /sys/fs/cgroup tmpfs' /proc/mounts; then runtime=crun; fi
run_image() { # NAME MOUNTS_JSON ARGS... : runs the image's entrypoint with ARGS, prints its output
  local name=$1 mounts=$2; shift 2
  rm -rf "$W/bundle-$name"
  umoci unpack --image "$W/oci:ci" "$W/bundle-$name" > /dev/null
  python3 bench/image/bundle.py "$W/bundle-$name/config.json" "$ENTRYPOINT_JSON" "$mounts" "$@"
  "$runtime" run --bundle "$W/bundle-$name" "sharebench-ci-$name-$$" < /dev/null
}
echo "== the image under $runtime: --help"
run_image help '[]' --help | head -3 | grep -q "Measure how well N workloads share one NVIDIA GPU"
echo "ok: --help"
echo "== check without a GPU"
set +e
out=$(run_image check '[]' check 2>&1); rc=$?
set -e
echo "$out" | tail -2
[ "$rc" -eq 4 ] && echo "$out" | grep -q "uid 65532" && echo "$out" | grep -q "verdict: no daemon: time-slicing" \
  || { echo "error: check in the image answered exit $rc, not the no-GPU diagnosis" >&2; exit 1; }
echo "ok: check gives its no-GPU diagnosis as uid 65532 (exit 4)"
echo "== report of a committed result set, from a read-only volume onto a writable one"
in=$(readlink -f results/h200/isolation/share/results)
out_dir="$W/out"; rm -rf "$out_dir"; mkdir -p "$out_dir"; chown 65532:65532 "$out_dir"
run_image report "[[\"$in\", \"/in\", \"ro\"], [\"$out_dir\", \"/out\", \"rw\"]]" report /in --out /out/report | tail -2
test -s "$out_dir/report/report.md" && grep -q "SM share: asked and got" "$out_dir/report/report.md"
[ "$(stat -c %u "$out_dir/report/report.md")" = 65532 ]
echo "ok: report wrote $out_dir/report/report.md as uid 65532 with a read-only root"
set +e
out=$(run_image readonly "[[\"$in\", \"/in\", \"ro\"]]" report /in --out /tmp/report 2>&1); rc=$?
set -e
if [ "$rc" -eq 0 ] || ! echo "$out" | grep -qi "read-only file system"; then
  echo "error: the image's root is writable, or report failed otherwise (exit $rc): $out" >&2
  exit 1
fi
echo "ok: nothing can be written outside the mounted volume (read-only root)"
echo "== a rendered Pod translated to an OCI spec (bench/pods) and run by $runtime on the image's root"
python3 bench/pods/smoke.py "$W/rootfs.tar" "$BIN" | tail -1
