"""Build a real, tiny ONNX Runtime GenAI model folder offline: no torch, no download.

The folder is what ``og.Model(path)`` loads for a real decoder-only model (``genai_config.json``,
``model.onnx`` with the KV-cache inputs and outputs the runtime feeds back step by step, a
byte-level BPE ``tokenizer.json`` and a ``tokenizer_config.json`` with a chat template), only
small (a few KiB) and with weights chosen so greedy decoding is known in advance:

* the graph is a bigram table: the logits of each position are a one-hot row of the token that
  follows the input token (``OneHot(Gather(NEXT, input_ids))``);
* every token outside :data:`CHAIN` is followed by the chain's first word, each chain word by the
  next one, and the last one by the end-of-sequence token ``<|end|>``.

So any prompt that does not end inside the chain is answered with :data:`ANSWER` in
``len(CHAIN)`` tokens and then stops at EOS; a prompt ending in ``" quick brown"`` continues from
``" fox"``. The KV cache is carried like a real model's (``present.N.key/value`` is ``past``
concatenated with the new positions), so a wrong cache or mask shape fails inside the runtime.
Layout and names follow onnxruntime-genai's defaults (``src/config.h``: ``input_ids``,
``attention_mask``, ``position_ids``, ``past_key_values.%d.key`` / ``.value``, ``logits``,
``present.%d.key`` / ``.value``) and its own test models (``test/python/create/``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

CHAIN: Final = ("The", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog", ".")
"""The words greedy decoding walks, in order, after any prompt that does not end inside them."""
ANSWER: Final = "".join(CHAIN)
EOS: Final = "<|end|>"
SPECIALS: Final = ("<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>", EOS)
CHAT_TEMPLATE: Final = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}")
"""A Phi-style template; the generation prompt ends with a newline byte, which starts the chain."""

LAYERS: Final = 1
KV_HEADS: Final = 1
HEAD_SIZE: Final = 4
CONTEXT_TOKENS: Final = 256
ON_LOGIT: Final = 30.0
"""The chosen token's logit (all others 0): greedy always picks it, sampling almost always."""


def _byte_alphabet() -> list[str]:
    return sorted(pre_tokenizers.ByteLevel.alphabet())


def _vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Every byte, then each chain word's BPE prefixes (so each word is one token), then specials."""
    vocab = {char: index for index, char in enumerate(_byte_alphabet())}
    merges: list[tuple[str, str]] = []
    space = "\u0120"  # the byte-level alphabet's stand-in for " "
    for word in CHAIN:
        symbols = word.replace(" ", space)
        left = symbols[0]
        for char in symbols[1:]:
            merged = left + char
            if merged not in vocab:
                merges.append((left, char))
                vocab[merged] = len(vocab)
            left = merged
    return vocab, merges


def build_tokenizer() -> Tokenizer:
    """A GPT-2-style byte-level BPE tokenizer whose chain words are single tokens."""
    vocab, merges = _vocab_and_merges()
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)  # pyright: ignore[reportAttributeAccessIssue]
    tokenizer.decoder = decoders.ByteLevel()  # pyright: ignore[reportAttributeAccessIssue]
    tokenizer.add_special_tokens([AddedToken(token, special=True, normalized=False) for token in SPECIALS])
    return tokenizer


def _next_token_table(tokenizer: Tokenizer, *, endless: bool) -> np.ndarray:
    ids = [tokenizer.token_to_id(word.replace(" ", "\u0120")) for word in CHAIN]
    last = ids[0] if endless else tokenizer.token_to_id(EOS)
    table = np.full(tokenizer.get_vocab_size(), ids[0], dtype=np.int64)
    for here, after in zip(ids, [*ids[1:], last], strict=True):
        table[here] = after
    return table


