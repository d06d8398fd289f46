"""clamd's scan limits are the same wherever it runs and fit the uploads (issue #18, item 9):
the local runner's (deploy/local/components/clamd.sh) and the containers' (compose and
Kubernetes mount deploy/k8s/clamav/clamd.conf)."""

from __future__ import annotations

import re
from pathlib import Path

from services.documents.settings import DocumentsSettings

ROOT = Path(__file__).resolve().parents[2]
LIMITS = ("StreamMaxLength", "MaxFileSize", "MaxScanSize", "MaxScanTime")


def size(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([KM]?)", value).groups()  # type: ignore[union-attr]
    return int(number) * {"": 1, "K": 1024, "M": 1024 * 1024}[unit]


def local_limits() -> dict[str, str]:
    script = (ROOT / "deploy/local/components/clamd.sh").read_text()
    defaults = dict(re.findall(r'^CLAMD_(\w+)="\$\{ECP_CLAMD_\w+:-([^}]+)\}"', script, re.M))
    rendered = dict(re.findall(r"^(\w+) \$CLAMD_(\w+)$", script, re.M))
    return {name: defaults[variable] for name, variable in rendered.items()}


def container_conf() -> dict[str, str]:
    return dict(re.findall(r"^(\w+) (\S+)$", (ROOT / "deploy/k8s/clamav/clamd.conf").read_text(), re.M))


def test_the_local_and_container_clamd_share_the_same_limits() -> None:
    local, containers = local_limits(), container_conf()
    assert set(LIMITS) <= set(local)
    assert {k: local[k] for k in LIMITS} == {k: containers[k] for k in LIMITS}


def test_a_whole_upload_fits_in_one_stream_and_a_limit_reached_is_reported() -> None:
    containers = container_conf()
    assert size(containers["StreamMaxLength"]) >= DocumentsSettings().max_upload_bytes
    assert containers["AlertExceedsMax"] == "yes"
    assert "AlertExceedsMax yes" in (ROOT / "deploy/local/components/clamd.sh").read_text()
    # clamd gives up on time before the service does (its client timeout).
    assert int(containers["MaxScanTime"]) / 1000 < DocumentsSettings().clamd_timeout_s
