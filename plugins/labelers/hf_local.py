"""A local causal language model as teacher (transformers): each candidate answer "Agent i" is
scored by its log-likelihood after the prompt, so the teacher always names a valid agent and
reports a confidence (the softmax of the scores). Works offline from a saved model folder."""
from __future__ import annotations

from pathlib import Path

import attrs
import numpy as np
import torch

import codi_kit
from codi_kit.errors import CodiKitError
from codi_kit.labeling import Answers, Labeler
from codi_kit.progress import progress_bar
from codi_kit.prompts import answer_text
from codi_kit.torch_utils import resolve_device

ANSWER_PREFIX = "Best agent:"


class LocalLMTeacher(Labeler):
    @attrs.frozen
    class Config:
        model: str = ""  # a local folder (offline) or a hub id (needs the hub to be reachable)
        batch_size: int = 8  # prompts per forward pass (each expands to one row per agent)
        device: str = "auto"
        dtype: str = "float32"  # float32 | bfloat16 | float16
        gguf_file: str = ""  # a GGUF file inside `model`, for checkpoints shipped as GGUF

    def answer(self, request):
        if not self.config.model:
            raise CodiKitError("labeler 'hf': set labeler.model to a local model folder (or a hub id)")
        prompts = request.prompts()
        tokenizer, model, device = self._load()
        agents = request.dataset.agents
        candidates = [tokenizer(" " + answer_text(i), add_special_tokens=False)["input_ids"] for i in range(agents)]
        scores = np.zeros((len(prompts), agents), np.float64)
        with progress_bar(len(prompts), "hf teacher") as bar:
            for first in range(0, len(prompts), self.config.batch_size):
                chunk = prompts[first:first + self.config.batch_size]
                scores[first:first + len(chunk)] = self._score(tokenizer, model, device, chunk, candidates)
                bar.advance(len(chunk))
        probabilities = np.exp(scores - scores.max(1, keepdims=True))
        probabilities /= probabilities.sum(1, keepdims=True)
        return Answers(best_agent=scores.argmax(1).astype(np.int64), confidence=probabilities.max(1).astype(np.float32),
                       stats={"model": self.config.model, "mean_confidence": float(probabilities.max(1).mean())})

    def _load(self):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        source = self.config.model
        local = Path(source).expanduser().exists()
        options = {"local_files_only": local}
        if self.config.gguf_file:
            options["gguf_file"] = self.config.gguf_file
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, **options)
            model = AutoModelForCausalLM.from_pretrained(source, dtype=getattr(torch, self.config.dtype), **options)
        except (OSError, ValueError) as error:
            raise CodiKitError(f"labeler 'hf': cannot load model '{source}': {str(error).splitlines()[0]}") from None
        device = resolve_device(self.config.device)
        return tokenizer, model.to(device).eval(), device

    def _context_ids(self, tokenizer, prompt: str) -> list[int]:
        """The prompt as the model expects it (its chat template when it has one), then the
        answer prefix the candidates continue."""
        if getattr(tokenizer, "chat_template", None):
            text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                 add_generation_prompt=True)
            return tokenizer(text + ANSWER_PREFIX, add_special_tokens=False)["input_ids"]
        return tokenizer(prompt + "\n" + ANSWER_PREFIX)["input_ids"]

    @torch.no_grad()
    def _score(self, tokenizer, model, device, prompts, candidates) -> np.ndarray:
        """Sum of the candidates' token log-probabilities after each prompt: [len(prompts), agents]."""
        rows, spans = [], []
        for prompt in prompts:
            context = self._context_ids(tokenizer, prompt)
            for candidate in candidates:
                rows.append(context + candidate)
                spans.append((len(context), len(candidate)))
        width = max(len(r) for r in rows)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, row in enumerate(rows):  # right padding: positions of the real tokens do not move
            ids[r, :len(row)] = torch.tensor(row)
            mask[r, :len(row)] = 1
        log_probabilities = torch.log_softmax(model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float(), -1)
        scores = []
        for r, (start, length) in enumerate(spans):
            positions = torch.arange(start - 1, start + length - 1, device=device)
            targets = ids[r, start:start + length].to(device)
            scores.append(float(log_probabilities[r, positions, targets].sum()))
        return np.array(scores).reshape(len(prompts), len(candidates))


@codi_kit.hookimpl
def register_labelers(register):
    register("hf", LocalLMTeacher)