def build_graph(next_token: np.ndarray) -> onnx.ModelProto:
    """The decoder: bigram logits plus a KV cache that grows by one position per input token."""
    vocab = int(next_token.shape[0])
    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch_size", "sequence_length"]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch_size", "total_sequence_length"]),
        helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["batch_size", "sequence_length"]),
    ]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch_size", "sequence_length", vocab])]
    initializers = [
        numpy_helper.from_array(next_token, "next_token"),
        numpy_helper.from_array(np.array(vocab, dtype=np.int64), "depth"),
        numpy_helper.from_array(np.array([0.0, ON_LOGIT], dtype=np.float32), "off_on"),
        numpy_helper.from_array(np.array([1, 3], dtype=np.int64), "head_axes"),
        numpy_helper.from_array(np.zeros((1, KV_HEADS, 1, HEAD_SIZE), dtype=np.float32), "kv_zero"),
    ]
    nodes = [
        helper.make_node("Gather", ["next_token", "input_ids"], ["chosen"], axis=0),
        helper.make_node("OneHot", ["chosen", "depth", "off_on"], ["logits"], axis=-1),
        # New cache entries: (position id as float) * 0 broadcast to [batch, heads, seq, head_size];
        # the mask and position inputs are read so the runtime's shapes for them are checked too.
        helper.make_node("Cast", ["position_ids"], ["positions"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["positions", "head_axes"], ["positions_4d"]),
        helper.make_node("Mul", ["positions_4d", "kv_zero"], ["new_kv"]),
    ]
    kv_shape = ["batch_size", KV_HEADS, "past_sequence_length", HEAD_SIZE]
    for layer in range(LAYERS):
        for kind in ("key", "value"):
            past, present = f"past_key_values.{layer}.{kind}", f"present.{layer}.{kind}"
            inputs.append(helper.make_tensor_value_info(past, TensorProto.FLOAT, kv_shape))
            outputs.append(helper.make_tensor_value_info(
                present, TensorProto.FLOAT, ["batch_size", KV_HEADS, "total_sequence_length", HEAD_SIZE]))
            nodes.append(helper.make_node("Concat", [past, "new_kv"], [present], axis=2))
    graph = helper.make_graph(nodes, "slm_tiny_bigram", inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_operatorsetid("", 17)],
                              producer_name="slm-platform-tests")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def genai_config(tokenizer: Tokenizer) -> dict[str, object]:
    """``genai_config.json`` for the graph (schema: onnxruntime-genai ``src/config.h``)."""
    eos = tokenizer.token_to_id(EOS)
    pad = tokenizer.token_to_id("<|endoftext|>")
    return {
        "model": {
            "type": "llama",
            "bos_token_id": pad,
            "eos_token_id": [eos],
            "pad_token_id": pad,
            "vocab_size": tokenizer.get_vocab_size(),
            "context_length": CONTEXT_TOKENS,
            "decoder": {
                "session_options": {"log_id": "onnxruntime-genai", "provider_options": [],
                                    "intra_op_num_threads": 1},
                "filename": "model.onnx",
                "hidden_size": KV_HEADS * HEAD_SIZE,
                "num_attention_heads": KV_HEADS,
                "num_key_value_heads": KV_HEADS,
                "num_hidden_layers": LAYERS,
                "head_size": HEAD_SIZE,
                "inputs": {"input_ids": "input_ids", "attention_mask": "attention_mask",
                           "position_ids": "position_ids", "past_key_names": "past_key_values.%d.key",
                           "past_value_names": "past_key_values.%d.value"},
                "outputs": {"logits": "logits", "present_key_names": "present.%d.key",
                            "present_value_names": "present.%d.value"},
            },
        },
        "search": {"max_length": CONTEXT_TOKENS, "do_sample": False, "past_present_share_buffer": False},
    }


def tokenizer_config(*, chat_template: bool) -> dict[str, object]:
    """``tokenizer_config.json``; without ``chat_template`` the runtime refuses to apply one."""
    config: dict[str, object] = {
        "tokenizer_class": "GPT2Tokenizer", "add_prefix_space": False, "bos_token": "<|endoftext|>",
        "eos_token": EOS, "pad_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
        "model_max_length": CONTEXT_TOKENS, "clean_up_tokenization_spaces": False,
    }
    if chat_template:
        config["chat_template"] = CHAT_TEMPLATE
    return config


def build_model(folder: Path, *, chat_template: bool = True, endless: bool = False) -> Path:
    """Write the model folder into ``folder`` (created) and return it.

    ``endless`` loops the chain instead of ending it with EOS (generation runs to the token budget:
    the benchmark's long answers)."""
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    tokenizer.save(str(folder / "tokenizer.json"))
    onnx.save_model(build_graph(_next_token_table(tokenizer, endless=endless)), str(folder / "model.onnx"))
    (folder / "genai_config.json").write_text(json.dumps(genai_config(tokenizer), indent=2) + "\n")
    (folder / "tokenizer_config.json").write_text(
        json.dumps(tokenizer_config(chat_template=chat_template), indent=2) + "\n")
    return folder
