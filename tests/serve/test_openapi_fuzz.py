"""Schemathesis: requests generated from the service's own OpenAPI spec never get a 5xx.

Driven through schemathesis' Python API with hypothesis (its pytest plugin does not
support pytest 9 yet); each operation gets ``MAX_EXAMPLES`` generated cases (valid ones, and
invalid ones for the routes with a body or path parameter), sent with a token that has every scope, plus the
inputs that once gave a 500: lone surrogates and NaN/Infinity (issue 17 item 6).
"""

import json
import math

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from serve_fakes import bearer, make_service

from serac.auth import TokenVerifier
from serac.serve import create_app

MAX_EXAMPLES = 30
NEGATIVE_EXAMPLES = 15
UNENCODABLE = {
    "POST /edits": [
        {"edits": [{"task": "qa", "edit_input": "Who \ud800 is?", "edit_label": "x"}]},
        {"edits": [{"task": "qa", "edit_input": "Q?", "edit_label": "A", "in_scope": [{"input": "\udc00"}]}]},
        {"edits": [{"task": "qa", "edit_input": "Q?", "edit_label": "A", "ground_truth": "\udbff"}]},
        {"edits": [{"task": "qa", "edit_input": math.nan, "edit_label": math.inf}]},
        {"edits": [{"task": "qa", "edit_input": "Q?", "edit_label": "A"}], "\ud800": 1},
    ],
    "POST /predict": [{"queries": math.nan}, {"queries": [math.inf]}, {"queries": [-math.inf, "Who?"]},
                      {"queries": ["Who \ud800 is?"]}, {"queries": [math.nan], "extra": math.inf}],
}


@pytest.fixture
def operations(scope, tmp_path, tokens):
    service = make_service(scope, tmp_path / "memory", max_edits_per_request=8, max_queries_per_request=8)
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(service, TokenVerifier(tokens.path)))
    found = {op.label: op for op in (result.ok() for result in schema.get_all_operations())}
    assert set(found) >= {"POST /edits", "DELETE /edits/{edit_id}", "POST /predict", "GET /health"}
    return found


def test_generated_requests_get_no_server_errors(operations, tokens):
    headers = bearer(tokens.ops)
    seen: dict[str, set[int]] = {}
    runs = [(op, GenerationMode.POSITIVE, MAX_EXAMPLES) for op in operations.values()]
    runs += [(operations[label], GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES)
             for label in ("POST /edits", "POST /predict", "DELETE /edits/{edit_id}")]
    for operation, mode, examples in runs:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def check(case) -> None:
            response = case.call(headers=headers)
            seen.setdefault(operation.label, set()).add(response.status_code)
            assert response.status_code < 500, f"{case.method} {case.formatted_path} -> {response.status_code}: " \
                                                f"{response.text[:500]}"

        check()
    assert seen["POST /edits"] & {200} and seen["POST /edits"] & {413, 422}  # both accepted and refused cases ran
    assert seen["GET /health"] == {200}


@pytest.mark.parametrize(("label", "body"), [(label, body) for label, bodies in UNENCODABLE.items() for body in bodies])
def test_unencodable_inputs_get_422_through_the_spec(operations, tokens, label, body):
    raw = json.dumps(body, allow_nan=True).encode()  # NaN / Infinity literals, \ud800 escapes: as an attacker sends
    response = operations[label].Case().call(data=raw, headers={**bearer(tokens.ops),
                                                                "content-type": "application/json"})
    assert response.status_code == 422, response.text[:500]
    assert "detail" in response.json()


def test_generated_requests_without_a_token_get_401(operations):
    for operation in operations.values():

        @given(case=operation.as_strategy())
        @settings(max_examples=5, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def check(case) -> None:
            response = case.call(headers={"Authorization": "Bearer not-a-token"})
            assert response.status_code == 401, f"{case.method} {case.formatted_path} -> {response.status_code}"
            assert response.headers["www-authenticate"][0].startswith("Bearer")  # schemathesis: lists

        check()
