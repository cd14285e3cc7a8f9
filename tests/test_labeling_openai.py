"""The openai teacher against a real chat-completions server on 127.0.0.1, through the official client."""
import json
import time

import numpy as np
import pytest
import torch
from werkzeug import Response

from codi_kit import plugins
from codi_kit.context import StageContext
from codi_kit.labeling import LabelRequest
from conftest import FakeServer, completion

@pytest.fixture
def ask(cn_dataset, cn_env, tmp_path):
    converter = plugins.configure(plugins.lookup("text_converter", "mpe/cn"), {})

    def run(server, count=8, **settings):
        settings = {"base_url": server.url_for("/v1"), "backoff": 0.01, "cache_path": str(tmp_path / "cache.sqlite"),
                    "api_key_env": "CODI_KIT_TEST_KEY", **settings}
        teacher = plugins.configure(plugins.lookup("labeler", "openai"), settings)
        segments = cn_dataset.segment_index(8)[:count]
        context = StageContext(0, torch.device("cpu"), tmp_path / "label-x", cn_env)
        return teacher.answer(LabelRequest(cn_dataset, segments, 8, context, converter))

    return run


def test_requests_overlap_up_to_the_concurrency_bound(httpserver, ask, monkeypatch):
    monkeypatch.setenv("CODI_KIT_TEST_KEY", "sk-test-secret")
    fake = FakeServer(httpserver, lambda body, n: completion("Best agent: Agent 2"), delay=0.3)
    answers = ask(httpserver, count=8, concurrency=4)
    assert (answers.best_agent == 1).all()
    assert fake.peak == 4  # four requests in flight at once, never more (the server counts them; no wall-clock test)
    assert answers.stats["calls"] == 8 and answers.stats["prompt_tokens"] == 800
    assert "Agent 1:" in fake.requests[0]["messages"][0]["content"]


def test_rate_limits_and_server_errors_are_retried(httpserver, ask):
    def reply(body, number):
        if number <= 4:
            return Response(json.dumps({"error": {"message": "slow down"}}), status=429 if number % 2 else 500,
                            content_type="application/json")
        return completion('{"best_agent": 3}')

    FakeServer(httpserver, reply)
    answers = ask(httpserver, count=3, concurrency=1)
    assert (answers.best_agent == 2).all()
    assert answers.stats["retries"] == 4 and answers.stats["failures"] == 0


def test_malformed_answers_are_reasked_then_left_unlabelled(httpserver, ask):
    FakeServer(httpserver, lambda body, n: completion("Hmm, all agents look similar."))
    answers = ask(httpserver, count=4, concurrency=2, parse_retries=2)
    assert (answers.best_agent == -1).all()  # never a made-up label
    assert answers.stats["unparsed"] == 4 and answers.stats["calls"] == 4 * 3
    assert not answers.cannot_tell().any()  # an unreadable reply is no judgement: never distilled towards uniform


def test_a_reminder_of_the_format_recovers_a_free_text_answer(httpserver, ask):
    def reply(body, number):
        return completion("agent_1" if len(body["messages"]) == 3 else "Agent one looks steady, I think.")

    fake = FakeServer(httpserver, reply)
    answers = ask(httpserver, count=3, concurrency=1)
    assert (answers.best_agent == 0).all() and answers.stats["unparsed"] == 0
    assert len(fake.requests) == 6 and fake.requests[1]["messages"][2]["content"].startswith("Reply with exactly")


def test_a_second_run_sends_no_requests(httpserver, ask):
    fake = FakeServer(httpserver, lambda body, n: completion("Best agent: Agent 3"))
    first = ask(httpserver, count=5)
    assert len(fake.requests) == 5 and first.stats["cache_hits"] == 0
    second = ask(httpserver, count=5)
    assert len(fake.requests) == 5 and second.stats["cache_hits"] == 5 and second.stats["calls"] == 0
    np.testing.assert_array_equal(first.best_agent, second.best_agent)


