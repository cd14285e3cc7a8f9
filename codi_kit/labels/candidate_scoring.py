"""Log-likelihood of a few fixed answers after many prompts, with each token run through the causal
LM once: the prompts' common start (system text, task description) is run once and its key/value
cache reused; each prompt's own tokens are run once, batched; the answers' common start ("Agent")
rides along in that pass, and only their differing tails are read off the last position (or run
as a short batched continuation of each prompt's cache when a tail is longer than one token).
The scores equal scoring every prompt + answer in full (one pass per answer) up to float error."""
from __future__ import annotations

import copy
import inspect
import time

import attrs
import numpy as np
import torch

from codi_kit.progress import progress_bar


def common_prefix_length(sequences: list[list[int]]) -> int:
    """How many leading tokens every sequence shares."""
    shortest = min(len(s) for s in sequences)
    for position in range(shortest):
        token = sequences[0][position]
        if any(s[position] != token for s in sequences):
            return position
    return shortest


@attrs.define
class ScoringStats:
    prompts: int = 0
    prompt_tokens: int = 0  # tokens of all prompts as written, before any reuse
    longest_prompt: int = 0
    shared_prefix: int = 0  # tokens every prompt starts with, run once
    tokens_run: int = 0  # tokens that actually went through the model
    seconds: float = 0.0

    def as_dict(self, unit: str = "prompt") -> dict:
        return {
            f"{unit}s": self.prompts,
            "prompt_tokens_mean": self.prompt_tokens / max(self.prompts, 1),
            "prompt_tokens_max": self.longest_prompt,
            "shared_prefix_tokens": self.shared_prefix,
            "tokens_run": self.tokens_run,
            "tokens_per_second": self.tokens_run / max(self.seconds, 1e-9),
            "prompt_tokens_per_second": self.prompt_tokens / max(self.seconds, 1e-9),
            "seconds": self.seconds,
            f"seconds_per_{unit}": self.seconds / max(self.prompts, 1),
        }


