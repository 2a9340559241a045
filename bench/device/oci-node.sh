# The node's container runtime for the bench/device Pod scripts (source it, as root, at the repo root): crun
# (CRI-O's default; runc where crun will not start) unpacked from the Debian packages carried in dist/debs,
# the image's root from dist/image-root.tar.xz (bench/image/image-root.sh), pyroute2 from dist/whl for the Pod
# network. Exports what bench/pods/node.py reads: SB_RUNTIME, SB_RUNTIME_LIBS, SIM_IMAGE_ROOT, PYTHONPATH.
# `kubectl_sim_setup BINARY`: the kubectl that `plan --kubernetes` calls (bench/device/kubectl-sim.py, rendering
# with the real kubectl from dist/kubectl.xz) at /tmp/sb-k8s-bin/kubectl, with what it reads exported.
# Prepare here: bash bench/device/oci-node.sh --prepare   (needs Debian's archive, PyPI and root)
if [ "${1:-}" = "--prepare" ]; then
  set -e
  mkdir -p dist/debs dist/whl
  (cd dist/debs && apt-get download crun libyajl2 runc 2>&1 | grep -v '^W:')
  python3 -m pip download -q --no-deps -d dist/whl pyroute2
  bash bench/image/image-root.sh dist/image-root.tar.xz
  exit 0
fi
oci_node_setup() {
  local t=/tmp/sb-oci
  rm -rf $t && mkdir -p $t/root
  for deb in dist/debs/*.deb; do dpkg-deb -x "$deb" $t/root; done
  export SB_RUNTIME_LIBS=$t/root/usr/lib/x86_64-linux-gnu
  export SB_RUNTIME=$t/root/usr/bin/crun
  if ! LD_LIBRARY_PATH=$SB_RUNTIME_LIBS $SB_RUNTIME --version > /dev/null 2>&1; then
    echo "crun does not start here: runc instead"; export SB_RUNTIME=$t/root/usr/sbin/runc
  fi
  LD_LIBRARY_PATH=$SB_RUNTIME_LIBS $SB_RUNTIME --version | head -1
  python3 -c 'import lzma, shutil; shutil.copyfileobj(lzma.open("dist/image-root.tar.xz"), open("/tmp/sb-oci/image-root.tar", "wb"))'
  export SIM_IMAGE_ROOT=$t/image-root.tar
  python3 -m pip install -q --no-index --no-deps --target $t/site dist/whl/*.whl 2>&1 | grep -v WARNING
  export PYTHONPATH=$t/site
}
kubectl_sim_setup() {
  python3 -c 'import lzma, shutil; shutil.copyfileobj(lzma.open("dist/kubectl.xz"), open("/tmp/kubectl-real", "wb"))'
  chmod +x /tmp/kubectl-real; mkdir -p /tmp/sb-k8s-bin
  printf '#!/bin/sh\nexec python3 %s "$@"\n' "$(readlink -f bench/device/kubectl-sim.py)" > /tmp/sb-k8s-bin/kubectl
  chmod +x /tmp/sb-k8s-bin/kubectl
  export SIM_KUBECTL=/tmp/kubectl-real SIM_SHAREBENCH=${1:?the sharebench binary} SIM_STATE=/tmp/kubectl-sim
}
