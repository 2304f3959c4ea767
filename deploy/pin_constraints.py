"""Turn `pip install --dry-run --report -` JSON (stdin) into deploy/constraints.txt (stdout).

Run by `make constraints`: the image then installs exactly these versions.
"""

import json
import sys

HEADER = """\
# The container image's packages, pinned: `make constraints` re-pins them (after a change of
# pyproject.toml's dependencies); the Dockerfile installs `.[otel]` under these constraints.
"""

report = json.load(sys.stdin)
pins = sorted(
    (
        f"{item['metadata']['name']}=={item['metadata']['version']}"
        for item in report["install"]
        if item["metadata"]["name"] != "transfers"
    ),
    key=str.lower,
)
sys.stdout.write(HEADER + "".join(f"{pin}\n" for pin in pins))