class CandidateScorer:
    """Scores ``candidates`` (token lists) after each context (token list) with ``model``."""

    def __init__(self, model, device: torch.device, pad_token_id: int, batch_size: int = 8):
        self.model, self.device, self.pad, self.batch_size = model, device, pad_token_id, batch_size
        # transformers renamed past_key_values to cache (5.x) and num_logits_to_keep to logits_to_keep
        accepted = inspect.signature(model.forward).parameters
        self._cache_name = "cache" if "cache" in accepted else "past_key_values"
        self._keep_name = next((n for n in ("logits_to_keep", "num_logits_to_keep") if n in accepted), None)

    def _forward(self, ids, cache=None, keep: int = 0, **options):
        """The model on ``ids`` after ``cache``; logits of the last ``keep`` positions (0: all)."""
        options[self._cache_name] = cache
        if keep and self._keep_name:
            options[self._keep_name] = keep
        output = self.model(input_ids=ids, **options)
        logits = output.logits[:, -keep:] if keep else output.logits
        return logits, getattr(output, "cache", None) or getattr(output, "past_key_values", None)

    @torch.inference_mode()
    def score(self, contexts: list[list[int]], candidates: list[list[int]], label: str = "scoring"
              ) -> tuple[np.ndarray, ScoringStats]:
        """[len(contexts), len(candidates)] sums of the candidates' token log-probabilities."""
        started = time.perf_counter()
        stats = ScoringStats(prompts=len(contexts), prompt_tokens=sum(map(len, contexts)),
                             longest_prompt=max(map(len, contexts)))
        # every context keeps at least one token of its own, whose logits predict the answer
        shared = min(common_prefix_length(contexts), min(map(len, contexts)) - 1)
        answer_start = min(common_prefix_length(candidates), min(map(len, candidates)) - 1)
        answer_common, tails = candidates[0][:answer_start], [c[answer_start:] for c in candidates]
        prefix_cache = self._run_prefix(contexts[0][:shared])
        stats.shared_prefix = stats.tokens_run = shared
        scores = np.zeros((len(contexts), len(candidates)), np.float64)
        order = np.argsort([len(c) for c in contexts], kind="stable")  # similar lengths share a batch
        with progress_bar(len(contexts), label) as bar:
            for first in range(0, len(order), self.batch_size):
                rows = order[first:first + self.batch_size]
                owns = [contexts[r][shared:] + answer_common for r in rows]
                scores[rows], tokens = self._score_batch(prefix_cache, shared, owns, len(answer_common), tails)
                stats.tokens_run += tokens
                bar.advance(len(rows))
        stats.seconds = time.perf_counter() - started
        return scores, stats

    def _run_prefix(self, ids: list[int]):
        if not ids:
            return None
        return self._forward(torch.tensor([ids], device=self.device), keep=1, use_cache=True)[1]

    def _score_batch(self, prefix_cache, shared: int, owns: list[list[int]], answer_common: int,
                     tails: list[list[int]]) -> tuple[np.ndarray, int]:
        batch, width = len(owns), max(map(len, owns))
        # left padding, so every row's last token sits at the end; position ids skip the padding
        ids = torch.full((batch, width), self.pad, dtype=torch.long)
        own_mask = torch.zeros((batch, width), dtype=torch.long)
        for row, own in enumerate(owns):
            ids[row, width - len(own):] = torch.tensor(own)
            own_mask[row, width - len(own):] = 1
        mask = torch.cat([torch.ones((batch, shared), dtype=torch.long), own_mask], 1).to(self.device)
        positions = (shared + own_mask.cumsum(1) - 1).clamp(min=shared).to(self.device)
        cache = None
        if prefix_cache is not None:
            cache = copy.deepcopy(prefix_cache)  # the forward pass appends to the cache it is given
            cache.batch_repeat_interleave(batch)
        ids = ids.to(self.device)
        logits, cache = self._forward(ids, cache, keep=answer_common + 1, attention_mask=mask,
                                      position_ids=positions, use_cache=True)
        log_probabilities = torch.log_softmax(logits.float(), -1)
        # the answers' common start: the same for every answer, kept so scores equal full passes
        common = torch.zeros(batch, device=self.device)
        for k in range(answer_common):
            common += log_probabilities[torch.arange(batch), k, ids[:, width - answer_common + k]]
        last = log_probabilities[:, -1]  # [B, V]: predicts each tail's first token
        scores = torch.stack([common + last[:, tail[0]] for tail in tails], 1)
        tokens = sum(map(len, owns))
        if max(map(len, tails)) > 1:
            scores, extra = self._continue_tails(cache, mask, positions[:, -1], scores, tails)
            tokens += extra
        return scores.double().cpu().numpy(), tokens

    def _continue_tails(self, cache, mask, last_position, scores, tails):
        """Tails longer than one token: run each prompt's cache once per candidate, all at once."""
        batch, count = mask.shape[0], len(tails)
        length = max(map(len, tails))
        cache.batch_repeat_interleave(count)
        ids = torch.full((count, length), self.pad, dtype=torch.long)
        tail_mask = torch.zeros((count, length), dtype=torch.long)
        for c, tail in enumerate(tails):  # right padding: padding comes after every real token
            ids[c, :len(tail)] = torch.tensor(tail)
            tail_mask[c, :len(tail)] = 1
        ids, tail_mask = ids.to(self.device).repeat(batch, 1), tail_mask.to(self.device).repeat(batch, 1)
        positions = last_position.repeat_interleave(count)[:, None] + 1 + torch.arange(length, device=self.device)
        logits, _ = self._forward(ids, cache, attention_mask=torch.cat([mask.repeat_interleave(count, 0), tail_mask], 1),
                                  position_ids=positions, use_cache=False)
        log_probabilities = torch.log_softmax(logits.float(), -1)  # position k predicts tail token k+1
        scores = scores.clone()
        for c, tail in enumerate(tails):
            for k in range(1, len(tail)):
                scores[:, c] += log_probabilities[c::count, k - 1, tail[k]]
        return scores, sum(len(t) for t in tails) * batch
