#!/usr/bin/env bash
# The runtime image's root file system, from Debian's packages as the Dockerfile's runtime stage names them
# (its suite and apt-get install list, read by runtime_stage.py): mmdebstrap minbase plus those packages, docs,
# man pages and locales left out as the slim base leaves them out. The binary is not in it (the image build, or
# the Pod's node side, puts it at the Dockerfile's path). OUT ending in .xz is compressed (to carry it to the GPU
# machine, which reaches no Debian mirror).
# Usage (as root): bash bench/image/image-root.sh OUT.tar[.xz]
set -euo pipefail
OUT=${1:?the tar to write}
cd "$(dirname "$0")/../.."
eval "$(python3 bench/image/runtime_stage.py Dockerfile)"
tmp="$(dirname "$OUT")/.partial-$(basename "${OUT%.xz}")"  # mmdebstrap writes a tar for a name ending in .tar
mmdebstrap --quiet --variant=minbase --include="${PACKAGES// /,}" \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' "$SUITE" "$tmp"
if [ "${OUT%.xz}" != "$OUT" ]; then xz -T0 -6 -c "$tmp" > "$tmp.xz" && rm "$tmp" && tmp="$tmp.xz"; fi
mv "$tmp" "$OUT"
echo "image root: debian $SUITE minbase + [$PACKAGES] -> $OUT ($(du -h "$OUT" | cut -f1))"
