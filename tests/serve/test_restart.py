"""`serac serve` killed with SIGKILL while clients write: a restart keeps every acknowledged edit."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from serve_fakes import PM, Tokens, bearer, free_port, make_editor

from serac.memory import EditMemory

HERE = Path(__file__).parent


def start_server(editor_dir: Path, memory: Path, tokens: Tokens, port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "serac.cli.main", "serve", "--editor", str(editor_dir), "--memory", str(memory),
             "--host", "127.0.0.1", "--port", str(port), "--tokens", str(tokens.path)],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", headers=bearer(tokens.read), timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("server did not become healthy: " + log.read_text()[-3000:])


@pytest.mark.slow
def test_killed_server_restarts_with_every_acknowledged_edit(scope, tmp_path, tokens):
    editor_dir, memory = tmp_path / "editor", tmp_path / "memory"
    make_editor(scope, tmp_path / "unused").save(editor_dir, include_memory=False)
    port, log = free_port(), tmp_path / "server.log"
    base = f"http://127.0.0.1:{port}"
    proc = start_server(editor_dir, memory, tokens, port, log)
    acknowledged: list[str] = []
    stop = threading.Event()

    def writer() -> None:
        with httpx.Client(base_url=base, timeout=30, headers=bearer(tokens.write)) as http:
            for i in range(10_000):  # bounded; stopped by the kill
                if stop.is_set():
                    return
                edit = {"task": "fact", "edit_input": f"Fact number {i} is about", "edit_label": f"topic {i}"}
                try:
                    r = http.post("/edits", json={"edits": [edit]})
                except httpx.TransportError:
                    return
                if r.status_code == 200:
                    acknowledged.extend(r.json()["added"])
    try:
        response = httpx.post(f"{base}/edits", json={"edits": [PM]}, headers=bearer(tokens.write), timeout=30)
        first = response.json()["added"]
        threads = [threading.Thread(target=writer) for _ in range(3)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < 15 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)  # mid-stream: requests in flight
        proc.wait(timeout=30)
        stop.set()
        for t in threads:
            t.join(timeout=30)
        assert len(acknowledged) >= 15
        proc = start_server(editor_dir, memory, tokens, port, log)
        health = httpx.get(f"{base}/health", headers=bearer(tokens.read), timeout=10).json()
        stored = set(EditMemory.open(memory).ids())
        assert set(acknowledged) | set(first) <= stored and health["edits"] == len(stored)
        pred = httpx.post(f"{base}/predict", json={"queries": ["Who is the UK's prime minister?"]},
                          headers=bearer(tokens.read), timeout=60)
        assert pred.json()["predictions"][0]["edit_id"] == first[0]
    finally:
        stop.set()
        proc.kill()
        proc.wait(timeout=30)

