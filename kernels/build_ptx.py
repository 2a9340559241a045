#!/usr/bin/env python3
"""Build kernels/sharebench.ptx from kernels/sharebench.cu with NVRTC 12.0 (no GPU needed).

The PTX must be JIT-able by any driver from R525 (CUDA 12.0) on, so it is built by NVRTC 12.0 for compute_70:
that yields `.version 8.0` and `.target sm_70`. NVRTC comes from the PyPI wheel nvidia-cuda-nvrtc-cu12==12.0.76:

    python3 -m pip install --target .nvrtc nvidia-cuda-nvrtc-cu12==12.0.76
    python3 kernels/build_ptx.py                      # rewrite kernels/sharebench.ptx
    python3 kernels/build_ptx.py --check              # fail if the committed PTX is stale

The library is looked up in $NVRTC_LIB, then under .nvrtc/ (the --target above), then on the loader path.
"""
import argparse
import ctypes
import glob
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "sharebench.cu")
PTX = os.path.join(HERE, "sharebench.ptx")
OPTIONS = [b"--gpu-architecture=compute_70", b"--std=c++11"]


def load_nvrtc():
    candidates = []
    if os.environ.get("NVRTC_LIB"):
        candidates.append(os.environ["NVRTC_LIB"])
    root = os.path.join(os.path.dirname(HERE), ".nvrtc")
    candidates += sorted(glob.glob(os.path.join(root, "nvidia", "cuda_nvrtc", "lib", "libnvrtc.so.12*")))
    candidates.append("libnvrtc.so.12")
    for path in candidates:
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    sys.exit("error: libnvrtc.so.12 not found; install it with "
             "`python3 -m pip install --target .nvrtc nvidia-cuda-nvrtc-cu12==12.0.76` or set NVRTC_LIB")


def compile_ptx(nvrtc, source):
    def check(status, what):
        if status != 0:
            nvrtc.nvrtcGetErrorString.restype = ctypes.c_char_p
            sys.exit("error: %s failed: %s" % (what, nvrtc.nvrtcGetErrorString(status).decode()))

    major, minor = ctypes.c_int(), ctypes.c_int()
    check(nvrtc.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor)), "nvrtcVersion")
    if (major.value, minor.value) != (12, 0):
        sys.exit("error: NVRTC %d.%d found, 12.0 required (pip install nvidia-cuda-nvrtc-cu12==12.0.76)"
                 % (major.value, minor.value))
    prog = ctypes.c_void_p()
    check(nvrtc.nvrtcCreateProgram(ctypes.byref(prog), source, b"sharebench.cu", 0, None, None),
          "nvrtcCreateProgram")
    opts = (ctypes.c_char_p * len(OPTIONS))(*OPTIONS)
    status = nvrtc.nvrtcCompileProgram(prog, len(OPTIONS), opts)
    log_size = ctypes.c_size_t()
    nvrtc.nvrtcGetProgramLogSize(prog, ctypes.byref(log_size))
    log = ctypes.create_string_buffer(log_size.value)
    nvrtc.nvrtcGetProgramLog(prog, log)
    if status != 0:
        sys.exit("error: compiling sharebench.cu failed:\n" + log.value.decode())
    size = ctypes.c_size_t()
    check(nvrtc.nvrtcGetPTXSize(prog, ctypes.byref(size)), "nvrtcGetPTXSize")
    ptx = ctypes.create_string_buffer(size.value)
    check(nvrtc.nvrtcGetPTX(prog, ptx), "nvrtcGetPTX")
    nvrtc.nvrtcDestroyProgram(ctypes.byref(prog))
    return ptx.value.decode()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if kernels/sharebench.ptx is out of date")
    args = parser.parse_args()
    with open(SOURCE, "rb") as f:
        ptx = compile_ptx(load_nvrtc(), f.read())
    if args.check:
        with open(PTX) as f:
            committed = f.read()
        if committed != ptx:
            sys.exit("error: kernels/sharebench.ptx is stale: run `python3 kernels/build_ptx.py` and commit it")
        print("kernels/sharebench.ptx is up to date")
        return
    tmp = PTX + ".tmp"
    with open(tmp, "w") as f:
        f.write(ptx)
    os.replace(tmp, PTX)
    print("wrote kernels/sharebench.ptx (%d bytes)" % len(ptx))


if __name__ == "__main__":
    main()
