"""The README's five-minute walkthrough, run as written against a real `cohorthub serve`.

Every shell block of the walkthrough runs in one bash process. Only what cannot be literal is
replaced: the server's port and database (the test's own), the sink's port, and the placeholder
lines such as `WS=4f1c…; KEY=9b62…`, which take the values the commands above them printed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port, stop_process

ROOT = Path(__file__).resolve().parents[3]
VENV_BIN = Path(sys.executable).parent
#: Placeholder variable → the JSON field (of the latest printed object that has it) it stands for.
FIELDS = {
    "WS": "workspace_id",
    "KEY": "rest_api_key",
    "PK": "partner_api_key",
    "DIK": "data_import_key",
    "SEG": "id",
}
HELPER = r"""
set -eo pipefail
exec > >(tee -a "$WALK_LOG") 2>&1
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
field() { python3 -c '
import json, sys
text, decoder, found = open(sys.argv[1]).read(), json.JSONDecoder(), None
for i, ch in enumerate(text):
    if ch == "{":
        try: obj = decoder.raw_decode(text, i)[0]
        except ValueError: continue
        if sys.argv[2] in obj: found = obj[sys.argv[2]]
print(found)
' "$WALK_LOG" "$1"; }
"""


def walkthrough_blocks(readme: str) -> list[str]:
    """The ```sh blocks between the walkthrough's heading and the next section."""
    section = readme.split("## Five-minute walkthrough", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, flags=re.S)


def placeholder(line: str) -> str | None:
    """`WS=4f1c…; KEY=9b62…` → assignments from printed output (None when the line is a command)."""
    parts = [p.strip() for p in line.split("#", 1)[0].split(";") if p.strip()]
    names = [p.split("=", 1)[0] for p in parts]
    if not parts or not all(re.fullmatch(r"[A-Z]+=\S*…", p) for p in parts):
        return None
    return "; ".join(f'{name}="$(field {FIELDS[name]})"' for name in names)


def script(readme: str, *, api_port: int, sink_port: int, database: str) -> str:
    """The walkthrough as one bash script, with only the unavoidable replacements."""
    lines = []
    for block in walkthrough_blocks(readme):
        for line in block.splitlines():
            lines.append(placeholder(line) or line)
    text = "\n".join(lines)
    text = text.replace('"$PWD/.venv/bin:$PATH"', f'"{VENV_BIN}:$PATH"')
    text = text.replace('"sqlite:///$PWD/var/cohorthub.sqlite"', f'"{database}"')
    text = text.replace("localhost:8000", f"127.0.0.1:{api_port}").replace(":8000", f":{api_port}")
    text = text.replace("--port 9000", f"--port {sink_port}").replace(":9000/", f":{sink_port}/")
    return HELPER + text + KEEP_THE_SINK


#: A reader keeps the sink running after the last block; the script's exit would stop it, so the
#: script waits (up to 60 s) for Currents to deliver first. Serve notices a new connector within 5 s.
KEEP_THE_SINK = """
for _ in $(seq 600); do grep -qs users.behaviors.CustomEvent events.jsonl && break; sleep 0.1; done
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """`cohorthub serve` on a free port and a fresh database: (url, database url, its start banner)."""
    port, database = free_port(), f"sqlite:///{tmp_path / 'server' / 'cohorthub.sqlite'}"
    banner = tmp_path / "serve.out"
    with banner.open("w") as out:
        proc = subprocess.Popen(
            [str(VENV_BIN / "cohorthub"), "serve", "--port", str(port), "--database", database],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "COLUMNS": "80"},
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, banner.read_text()
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "serve did not answer"
            time.sleep(0.1)
        yield url, database, banner.read_text()
    finally:
        stop_process(proc, timeout=20)


def _objects(log: str) -> list[dict[str, object]]:
    """Every JSON object printed, also those curl printed without a newline between them."""
    decoder, found, end = json.JSONDecoder(), [], 0
    for i, ch in enumerate(log):
        if ch != "{" or i < end:
            continue
        try:
            value, end = decoder.raw_decode(log, i)
        except ValueError:
            continue
        found.append(value)
    return found


def test_the_readme_walkthrough_runs_end_to_end(server: tuple[str, str, str], tmp_path: Path) -> None:
    url, database, banner = server
    assert f"serving on {url}" in banner and "database:" in banner and "cohorthub workspace create" in banner
    walk_tmp = tmp_path / "tmp"
    walk_tmp.mkdir()
    log = tmp_path / "walk.log"
    body = script(
        (ROOT / "README.md").read_text(encoding="utf-8"),
        api_port=int(url.rsplit(":", 1)[1]),
        sink_port=free_port(),
        database=database,
    )
    env = {**os.environ, "WALK_LOG": str(log), "TMPDIR": str(walk_tmp), "COLUMNS": "80"}
    env["COHORTHUB_USER_PASSWORD"] = "walkthrough-password"  # what `user create` would prompt for
    env.pop("COHORTHUB_DATABASE_URL", None)
    done = subprocess.run(
        ["bash", "-c", body], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240
    )
    output = log.read_text()
    assert done.returncode == 0, output + done.stderr
    objects = _objects(output)
    enabled = next(o for o in objects if "data_import_key" in o)
    assert enabled["rest_endpoint"] == url  # the address serve listens on, recorded by serve
    imported = next(o for o in objects if o.get("entered") == 2)
    assert imported["identifiers_matched"] == 2 and imported["size"] == 2
    members = next(o for o in objects if "members" in o and "next_cursor" in o)["members"]
    assert sorted(m["external_id"] for m in members) == ["u1", "u2"]  # type: ignore[index, union-attr]
    sized = next(o for o in objects if "segment_id" in o and "size" in o)
    assert sized["size"] == 1  # u1: in the cohort and in Spain
    explained = next(o for o in objects if o.get("external_id") == "u2" and "matched" in o)
    assert explained["matched"] is False  # u2 has no country
    assert "trial-abandoners: sent name, 1 adds" in output  # `sync run` pushed the file's member
    assert re.search(r"email\s+you@example.com\nrole\s+admin", output)  # the dashboard account
    # The walkthrough's files land in its temporary folder, never in the repository.
    (folder,) = walk_tmp.iterdir()
    assert (folder / "members.csv").exists()
    assert not any((ROOT / name).exists() for name in ("members.csv", "events.jsonl"))
    events = folder / "events.jsonl"
    deadline = time.monotonic() + 60
    while "users.behaviors.CustomEvent" not in (events.read_text() if events.exists() else ""):
        assert time.monotonic() < deadline, "Currents delivered nothing to the walkthrough's sink"
        time.sleep(0.2)
