#!/usr/bin/env python3
"""What the Dockerfile's runtime stage (after its last FROM) puts in the image, as shell assignments for
bench/image/ci-image.sh: the Debian suite of its base, the packages it installs, where the binary goes, and its
ENV, USER, ENTRYPOINT and CMD. The Dockerfile is the one source of the image's contents: an instruction or a RUN
this script does not understand is an error, so the image CI builds cannot silently differ from it.

    python3 bench/image/runtime_stage.py Dockerfile
"""
import json, re, shlex, sys


def instructions(text):
    """(INSTRUCTION, arguments) of each instruction, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#")))
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            yield word.upper(), rest.strip()


def runtime_stage(text):
    stage = []
    for ins, rest in instructions(text):
        stage = [] if ins == "FROM" else stage
        stage.append((ins, rest))
    out = {"PACKAGES": [], "ENV_LIST": []}
    for ins, rest in stage:
        if ins == "FROM":
            m = re.fullmatch(r"debian:([a-z]+)-slim", rest)
            if not m:
                sys.exit(f"runtime_stage.py: the runtime base '{rest}' is not debian:<suite>-slim")
            out["SUITE"] = m.group(1)
        elif ins == "RUN":
            for command in (c.strip() for c in rest.split("&&")):
                words = shlex.split(command)
                if words[:2] == ["apt-get", "update"] or words[:2] == ["rm", "-rf"]:
                    continue
                if words[:3] == ["apt-get", "install", "-y"]:
                    out["PACKAGES"] += [w for w in words[3:] if not w.startswith("-")]
                    continue
                sys.exit(f"runtime_stage.py: RUN '{command}' is not an apt-get install the CI image can repeat")
        elif ins == "COPY":
            m = re.fullmatch(r"--from=build \S+/sharebench (\S+)", rest)
            if not m:
                sys.exit(f"runtime_stage.py: COPY '{rest}' is not the binary from the build stage")
            out["BINARY_PATH"] = m.group(1)
        elif ins == "ENV":
            out["ENV_LIST"] += rest.split()
        elif ins == "USER":
            out["USER_SPEC"] = rest
        elif ins in ("ENTRYPOINT", "CMD"):
            out[f"{ins}_JSON"] = json.dumps(json.loads(rest))
        else:
            sys.exit(f"runtime_stage.py: {ins} in the runtime stage is not something the CI image repeats; teach it")
    for key in ("SUITE", "BINARY_PATH", "USER_SPEC", "ENTRYPOINT_JSON", "CMD_JSON"):
        if key not in out:
            sys.exit(f"runtime_stage.py: the runtime stage sets no {key}")
    return out


if __name__ == "__main__":
    for key, value in runtime_stage(open(sys.argv[1]).read()).items():
        print(f"{key}={shlex.quote(' '.join(value) if isinstance(value, list) else value)}")
