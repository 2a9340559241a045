"""The Pod network of a one-node cluster, as a CNI bridge plugin makes it: bridge `sbbr0` with 169.254.77.1/24
(link-local: nothing outside this machine is ever addressed), each Pod a network namespace with eth0 on it, whose
path goes into the Pod's OCI spec (`linux.namespaces`), as CRI-O hands the sandbox's namespace to the runtime.
Needs pyroute2 (carried to the GPU machine as a wheel).
"""
import os


class Cluster:
    """The bridge and the Pods' network namespaces (see the module's doc); `close` removes the namespaces."""

    BRIDGE, PREFIX = "sbbr0", "169.254.77."

    def __init__(self, state):
        from pyroute2 import IPRoute  # noqa: F401  (fail early, with the import error, where it is missing)
        self.state = state
        os.makedirs(state, exist_ok=True)
        self.next_ip = 10
        self.namespaces = []
        with self._ipr() as ipr:
            if not ipr.link_lookup(ifname=self.BRIDGE):
                ipr.link("add", ifname=self.BRIDGE, kind="bridge")
                index = ipr.link_lookup(ifname=self.BRIDGE)[0]
                ipr.addr("add", index=index, address=self.PREFIX + "1", prefixlen=24)
                ipr.link("set", index=index, state="up")

    @staticmethod
    def _ipr():
        from pyroute2 import IPRoute
        return IPRoute()

    def add_pod(self, pod_name):
        """A network namespace for the Pod with eth0 on the bridge; returns (namespace path, address)."""
        from pyroute2 import NetNS, netns
        ip = self.PREFIX + str(self.next_ip)
        self.next_ip += 1
        ns = "sb-" + pod_name[-40:]
        netns.create(ns)
        self.namespaces.append(ns)
        host_end = "sbv%d" % (self.next_ip - 1)
        with self._ipr() as ipr:
            ipr.link("add", ifname=host_end, kind="veth", peer={"ifname": "eth0", "net_ns_fd": ns})
            index = ipr.link_lookup(ifname=host_end)[0]
            ipr.link("set", index=index, master=ipr.link_lookup(ifname=self.BRIDGE)[0], state="up")
        with NetNS(ns) as inside:
            eth0 = inside.link_lookup(ifname="eth0")[0]
            inside.addr("add", index=eth0, address=ip, prefixlen=24)
            inside.link("set", index=eth0, state="up")
            inside.link("set", index=inside.link_lookup(ifname="lo")[0], state="up")
        return "/var/run/netns/" + ns, ip

    def close(self):
        from pyroute2 import netns
        for ns in self.namespaces:
            try:
                netns.remove(ns)  # the veth pair goes with it
            except OSError:
                pass
        self.namespaces = []
