"""The image's Python packages by size, from a constraints file and PyPI, without Docker: for each
pin, the wheel the image installs on x86_64, its download size and its size unpacked (read from
the wheel's zip directory with HTTP range requests, not downloaded whole).

    python deploy/image_size.py [CONSTRAINTS]     # default deploy/constraints.txt
"""

from __future__ import annotations

import io
import sys
import urllib.request
import zipfile
from pathlib import Path

from pypi_wheels import ROOT, image_wheels

MB = 1_000_000


class RemoteFile(io.RawIOBase):
    """A file on an HTTP server read by ranges: enough for zipfile to list a wheel's contents."""

    def __init__(self, url: str, size: int) -> None:
        self.url, self.size, self.position = url, size, 0

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = base + offset
        return self.position

    def tell(self) -> int:
        return self.position

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        end = min(self.position + len(buffer), self.size) - 1
        if end < self.position:
            return 0
        # PyPI's https address of the file (pypi_wheels): no other scheme reaches here
        wanted = {"Range": f"bytes={self.position}-{end}"}
        request = urllib.request.Request(self.url, headers=wanted)  # noqa: S310
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
            data = response.read()
        buffer[: len(data)] = data
        self.position += len(data)
        return len(data)


def unpacked_size(wheel: dict[str, object]) -> int:
    remote = io.BufferedReader(RemoteFile(str(wheel["url"]), int(str(wheel["size"]))), 1 << 16)
    with zipfile.ZipFile(remote) as archive:
        return sum(entry.file_size for entry in archive.infolist())


def pins(path: Path) -> list[tuple[str, str]]:
    lines = path.read_text().replace("\\\n", " ").splitlines()
    requirements = [line.split()[0] for line in lines if line.strip() and not line.startswith("#")]
    return [(name, version) for name, version in (pin.split("==") for pin in requirements)]


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "deploy" / "constraints.txt"
    rows = []
    for name, version in pins(path):
        wheel = image_wheels(name, version)["x86_64"][0]
        rows.append((name, version, int(wheel["size"]), unpacked_size(wheel)))
    rows.sort(key=lambda row: row[3], reverse=True)
    for name, version, download, unpacked in rows:
        pin = f"{name}=={version}"
        print(f"{pin:<50} {download / MB:6.1f} MB wheel {unpacked / MB:6.1f} MB unpacked")
    download_total = sum(row[2] for row in rows)
    unpacked_total = sum(row[3] for row in rows)
    print(
        f"{len(rows)} packages: {download_total / MB:.1f} MB of wheels, "
        f"{unpacked_total / MB:.1f} MB unpacked"
    )


if __name__ == "__main__":
    main()
