"""50 parallel clients on loopback adding and querying: no lost or duplicated edit, no 5xx."""

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from serve_fakes import bearer, make_service, running_server

from serac.auth import TokenVerifier
from serac.data.schema import edit_id_for
from serac.memory import EditMemory, audit
from serac.serve import create_app

CLIENTS = 50
EDITS_PER_CLIENT = 4


@pytest.fixture
def server(scope, tmp_path, tokens):
    service = make_service(scope, tmp_path / "memory")
    with running_server(create_app(service, TokenVerifier(tokens.path)), limit_concurrency=200) as base:
        yield base, service, tmp_path / "memory", tokens.ops


def edit(client: int, i: int) -> dict:
    # Clients 2k and 2k+1 send the same edits: concurrent duplicates must be stored once.
    key = f"{client // 2}-{i}"
    return {"task": "qa", "edit_input": f"What is the secret code of vault {key}?", "edit_label": f"code {key}"}


def run_client(base: str, token: str, client: int) -> dict:
    statuses, added, skipped, routed = [], [], [], []
    with httpx.Client(base_url=base, timeout=120, headers=bearer(token)) as http:
        for i in range(EDITS_PER_CLIENT):
            r = http.post("/edits", json={"edits": [edit(client, i)]})
            statuses.append(r.status_code)
            if r.status_code == 200:
                added += r.json()["added"]
                skipped += r.json()["skipped"]
            q = http.post("/predict", json={"queries": [f"What is the secret code of vault {client // 2}-{i}?"]})
            statuses.append(q.status_code)
            if q.status_code == 200:
                routed.append(q.json()["predictions"][0])
    return {"statuses": statuses, "added": added, "skipped": skipped, "routed": routed}


def test_parallel_clients_lose_and_duplicate_nothing(server):
    base, service, root, token = server
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        results = list(pool.map(lambda c: run_client(base, token, c), range(CLIENTS)))
    statuses = [s for r in results for s in r["statuses"]]
    assert set(statuses) == {200}, sorted(set(statuses))
    added = [i for r in results for i in r["added"]]
    skipped = [i for r in results for i in r["skipped"]]
    unique = CLIENTS // 2 * EDITS_PER_CLIENT
    assert len(added) == len(set(added)) == unique  # each edit acknowledged as added exactly once
    assert len(skipped) == CLIENTS * EDITS_PER_CLIENT - unique and set(skipped) <= set(added)
    memory = service.editor.memory
    assert sorted(memory.ids()) == sorted(added) and len(memory) == unique
    on_disk = EditMemory.open(root)
    assert sorted(on_disk.ids()) == sorted(added)  # every acknowledged edit persisted, once
    trail = audit.read_records(root)  # one audit record per committed version, chain intact
    assert sorted(i for r in trail for i in r.edit_ids) == sorted(added) and len(trail) == on_disk.version
    assert audit.verify(root) == []
    # each query came after its own edit was acknowledged: the next query already sees it
    expected = [[edit_id_for("qa", e["edit_input"], e["edit_label"]) for e in (edit(c, i) for i in range(EDITS_PER_CLIENT))]
                for c in range(CLIENTS)]
    seen = [p["edit_id"] for r in results for p in r["routed"]]
    assert seen == [i for ids in expected for i in ids]
