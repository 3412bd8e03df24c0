"""The ksql/tests fixtures run through `tubewatch changes` on the real broker.

ksql-test-runner checks the same files against ksqlDB (ksql/tests/run.sh, needs Docker), so
the two engines cannot drift apart silently. Here the comparison is stricter than the test
runner's: key and value bytes record by record, with each expected value written the way
ksqlDB's JSON serializer writes a row (compact, value columns in projection order, which is
the contract's order, nulls written out).
"""

from __future__ import annotations

import json
import uuid

import pytest
from test_changes_helpers import KSQL_TESTS, drain, load_case, make_engine, produce_raw, read_all

from tubewatch.messages import VideoChange

CASES = sorted(p.name for p in KSQL_TESTS.iterdir() if (p / "input.json").exists())


def test_the_issue_asks_for_these_cases():
    assert set(CASES) >= {
        "first_snapshot",
        "like",
        "comment",
        "hidden_likes",
        "out_of_order_views",
        "two_videos_interleaved",
        "repeated_identical",
    }


@pytest.mark.parametrize("case", CASES)
def test_fixture_outputs_are_contract_messages_in_contract_order(case):
    outputs = json.loads((KSQL_TESTS / case / "output.json").read_text())["outputs"]
    assert outputs, "ksql-test-runner refuses an empty outputs list"
    for record in outputs:
        assert record["topic"] == "video_changes"
        assert list(record["value"]) == list(VideoChange.model_fields)
        assert VideoChange.model_validate(record["value"]).changed_metrics()


@pytest.mark.parametrize("case", CASES)
def test_engine_produces_the_fixture_output_byte_for_byte(case, kafka_bootstrap, topic_factory):
    inputs, expected = load_case(case)
    topics = {
        "input": topic_factory("conf-in"),
        "output": topic_factory("conf-out"),
        "state": f"conf-state-{uuid.uuid4().hex[:10]}",
        "dlq": topic_factory("conf-dlq"),
    }
    produce_raw(kafka_bootstrap, topics["input"], inputs)
    engine = make_engine(kafka_bootstrap, topics, f"conf-{uuid.uuid4()}")
    try:
        drain([engine], len(inputs))
    finally:
        engine.close()
    assert read_all(kafka_bootstrap, topics["output"]) == expected
    assert read_all(kafka_bootstrap, topics["dlq"]) == []
