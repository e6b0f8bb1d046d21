"""The API as a whole: schemathesis generates requests for every operation of
``/openapi.json`` and checks that none is answered 5xx and that every response matches
the documented schema. In process (ASGI) against a fresh SQLite database, authorized
with the API token; a modest number of examples per operation keeps it under 2 minutes."""

from __future__ import annotations

import re

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from tests.integration.test_security_access import TOKEN, local_client

MAX_EXAMPLES = 12
#: /readyz answers 503 by contract while Kafka or the stream worker is missing (here: both).
SKIP = {"/readyz"}


def test_no_5xx_and_no_response_outside_the_schema(tmp_path):
    failures, operations = [], 0
    with local_client(tmp_path) as client:  # runs the app's lifespan (gatherer, Kafka probe state)
        schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
        for result in schema.get_all_operations():
            operation = result.ok()
            if operation.path in SKIP:
                continue
            operations += 1

            @given(case=operation.as_strategy())
            @settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                database=None,
                # report the failing case as found: a replay for shrinking can draw other
                # types from linked schemas and hide the failure as FlakyStrategyDefinition
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def check(case) -> None:
                case.call_and_validate(
                    headers={"Authorization": f"Bearer {TOKEN}"},
                    checks=[not_a_server_error, response_schema_conformance],
                )

            try:
                check()
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collect them all
                failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:1500]}")
    assert operations >= 15
    summary = "\n".join(f.splitlines()[0] + " | " + " ".join(f.split("\n")[1:12]) for f in failures)
    assert not failures, f"{len(failures)} operations fail:\n{summary}"
    print(
        f"\n[schemathesis] {operations} operations x up to {MAX_EXAMPLES} examples: no 5xx, no schema violation"
    )


# -- stateful: sequences of calls over HTTP ---------------------------------------------

#: Scenarios and calls per scenario: sized for CI (about a minute on two shared cores).
SCENARIOS, STEPS = 60, 10


def test_stateful_sequences_never_answer_5xx_nor_outside_the_schema(tmp_path):
    """Schemathesis chains the operations through the links it infers from the schema
    (POST /api/v1/campaigns -> schedule, cancel, attribution of that campaign; templates,
    journeys, messengers alike) and calls a running app over HTTP with the bearer token."""
    from types import SimpleNamespace

    from tests.e2e.test_browser import Server
    from tests.integration.test_security_access import local_settings

    with Server(SimpleNamespace(settings=local_settings(tmp_path))) as server:
        _seed(server.base)  # real ids for the links to carry from the lists onward
        schema = schemathesis.openapi.from_url(f"{server.base}/openapi.json")
        schema = schema.exclude(path=list(SKIP))

        class Workflow(_links_by_id(schema)):  # type: ignore[misc]
            def get_call_kwargs(self, case):  # noqa: ANN001, ANN201
                return {"headers": {"Authorization": f"Bearer {TOKEN}"}}

            def validate_response(self, response, case, additional_checks=None, **kwargs):  # noqa: ANN001, ANN201
                case.validate_response(
                    response, checks=[not_a_server_error, response_schema_conformance]
                )

        Workflow.run(
            settings=settings(
                max_examples=SCENARIOS,
                stateful_step_count=STEPS,
                deadline=None,
                database=None,
                phases=[Phase.generate],  # report the failing sequence as found, unshrunk
                suppress_health_check=list(HealthCheck),
            )
        )


def _seed(base: str) -> None:
    """A messenger, a template and a campaign per channel, a journey, a contact."""
    import httpx

    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}) as client:

        def post(path: str, body: object) -> dict:
            r = client.post(path, json=body)
            assert r.status_code < 300, f"{path}: {r.status_code} {r.text[:300]}"
            return r.json()

        post("/api/v1/messengers", {"id": "maria", "name": "Maria", "role": "parent"})
        post("/api/v1/contacts", [{"external_id": "f1", "email": "f1@example.org"}])
        for channel in ("email", "social", "toolkit"):
            template = post("/api/v1/templates", {"name": channel, "channel": channel,
                            "subject": "News" if channel == "email" else None,
                            "text": "Hi {{ contact.first_name }}"})  # fmt: skip
            body = {"name": channel, "channel": channel, "template_id": template["id"]}
            post(
                "/api/v1/campaigns",
                body | ({} if channel == "email" else {"messengers": ["maria"]}),
            )
            if channel == "email":
                post("/api/v1/journeys", {"name": "invite", "trigger": {"stage": "produce"},
                     "delay": "P2D", "action": {"channel": "email", "template_id": template["id"]}})  # fmt: skip


def _links_by_id(schema):  # noqa: ANN001, ANN202
    """The state machine, with the links schemathesis infers corrected: our objects carry
    their key as ``id`` (a campaign's ``id``, not ``campaign_id``)."""
    schema.as_state_machine()  # infers the links into the raw schema
    for item in schema.raw_schema["paths"].values():
        for operation in item.values():
            for response in (
                (operation.get("responses") or {}).values() if isinstance(operation, dict) else ()
            ):
                for link in (response.get("links") or {}).values():
                    link["parameters"] = {
                        k: re.sub(r"/(campaign|journey|template|messenger|resource)_id$", "/id", v)
                        for k, v in link.get("parameters", {}).items()
                    }
    return schema.as_state_machine()
