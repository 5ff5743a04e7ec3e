#!/usr/bin/env python3
# scripts/lab/pool-fetch.py URL DEST SUITE PATTERN (called by scripts/vm-lab):
# fetch a kernel package from the archive's pool by URL; when that file has
# been superseded, find the newest package whose name matches PATTERN in
# SUITE's index (same archive) and fetch that instead.
import lzma, re, sys, urllib.request
url, dest, suite, pattern = sys.argv[1:5]
try:
    urllib.request.urlretrieve(url, dest)
    sys.exit(0)
except Exception as e:
    sys.stderr.write(f"vm-lab: {url}: {e}; looking for the current package in {suite}\n")
base = url.split("/pool/")[0]
index = lzma.decompress(urllib.request.urlopen(f"{base}/dists/{suite}/main/binary-amd64/Packages.xz").read()).decode()
best = None
for stanza in index.split("\n\n"):
    name = re.search(r"^Package: " + pattern + r"$", stanza, re.M)
    path = re.search(r"^Filename: (.+)$", stanza, re.M)
    if name and path and (best is None or int(name.group(1)) > best[0]):
        best = (int(name.group(1)), path.group(1))
if best is None:
    sys.exit(f"vm-lab: no package matching {pattern} in {suite}")
sys.stderr.write(f"vm-lab: using {best[1]}\n")
urllib.request.urlretrieve(f"{base}/{best[1]}", dest)
