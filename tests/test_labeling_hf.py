"""The hf teacher on a tiny random causal LM and tokenizer built in a temp dir (no downloads)."""
import numpy as np
import pytest
import torch

from codi_kit import plugins
from codi_kit.context import StageContext
from codi_kit.labeling import LabelRequest


@pytest.fixture(scope="module", params=[True, False], ids=["chat-template", "plain"])
def tiny_model(request, tmp_path_factory):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-lm")
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    corpus = ["Agent 1 Agent 2 Agent 3 Best agent: t=0: action=no-op; move left right up down nearest landmark "
              "id=1 distance to nearest landmark=0.407 Which agent performs best in this segment?"] * 20
    tokenizer.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<pad>", "</s>"]))
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>", pad_token="<pad>", eos_token="</s>")
    if request.param:
        fast.chat_template = "{% for m in messages %}User: {{ m['content'] }}\n{% endfor %}Assistant: "
    fast.save_pretrained(folder)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=4096,
                         pad_token_id=fast.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


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
