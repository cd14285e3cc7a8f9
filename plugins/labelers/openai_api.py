"""An LLM teacher behind any OpenAI-compatible chat-completions server (OpenAI, vLLM, Ollama, ...).

Async with bounded concurrency, timeouts, exponential backoff on 429 (honouring Retry-After,
bounded), 5xx, timeouts, dropped connections and malformed replies (truncated JSON, an HTML page,
no choices, empty or non-text content): each is one more failed attempt, never fatal. An answer
that names no agent is asked again with a reminder of the format, then left unlabelled (never a
made-up label). Answers that name a valid agent are cached on disk by (model, prompt) the moment
they arrive. The API key is read from the environment variable named in the settings and is never
written.
"""
from __future__ import annotations

import asyncio
import os
import random

import attrs
import numpy as np

import codi_kit
from codi_kit.errors import CodiKitError
from codi_kit.labeling import Answers, Labeler
from codi_kit.labels.llm_cache import AnswerCache
from codi_kit.progress import progress_bar
from codi_kit.labels.prompts import parse_best_agent

REMINDER = 'Reply with exactly one line: "Best agent: Agent <number>".'


class MalformedReply(Exception):
    """A reply with status 200 that is not a usable chat completion."""


def reply_text(response) -> str:
    """The first choice's text, or MalformedReply (no choices, empty or non-text content, a body
    the client could not parse into a completion at all)."""
    choices = getattr(response, "choices", None)
    if not isinstance(choices, list) or not choices:
        raise MalformedReply("no choices")
    content = getattr(getattr(choices[0], "message", None), "content", None)
    if not isinstance(content, str) or not content.strip():
        raise MalformedReply(f"content is {type(content).__name__}")
    return content


def retry_after(error) -> float | None:
    """Seconds from a 429's Retry-After header (a number of seconds), if it has one."""
    try:
        return float(error.response.headers.get("retry-after"))
    except (AttributeError, TypeError, ValueError):
        return None


class OpenAITeacher(Labeler):
    @attrs.frozen
    class Config:
        model: str = "gpt-4o-mini"  # the paper's teacher
        base_url: str = ""  # empty: the client's default (OpenAI, or $OPENAI_BASE_URL)
        api_key_env: str = "OPENAI_API_KEY"  # the variable's name; its value is never stored
        concurrency: int = 16
        timeout: float = 60.0  # seconds per request
        max_retries: int = 5  # on 429, 5xx, timeouts and connection errors
        backoff: float = 1.0  # seconds before the first retry, doubled each time (with jitter)
        max_retry_after: float = 60.0  # a 429's Retry-After is honoured up to this many seconds
        parse_retries: int = 2  # re-asks when an answer names no agent
        temperature: float = 0.0
        max_tokens: int = 300
        cache_path: str = ""  # default: llm-cache.sqlite in the run directory

    def answer(self, request):
        prompts = request.prompts()
        cache = AnswerCache(self.config.cache_path or request.context.workdir.parent / "llm-cache.sqlite")
        try:
            return asyncio.run(self._answer_all(prompts, request.dataset.agents, cache))
        finally:
            cache.close()

    def _client(self):
        import openai

        key = os.environ.get(self.config.api_key_env)
        if not key:
            if not self.config.base_url:
                raise CodiKitError(f"labeler 'openai': environment variable {self.config.api_key_env} is not set "
                                   "(or set labeler.base_url to a local OpenAI-compatible server)")
            key = "not-needed"  # local servers usually ignore the key
        return openai.AsyncOpenAI(api_key=key, base_url=self.config.base_url or None, timeout=self.config.timeout,
                                  max_retries=0)  # retries are ours, so they are counted

    async def _answer_all(self, prompts, agents, cache):
        stats = {"calls": 0, "retries": 0, "malformed": 0, "prompt_tokens": 0, "completion_tokens": 0, "cache_hits": 0,
                 "failures": 0, "unparsed": 0, "model": self.config.model}
        client = self._client()
        limit = asyncio.Semaphore(self.config.concurrency)
        best = np.full(len(prompts), -1, np.int64)
        with progress_bar(len(prompts), f"openai teacher ({self.config.model})") as bar:
            async def one(row, prompt):
                text = cache.get(self.config.model, prompt)
                parsed = parse_best_agent(text or "", agents)
                if parsed is not None:
                    stats["cache_hits"] += 1
                else:
                    async with limit:
                        text = await self._ask_until_parsed(client, prompt, agents, stats)
                    parsed = parse_best_agent(text or "", agents)
                    if parsed is not None:
                        cache.put(self.config.model, prompt, text)  # only answers naming a valid agent
                if text is None:
                    stats["failures"] += 1
                elif parsed is None:
                    stats["unparsed"] += 1
                best[row] = -1 if parsed is None else parsed
                bar.advance()

            try:
                await asyncio.gather(*(one(row, prompt) for row, prompt in enumerate(prompts)))
            finally:
                await client.close()
        # a -1 here is a failed call or a reply naming no agent: no judgement, never "cannot tell"
        return Answers(best_agent=best, stats=stats, judged_none=np.zeros(len(prompts), bool))

    async def _ask_until_parsed(self, client, prompt, agents, stats):
        """The last raw answer (parsed or not), or None when every attempt failed."""
        messages = [{"role": "user", "content": prompt}]
        text = None
        for _ in range(self.config.parse_retries + 1):
            text = await self._call(client, messages, stats)
            if text is None or parse_best_agent(text, agents) is not None:
                return text
            messages = messages + [{"role": "assistant", "content": text}, {"role": "user", "content": REMINDER}]
        return text

    async def _call(self, client, messages, stats):
        """The reply's text, or None once every attempt failed."""
        import openai

        for attempt in range(self.config.max_retries + 1):
            wait = self.config.backoff * 2 ** attempt * (0.5 + random.random())
            try:
                stats["calls"] += 1
                response = await client.chat.completions.create(
                    model=self.config.model, messages=messages, temperature=self.config.temperature,
                    max_tokens=self.config.max_tokens)
                text = reply_text(response)
            except openai.RateLimitError as error:
                wait = max(wait, min(retry_after(error) or 0.0, self.config.max_retry_after))
            except (openai.InternalServerError, openai.APITimeoutError, openai.APIConnectionError):
                pass
            except openai.AuthenticationError:
                raise CodiKitError(f"labeler 'openai': the server refused the key in ${self.config.api_key_env}") from None
            except openai.APIStatusError as error:
                raise CodiKitError(f"labeler 'openai': the server answered {error.status_code} for model "
                                   f"'{self.config.model}': {error.message}") from None
            except (MalformedReply, openai.APIResponseValidationError, ValueError, TypeError, AttributeError,
                    KeyError, IndexError):
                stats["malformed"] += 1  # truncated JSON, an HTML page with 200, a body of the wrong shape
            else:
                usage = getattr(response, "usage", None)
                stats["prompt_tokens"] += getattr(usage, "prompt_tokens", 0) or 0
                stats["completion_tokens"] += getattr(usage, "completion_tokens", 0) or 0
                return text
            if attempt < self.config.max_retries:
                stats["retries"] += 1
                await asyncio.sleep(wait)
        return None


@codi_kit.hookimpl
def register_labelers(register):
    register("openai", OpenAITeacher)
