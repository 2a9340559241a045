"""The Pod's `seccompProfile: RuntimeDefault` as CRI-O applies it: the default profile of containers-common
(`/usr/share/containers/seccomp.json`, vendored here as `seccomp-default.json` from Debian's
golang-github-containers-common 0.50.1) turned into an OCI `linux.seccomp` for one architecture and one capability
set, with the rules of containers/common's `seccomp` package: an entry is kept when every capability its
`includes` names is in the container's bounding set and its architectures (if any) name this one, and dropped
when its `excludes` name a capability of the set or this architecture. Pure: no files but the profile read.
"""
import json
import os

DEFAULT_PROFILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seccomp-default.json")
# Go's architecture names, as the profile's `arches` use them, for the machine names Python reports.
GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
SCMP_ARCH = {"amd64": "SCMP_ARCH_X86_64", "arm64": "SCMP_ARCH_AARCH64"}


def load_profile(path=DEFAULT_PROFILE):
    with open(path) as f:
        return json.load(f)


def _kept(entry, arch, caps):
    includes, excludes = entry.get("includes") or {}, entry.get("excludes") or {}
    if any(c not in caps for c in includes.get("caps") or []):
        return False
    if includes.get("arches") and arch not in includes["arches"]:
        return False
    if any(c in caps for c in excludes.get("caps") or []):
        return False
    return arch not in (excludes.get("arches") or [])


def oci_seccomp(profile, arch, caps):
    """`linux.seccomp` of the OCI spec for Go architecture `arch` ("amd64") and bounding capabilities `caps`."""
    if arch not in SCMP_ARCH:
        raise ValueError("no seccomp architecture known for %s" % arch)
    native = next(a for a in profile["archMap"] if a["architecture"] == SCMP_ARCH[arch])
    syscalls = []
    for entry in profile["syscalls"]:
        if not _kept(entry, arch, set(caps)):
            continue
        rule = {"names": list(entry["names"]), "action": entry["action"]}
        if entry.get("args"):
            rule["args"] = [{k: a[k] for k in ("index", "value", "valueTwo", "op")} for a in entry["args"]]
        if "errnoRet" in entry:
            rule["errnoRet"] = entry["errnoRet"]
        syscalls.append(rule)
    out = {"defaultAction": profile["defaultAction"],
           "architectures": [native["architecture"]] + list(native.get("subArchitectures") or []),
           "syscalls": syscalls}
    if "defaultErrnoRet" in profile:
        out["defaultErrnoRet"] = profile["defaultErrnoRet"]
    return out