def test_unreachable_server_leaves_segments_unlabelled(ask):
    class Nowhere:
        @staticmethod
        def url_for(path):
            return "http://127.0.0.1:9" + path  # discard port: connection refused

    answers = ask(Nowhere, count=2, max_retries=1)
    assert (answers.best_agent == -1).all() and answers.stats["failures"] == 2


def test_missing_key_for_the_official_endpoint_is_a_clear_error(ask, monkeypatch):
    from codi_kit.errors import CodiKitError

    monkeypatch.delenv("CODI_KIT_TEST_KEY", raising=False)

    class Official:
        @staticmethod
        def url_for(path):
            return ""

    with pytest.raises(CodiKitError, match="CODI_KIT_TEST_KEY is not set"):
        ask(Official, count=1)


def test_label_stage_through_the_cli_distils_a_student_and_keeps_the_key_out(httpserver, tmp_path, runner, monkeypatch):
    from codi_kit.cli import main

    monkeypatch.setenv("CODI_KIT_TEST_KEY", "sk-test-secret-value")
    FakeServer(httpserver, lambda body, n: completion("Best agent: Agent 1"))
    out = tmp_path / "run"
    result = runner.invoke(main, ["label", "--labeler", "openai", "--out", str(out), "--profile", "smoke", "--quiet",
                                  "--set", "collect.episodes=20", "--set", f"labeler.base_url=\"{httpserver.url_for('/v1')}\"",
                                  "--set", "labeler.api_key_env=\"CODI_KIT_TEST_KEY\"", "--set", "student.steps=20"])
    assert result.exit_code == 0, result.output
    meta = json.loads(next(out.glob("label-*/meta.json")).read_text())
    assert meta["stats"]["teacher_calls"] == meta["stats"]["teacher_asked"] > 0
    assert meta["stats"]["student_trained_on"] > 0
    for file in out.rglob("*"):
        if file.is_file():
            assert b"sk-test-secret-value" not in file.read_bytes(), file


# -- a hostile server: every failure kind mixed with valid answers ----------------------------------
def prompt_number(body) -> int:
    """A stable number per prompt (the segment), so the server's intended answer is known."""
    import zlib

    return zlib.crc32(body["messages"][0]["content"].encode())


FAILURES = {
    "truncated_json": lambda: Response('{"id": "x", "object": "chat.completion", "choices": [{"ind', status=200,
                                       content_type="application/json"),
    "html_page": lambda: Response("<html><body>502 Bad Gateway</body></html>", status=200, content_type="text/html"),
    "no_choices": lambda: Response(json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "f"}),
                                   status=200, content_type="application/json"),
    "empty_content": lambda: completion(""),
    "list_content": lambda: Response(json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "f",
                                                 "choices": [{"index": 0, "finish_reason": "stop", "message": {
                                                     "role": "assistant", "content": [{"type": "text", "text": "?"}]}}]}),
                                     status=200, content_type="application/json"),
    "server_error": lambda: Response(json.dumps({"error": {"message": "boom"}}), status=500, content_type="application/json"),
    "rate_limited": lambda: Response(json.dumps({"error": {"message": "slow"}}), status=429, content_type="application/json",
                                     headers={"Retry-After": "0.05"}),
    "no_agent": lambda: completion("They all look alike to me."),
    "out_of_range": lambda: completion("Best agent: Agent 7"),
}


class HostileServer:
    """Each request draws a failure kind (or a valid answer) from a seeded stream; a valid answer
    names the agent ``prompt_number % 3``, so a label can be checked against what was said."""

    def __init__(self, server, failure_rate=0.6, seed=0):
        self.rng, self.rate = np.random.default_rng(seed), failure_rate
        self.seen, self.valid = {kind: 0 for kind in FAILURES}, {}
        self.fake = FakeServer(server, self.reply)

    def reply(self, body, number):
        if self.rng.random() < self.rate:
            kind = list(FAILURES)[self.rng.integers(len(FAILURES))]
            self.seen[kind] += 1
            return FAILURES[kind]()
        agent = prompt_number(body) % 3
        self.valid[body["messages"][0]["content"]] = agent
        return completion(f"Best agent: Agent {agent + 1}")


