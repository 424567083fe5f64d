"""Language models from the transformers library measured as they are (runs where transformers is installed; it is
not a dependency of sigprop): fed token ids, x^0 is the token embedding's output, the layers are found in the
model's stack of layers, the output is the model output's logits. ‖∂x^L/∂x^0‖_F² per input (exact probes) against
torch.func.jacrev of the model fed ``inputs_embeds``, the library's own way in past the token embedding; the same
fed a tokenizer's ids and padding attention mask by keyword, and fed ``inputs_embeds`` by keyword (x^0 that
input); a factory's networks stacked against one at a time."""
import numpy as np
import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

transformers = pytest.importorskip("transformers")

VOCAB, WIDTH, LENGTH = 50, 16, 5


def gpt2():
    config = transformers.GPT2Config(vocab_size=VOCAB, n_positions=LENGTH, n_embd=WIDTH, n_layer=2, n_head=2,
                                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0)
    return "transformer.wte", "transformer.h", transformers.GPT2LMHeadModel(config)


def llama():
    config = transformers.LlamaConfig(vocab_size=VOCAB, hidden_size=WIDTH, intermediate_size=32, num_hidden_layers=2,
                                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=LENGTH,
                                      bos_token_id=0, eos_token_id=0)
    return "model.embed_tokens", "model.layers", transformers.LlamaForCausalLM(config)


@pytest.mark.parametrize("make", [gpt2, llama])
def test_a_library_language_model_from_its_token_embedding(make):
    from sigprop.validate import measure_model
    torch.manual_seed(0)
    start, layers, model = make()
    model = model.double().eval()
    ids = torch.randint(VOCAB, (3, LENGTH), generator=torch.Generator().manual_seed(1))
    meas = measure_model(model, ids, probes="exact")
    assert meas.meta["start"] == start and meas.meta["observe"] == [f"{layers}.0", f"{layers}.1"]
    act = "mlp.act" if make is gpt2 else "mlp.act_fn"           # the library's GELU and SiLU modules
    assert meas.meta["pre_modules"] == [f"{layers}.0.{act}", f"{layers}.1.{act}"] and list(meas.pre_layers) == [1, 2]
    assert meas.raw["n"][0].tolist() == [LENGTH * WIDTH] * 3 + [LENGTH * VOCAB]
    with torch.no_grad():
        embedded = model.get_submodule(start)(ids)
    logits = lambda e: model(inputs_embeds=e[None]).logits[0]
    with sdpa_kernel(SDPBackend.MATH):         # vmap has no batching rule for the fused kernels' backward
        jac = torch.stack([torch.func.jacrev(logits)(e).reshape(LENGTH * VOCAB, LENGTH * WIDTH) for e in embedded])
    np.testing.assert_allclose(meas.raw["grad_sq"][0, 0], [(jac ** 2).sum(dim=(1, 2)).mean().item()] * 2,
                               rtol=1e-10)
    np.testing.assert_allclose(meas.raw["p"][0, 0], [(embedded ** 2).mean().item()] * 2, rtol=1e-13)  # batch mean


@pytest.mark.parametrize("make", [gpt2, llama])
def test_a_tokenizers_ids_and_attention_mask_by_keyword(make):
    """Fed a tokenizer's output (ids and an attention mask with padding), per input ‖∂x^L/∂x^0‖_F² against
    torch.func.jacrev of the model fed ``inputs_embeds`` with the same mask."""
    from sigprop.validate import measure_model
    torch.manual_seed(0)
    start, _, model = make()
    model = model.double().eval()
    ids = torch.randint(VOCAB, (3, LENGTH), generator=torch.Generator().manual_seed(1))
    mask = (torch.arange(LENGTH) < torch.tensor([[LENGTH], [3], [4]])).long()     # right padding
    batch = transformers.BatchEncoding({"input_ids": ids, "attention_mask": mask})     # what a tokenizer returns
    meas = measure_model(model, batch, probes="exact")
    assert meas.meta["start"] == start and meas.inputs == {"batch": 3, "keywords": ["input_ids", "attention_mask"]}
    with torch.no_grad():
        embedded = model.get_submodule(start)(ids)

    def jacobian(e, m):
        logits = lambda e: model(inputs_embeds=e[None], attention_mask=m[None]).logits[0]
        return torch.func.jacrev(logits)(e).reshape(LENGTH * VOCAB, LENGTH * WIDTH)
    with sdpa_kernel(SDPBackend.MATH):
        jac = torch.stack([jacobian(e, m) for e, m in zip(embedded, mask)])
    np.testing.assert_allclose(meas.raw["grad_sq"][0, 0], [(jac ** 2).sum(dim=(1, 2)).mean().item()] * 2,
                               rtol=1e-10)
    unmasked = measure_model(model, ids, probes="exact")
    assert not np.allclose(unmasked.raw["grad_sq"][0, 0], meas.raw["grad_sq"][0, 0], rtol=1e-6)
    fed = measure_model(model, {"inputs_embeds": embedded, "attention_mask": mask}, start="inputs_embeds",
                        probes="exact")                  # x^0 the keyword input, the embedding run beforehand
    assert fed.inputs["x0"] == "inputs_embeds"
    for k, v in meas.raw.items():
        np.testing.assert_allclose(fed.raw[k], v, rtol=1e-13, atol=0, err_msg=k)


@pytest.mark.parametrize("make", [gpt2, llama])
def test_a_library_models_networks_stack(make):
    """A factory's networks run stacked under one vmap (the library's helper modules held outside the module
    tree compare equal) and give what they give one at a time."""
    from sigprop.validate import measure_model

    def factory(seed):
        return make()[2].double().eval()
    ids = torch.randint(VOCAB, (3, LENGTH), generator=torch.Generator().manual_seed(1))
    meas = measure_model(factory, ids, seeds=3, probes="exact")
    one = measure_model(factory, ids, seeds=3, probes="exact", seed_batch=1)
    assert meas.meta["stacked"] and not one.meta["stacked"]
    for k, v in one.raw.items():
        np.testing.assert_allclose(meas.raw[k], v, rtol=1e-12, atol=1e-14, err_msg=k)
