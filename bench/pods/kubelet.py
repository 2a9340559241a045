"""What the kubelet and the cluster resolve for a Pod before the runtime sees it, as pure functions: the
container's env (values, $(VAR) references, Downward API fields, Secret keys), the /etc/hosts it writes (with the
peers the cluster DNS would answer for the headless Service), the /etc/resolv.conf of the Pod's DNS policy, the
sharing strategy each GPU claim or device-plugin config names, and the CDI edits of an MPS claim of NVIDIA's DRA
driver (k8s-dra-driver, sharing.go: the claim's MPS pipe directory at /tmp/nvidia-mps, its shm directory at
/dev/shm, CUDA_MPS_PIPE_DIRECTORY set).
"""
import base64

from translate import PodFailed, expand

DRA_MPS_PIPE = "/tmp/nvidia-mps"


def pod_env(container, labels_of_template, index, pod_name, controller_uid, secrets=None, namespace="default"):
    """The container's env as the kubelet resolves it, in order (JOB_COMPLETION_INDEX first, as the Job
    controller's Pod template adds it)."""
    env = {"JOB_COMPLETION_INDEX": str(index)}
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = expand(var["value"], env)
            continue
        ref = var["valueFrom"].get("secretKeyRef")
        if ref is not None:
            data = (secrets or {}).get(ref["name"], {}).get("data", {})
            if ref["key"] in data:
                env[var["name"]] = base64.b64decode(data[ref["key"]]).decode()
            elif not ref.get("optional"):
                raise PodFailed("CreateContainerConfigError",
                                "secret %s key %s not found" % (ref["name"], ref["key"]))
            continue
        path = var["valueFrom"]["fieldRef"]["fieldPath"]
        labels = dict(labels_of_template)
        labels["batch.kubernetes.io/controller-uid"] = controller_uid
        labels["batch.kubernetes.io/job-completion-index"] = str(index)
        fields = {"metadata.name": pod_name, "metadata.namespace": namespace}
        fields.update({"metadata.labels['%s']" % k: v for k, v in labels.items()})
        if path not in fields:
            raise PodFailed("CreateContainerConfigError", "fieldRef %s is not resolved here" % path)
        env[var["name"]] = fields[path]
    return env


def hosts_file(own_ip, hostname, subdomain, namespace, peers):
    """/etc/hosts as the kubelet writes it, plus the peers the cluster DNS would resolve."""
    lines = ["# Kubernetes-managed hosts file (bench/pods: the cluster DNS's answers for the Service added).",
             "127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    fqdn = "%s.%s.%s.svc.cluster.local" % (hostname, subdomain, namespace) if subdomain else None
    if own_ip:
        lines.append("%s\t%s" % (own_ip, "\t".join(n for n in (fqdn, hostname) if n)))
    lines.append("# cluster DNS for the headless Service:")
    for peer_host, peer_ip in sorted(peers.items()):
        if subdomain and peer_ip:
            lines.append("%s\t%s.%s\t%s.%s.%s.svc.cluster.local" % (peer_ip, peer_host, subdomain, peer_host,
                                                                    subdomain, namespace))
    return "\n".join(lines) + "\n"


def resolv_conf(namespace):
    """dnsPolicy ClusterFirst's search path; no nameserver answers here, the names are in /etc/hosts."""
    return "search %s.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n" % namespace


def sharing_strategies(objects):
    """Claim name -> sharing strategy ("MPS", "TimeSlicing") of the ResourceClaims; device plugin -> its mode."""
    out = {}
    for o in objects:
        if o["kind"] == "ResourceClaim":
            for c in o["spec"]["devices"].get("config", []):
                strategy = c.get("opaque", {}).get("parameters", {}).get("sharing", {}).get("strategy")
                if strategy:
                    out[o["metadata"]["name"]] = strategy
        if o["kind"] == "ConfigMap" and "device-plugin" in o["metadata"]["name"]:
            text = "\n".join(o.get("data", {}).values())
            out["nvidia.com/gpu"] = "MPS" if "mps:" in text else "TimeSlicing"
    return out


def mps_claim_edits(pipe_dir, shm_dir):
    """The CDI edits an MPS claim brings: (mounts as (host, container, mode), env)."""
    return [(pipe_dir, DRA_MPS_PIPE, "rw"), (shm_dir, "/dev/shm", "rw")], {"CUDA_MPS_PIPE_DIRECTORY": DRA_MPS_PIPE}