def test_a_hostile_server_never_crashes_the_teacher_nor_makes_up_a_label(httpserver, ask, tmp_path):
    from codi_kit.labels.llm_cache import AnswerCache

    server = HostileServer(httpserver)
    answers = ask(httpserver, count=40, concurrency=4, max_retries=3, parse_retries=1, backoff=0.001)
    assert all(count > 0 for count in server.seen.values()), server.seen  # every failure kind occurred
    stats = answers.stats
    assert stats["malformed"] >= server.seen["truncated_json"] + server.seen["html_page"] + server.seen["no_choices"]
    answered = answers.best_agent >= 0
    assert answered.sum() >= 10 and (~answered).sum() + answered.sum() == 40
    # no made-up label: every answer is the agent the server named for that prompt
    prompts = [body["messages"][0]["content"] for body in server.fake.requests]
    by_prompt = {prompt: agent for prompt, agent in server.valid.items()}
    cache = AnswerCache(tmp_path / "cache.sqlite")
    try:
        kept = 0
        for prompt, agent in by_prompt.items():
            assert cache.get("gpt-4o-mini", prompt) == f"Best agent: Agent {agent + 1}"  # every valid answer kept
            kept += 1
        assert kept == answered.sum()
    finally:
        cache.close()
    assert set(np.unique(answers.best_agent[answered])) <= {0, 1, 2}
    assert len(set(prompts)) == 40
    # a rerun asks only what is still unlabelled, and a run whose answers are all cached asks nothing
    before = len(server.fake.requests)
    server.rate = 0.0
    second = ask(httpserver, count=40, concurrency=4, backoff=0.001)
    assert second.stats["cache_hits"] == answered.sum()
    assert len(server.fake.requests) - before == (~answered).sum()  # one valid reply each, nothing cached re-asked
    third = ask(httpserver, count=40, concurrency=4)
    assert third.stats["calls"] == 0 and (third.best_agent >= 0).all()


def test_retry_after_on_a_rate_limit_is_honoured(httpserver, ask):
    def reply(body, number):
        if number == 1:
            return Response("{}", status=429, content_type="application/json", headers={"Retry-After": "0.6"})
        return completion("Best agent: Agent 2")

    FakeServer(httpserver, reply)
    started = time.perf_counter()
    answers = ask(httpserver, count=1, backoff=0.001)
    assert (answers.best_agent == 1).all() and time.perf_counter() - started >= 0.6


def test_an_answer_naming_no_agent_is_not_cached(httpserver, ask):
    fake = FakeServer(httpserver, lambda body, n: completion("No idea." if n <= 2 else "Best agent: Agent 1"))
    first = ask(httpserver, count=1, parse_retries=1)
    assert (first.best_agent == -1).all() and len(fake.requests) == 2
    second = ask(httpserver, count=1)  # asked again: the unparsed answer was never cached
    assert (second.best_agent == 0).all() and len(fake.requests) == 3


def test_too_few_answers_write_the_teachers_failures_before_the_error(tmp_path, runner):
    from codi_kit.cli import main

    class Nowhere:
        url = "http://127.0.0.1:9/v1"  # discard port: connection refused

    out = tmp_path / "run"
    result = runner.invoke(main, ["label", "--labeler", "openai", "--out", str(out), "--profile", "smoke", "--quiet",
                                  "--set", "collect.episodes=20", "--set", f"labeler.base_url=\"{Nowhere.url}\"",
                                  "--set", "labeler.max_retries=0", "--set", "labeler.api_key_env=\"CODI_KIT_TEST_KEY\""])
    assert result.exit_code == 2 and "too few to distil a student" in result.output
    report = json.loads((out / "label-failure.json").read_text())
    assert report["teacher_failures"] == report["teacher_asked"] > 0 and report["teacher_answered"] == 0
    assert next(out.glob("collect-*/meta.json"))  # the finished collect stage is kept
