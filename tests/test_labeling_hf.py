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
