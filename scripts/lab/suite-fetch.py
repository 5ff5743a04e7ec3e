#!/usr/bin/env python3
# scripts/lab/suite-fetch.py MIRROR SUITE PACKAGE DEST (called by scripts/vm-lab):
# download the newest PACKAGE (amd64) listed in SUITE's main index on MIRROR
# (the Debian mirror apt is configured with) to DEST, checked against the
# index's SHA256; print its version. For packages from a suite apt does not
# list here, such as bookworm-backports, without adding it to apt's sources.
import hashlib, lzma, re, subprocess, sys, urllib.request
mirror, suite, package, dest = sys.argv[1:5]
index_url = f"{mirror}/dists/{suite}/main/binary-amd64/Packages.xz"
try:
    index = lzma.decompress(urllib.request.urlopen(index_url, timeout=60).read()).decode()
except Exception as e:
    sys.exit(f"vm-lab: {index_url}: {e}")
best = None
for stanza in index.split("\n\n"):
    if not re.search(r"^Package: " + re.escape(package) + r"$", stanza, re.M):
        continue
    version = re.search(r"^Version: (.+)$", stanza, re.M).group(1)
    path = re.search(r"^Filename: (.+)$", stanza, re.M).group(1)
    digest = re.search(r"^SHA256: ([0-9a-f]{64})$", stanza, re.M).group(1)
    newer = best is None or subprocess.run(["dpkg", "--compare-versions", version, "gt", best[0]]).returncode == 0
    if newer:
        best = (version, path, digest)
if best is None:
    sys.exit(f"vm-lab: no package {package} in {suite} on {mirror}")
version, path, digest = best
try:
    data = urllib.request.urlopen(f"{mirror}/{path}", timeout=300).read()
except Exception as e:
    sys.exit(f"vm-lab: {mirror}/{path}: {e}")
if hashlib.sha256(data).hexdigest() != digest:
    sys.exit(f"vm-lab: {path}: SHA256 differs from {suite}'s index")
open(dest, "wb").write(data)
print(version)
