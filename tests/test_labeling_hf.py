"""The hf teacher on a tiny random causal LM and tokenizer built in a temp dir (no downloads)."""
import numpy as np
import pytest
import torch

from codi_kit import plugins
from codi_kit.context import StageContext
from codi_kit.labeling import LabelRequest
from conftest import build_tiny_causal_lm


@pytest.fixture(scope="module", params=[True, False], ids=["chat-template", "plain"])
def tiny_model(request, tmp_path_factory):
    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm"), chat_template=request.param)


def test_hf_teacher_gives_a_valid_label_and_confidence_for_every_segment(tiny_model, cn_dataset, cn_env, tmp_path):
    converter = plugins.configure(plugins.lookup("text_converter", "mpe/cn"), {})
    teacher = plugins.configure(plugins.lookup("labeler", "hf"), {"model": str(tiny_model), "batch_size": 2, "device": "cpu"})
    segments = cn_dataset.segment_index(8)[:5]
    context = StageContext(0, torch.device("cpu"), tmp_path, cn_env)
    answers = teacher.answer(LabelRequest(cn_dataset, segments, 8, context, converter))
    assert answers.best_agent.shape == (5,) and set(answers.best_agent) <= {0, 1, 2}
    assert ((answers.confidence >= 1 / 3 - 1e-6) & (answers.confidence <= 1)).all()
    # batching must not change the scores: one prompt at a time gives the same answers
    single = plugins.configure(plugins.lookup("labeler", "hf"), {"model": str(tiny_model), "batch_size": 1, "device": "cpu"})
    again = single.answer(LabelRequest(cn_dataset, segments, 8, context, converter))
    np.testing.assert_array_equal(again.best_agent, answers.best_agent)
    np.testing.assert_allclose(again.confidence, answers.confidence, rtol=1e-4)


def test_missing_model_folder_is_a_clear_error(cn_dataset, cn_env, tmp_path):
    from codi_kit.errors import CodiKitError

    converter = plugins.configure(plugins.lookup("text_converter", "mpe/cn"), {})
    (tmp_path / "empty-model").mkdir()
    teacher = plugins.configure(plugins.lookup("labeler", "hf"), {"model": str(tmp_path / "empty-model")})
    context = StageContext(0, torch.device("cpu"), tmp_path, cn_env)
    with pytest.raises(CodiKitError, match="labeler 'hf': cannot load model"):
        teacher.answer(LabelRequest(cn_dataset, cn_dataset.segment_index(8)[:1], 8, context, converter))


def full_pass_scores(model, contexts, candidates):
    """The definition: each prompt + answer run alone, from scratch, its answer tokens' log-probabilities summed."""
    scores = np.zeros((len(contexts), len(candidates)))
    with torch.no_grad():
        for r, context in enumerate(contexts):
            for c, candidate in enumerate(candidates):
                ids = torch.tensor([context + candidate])
                log_probabilities = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)
                scores[r, c] = sum(float(log_probabilities[len(context) + k - 1, token]) for k, token in enumerate(candidate))
    return scores


@pytest.mark.parametrize("candidates", [[[5, 9], [5, 11], [5, 12]], [[5, 9], [5, 9, 3], [7, 2, 2, 4]]],
                         ids=["one-token-tails", "ragged-tails"])
def test_prefix_cached_scores_equal_one_full_pass_per_answer(tiny_model, candidates):
    from transformers import AutoModelForCausalLM

    from codi_kit.labels.candidate_scoring import CandidateScorer

    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    rng = np.random.default_rng(0)
    vocabulary = model.config.vocab_size
    shared = rng.integers(3, vocabulary, 12).tolist()  # a common start, then prompts of different lengths
    contexts = [shared + rng.integers(3, vocabulary, int(n)).tolist() for n in (1, 7, 3, 15, 4)]
    contexts.append(shared[:5] + [(shared[5] + 1) % vocabulary, 18])
    scores, stats = CandidateScorer(model, torch.device("cpu"), 1, batch_size=3).score(contexts, candidates)
    np.testing.assert_allclose(scores, full_pass_scores(model, contexts, candidates), atol=2e-4)
    full_pass_tokens = sum(len(c) + len(a) for c in contexts for a in candidates)
    assert stats.shared_prefix == 5 and stats.tokens_run < full_pass_tokens / 2


def test_a_prompt_over_the_token_limit_is_a_clear_error(tiny_model, cn_dataset, cn_env, tmp_path):
    from codi_kit.errors import CodiKitError

    converter = plugins.configure(plugins.lookup("text_converter", "mpe/cn"), {})
    teacher = plugins.configure(plugins.lookup("labeler", "hf"), {"model": str(tiny_model), "max_prompt_tokens": 20})
    context = StageContext(0, torch.device("cpu"), tmp_path, cn_env)
    with pytest.raises(CodiKitError, match=r"a prompt is \d+ tokens, over the limit of 20"):
        teacher.answer(LabelRequest(cn_dataset, cn_dataset.segment_index(8)[:2], 8, context, converter))
