import hashlib
import re
from pathlib import Path

VENDOR = Path(__file__).resolve().parents[2] / "static" / "vendor"


def test_vendored_files_match_the_recorded_checksums() -> None:
    rows = re.findall(r"\| `([^`]+\.js)` \|.*\| `([0-9a-f]{64})` \|", (VENDOR / "VERSIONS.md").read_text())
    assert {name for name, _ in rows} == {path.name for path in VENDOR.glob("*.js")}
    for name, digest in rows:
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
