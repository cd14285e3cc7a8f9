"""Shared fixtures: small real MPE datasets, a CLI runner, inline plugin registration, a fake
OpenAI-compatible server on 127.0.0.1 and a tiny causal LM saved to a temp dir."""
from __future__ import annotations

import contextlib
import json
import threading
import time

import pytest
import torch
from click.testing import CliRunner
from pytest_httpserver import HTTPServer
from werkzeug import Response

from codi_kit import plugins
from codi_kit.data.collect import collect_with_references
from codi_kit.progress import set_quiet

set_quiet(True)


@pytest.fixture(scope="session")
def cn_env():
    registration = plugins.lookup("env", "mpe/cn")
    env = plugins.configure(registration, {})
    yield env
    env.close()


@pytest.fixture(scope="session")
def cn_dataset(cn_env):
    """60 imbalanced CN episodes with R_lo and R_hi measured."""
    return collect_with_references(cn_env, "imbalanced", 60, seed=0)


@pytest.fixture
def runner():
    return CliRunner()


@contextlib.contextmanager
def inline_plugin(plugin, name="inline-test-plugin"):
    """Register a plugin object for one test, always unregistered afterwards (llm's habit)."""
    manager = plugins.plugin_manager()
    manager.register(plugin, name=name)
    try:
        yield
    finally:
        manager.unregister(name=name)


ROUTE = "/v1/chat/completions"


def completion(text, prompt_tokens=100, completion_tokens=5):
    body = {"id": "x", "object": "chat.completion", "created": 0, "model": "fake",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}
    return Response(json.dumps(body), status=200, content_type="application/json")


class FakeServer:
    """Answers through ``reply(request_json, call_number)``; records requests and peak concurrency."""

    def __init__(self, server, reply, delay=0.0):
        self.server, self.reply, self.delay = server, reply, delay
        self.lock, self.active, self.peak, self.requests = threading.Lock(), 0, 0, []
        server.expect_request(ROUTE, method="POST").respond_with_handler(self.handle)

    def handle(self, request):
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
            self.requests.append(request.get_json())
            number = len(self.requests)
        try:
            time.sleep(self.delay)
            return self.reply(request.get_json(), number)
        finally:
            with self.lock:
                self.active -= 1


@pytest.fixture
def httpserver():
    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


def build_tiny_causal_lm(folder, chat_template: bool):
    """A random 2-layer Llama and a BPE tokenizer trained on CN prompt words, saved to ``folder``."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    corpus = ["Agent 1 Agent 2 Agent 3 Best agent: t=0: action=no-op; move left right up down nearest landmark "
              "id=1 distance to nearest landmark=0.407 Which agent performs best in this segment?"] * 20
    tokenizer.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<pad>", "</s>"]))
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>", pad_token="<pad>", eos_token="</s>")
    if chat_template:
        fast.chat_template = "{% for m in messages %}User: {{ m['content'] }}\n{% endfor %}Assistant: "
    fast.save_pretrained(folder)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=4096,
                         pad_token_id=fast.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder
