"""The embedded vLLM engine in a Ray actor: generation, batching, structure, LoRA, HTTP."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
from pydantic import BaseModel

from classroom.serving.errors import BackendError
from classroom.serving.openai_backend import OpenAIBackend
from classroom.serving.structured import chat_structured
from classroom.serving.types import SamplingParams, as_conversation


class Sum(BaseModel):
    reasoning: str
    answer: int


async def test_generates_text_with_usage(engine):
    [[completion]] = await engine.chat([as_conversation("What is 2 + 3?")], SamplingParams(max_tokens=24))
    assert completion.text.strip()
    assert completion.usage.prompt_tokens > 5
    assert 0 < completion.usage.completion_tokens <= 24
    assert completion.finish_reason in {"stop", "length"}


async def test_greedy_is_deterministic_and_n_samples(engine):
    conv = [as_conversation("Name a color.")]
    a = await engine.chat(conv, SamplingParams(max_tokens=12))
    b = await engine.chat(conv, SamplingParams(max_tokens=12))
    assert a[0][0].text == b[0][0].text
    many = await engine.chat(conv, SamplingParams(n=4, temperature=1.0, max_tokens=12, seed=3))
    assert len(many[0]) == 4
    # Prompt tokens counted once per conversation, not once per sample.
    assert [c.usage.prompt_tokens > 0 for c in many[0]] == [True, False, False, False]


async def test_many_requests_in_flight_at_once(engine):
    """One call of 24 conversations puts all 24 into the engine at once (its scheduler
    batches them), counted by the engine itself, not sampled by a timer."""
    await engine.actor.load.remote(reset_peak=True)
    convs = [as_conversation(f"Count from {i} to {i + 3}.") for i in range(24)]
    results = await engine.chat(convs, SamplingParams(max_tokens=32))
    assert len(results) == 24 and all(r[0].text for r in results)
    load = await engine.actor.load.remote(reset_peak=True)
    assert load["peak_in_flight"] == 24 and load["in_flight"] == 0
    # One at a time, the same engine never holds more than one.
    for conv in convs[:3]:
        await engine.chat([conv], SamplingParams(max_tokens=4))
    assert (await engine.actor.load.remote())["peak_in_flight"] == 1


async def test_logprobs_are_returned_when_asked(engine):
    [[c]] = await engine.chat([as_conversation("Say yes.")], SamplingParams(max_tokens=4, logprobs=3))
    assert c.logprobs and len(c.logprobs) == c.usage.completion_tokens
    first = c.logprobs[0]
    assert first.logprob <= 0.0 and first.token in first.top and len(first.top) <= 4


async def test_top_logprobs_are_the_models_next_token_distribution_as_transformers_computes_it(scoring_engine, engine, random_adapter):
    """A teacher's distribution over a student's sample, as distillation asks for it:
    the engine's top-k at each completion position (through the pool's routing) equals
    transformers' softmax of the same model over the same tokens, computed here."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from classroom.serving.embedded import embedded_model_path
    from classroom.serving.pool import RoutedLLM

    path = embedded_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    text = tokenizer.apply_chat_template([{"role": "user", "content": "What is 2 + 3?"}], tokenize=False, add_generation_prompt=True)
    prompt = tokenizer(text, add_special_tokens=False)["input_ids"]
    completion = tokenizer("2 + 3 = 5. The answer is 5.", add_special_tokens=False)["input_ids"]
    [scored] = await RoutedLLM("scorer", [scoring_engine]).top_logprobs([(prompt, completion)], k=5)
    assert scored.model == "scorer" and len(scored.token_ids) == len(scored.logprobs) == len(completion)

    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    with torch.no_grad():
        logits = model(torch.tensor([prompt + completion])).logits[0]
    # Position i's logits are the distribution over token i + 1: the completion's tokens
    # are predicted from the prompt's last position on.
    top = torch.log_softmax(logits.double(), -1)[len(prompt) - 1 : -1].topk(5, -1)
    for j in range(len(completion)):
        values, ids = top.values[j].tolist(), top.indices[j].tolist()
        assert list(scored.logprobs[j]) == pytest.approx(values, abs=2e-3), j
        # The same tokens, rank by rank, wherever two neighbours are not near a tie.
        for r, token in enumerate(ids):
            apart = all(abs(values[r] - values[q]) > 5e-3 for q in (r - 1, r + 1) if 0 <= q < 5)
            assert not apart or scored.token_ids[j][r] == token, (j, r)

    with pytest.raises(BackendError, match="at least one token"):
        await scoring_engine.top_logprobs([(prompt, [])], k=5)
    with pytest.raises(BackendError, match="k >= 1"):
        await scoring_engine.top_logprobs([(prompt, completion)], k=0)
    # On the CPU build an engine that holds adapters is refused, not asked: vLLM's CPU
    # LoRA kernels fail on prompt log-probabilities and the engine dies
    # (vllm-project/vllm#29955). The shared engine still answers after.
    [[plain]] = await engine.chat([as_conversation("Hi")], SamplingParams(max_tokens=1))
    for adapter in (random_adapter, None):
        with pytest.raises(BackendError, match="classroom merge"):
            await engine.top_logprobs([(prompt, completion)], k=5, adapter=adapter)
    assert [[c.text for c in r] for r in await engine.chat([as_conversation("Hi")], SamplingParams(max_tokens=1))] == [[plain.text]]


async def test_structured_output_validates_into_pydantic(engine):
    convs = [as_conversation(f"What is {i} + {i}? Reply in JSON.") for i in range(3)]
    parsed = await chat_structured(engine, convs, Sum, SamplingParams(max_tokens=96))
    # The schema constrains decoding: with room enough, every reply validates, and the
    # value is what the raw text says.
    assert [type(p.value) for p in parsed] == [Sum] * 3, [p.error for p in parsed]
    assert all(p.error is None and Sum.model_validate_json(p.raw) == p.value for p in parsed)


async def test_structured_output_failure_is_recorded_not_raised(engine):
    # max_tokens too small for any complete object: the reply cannot validate.
    [p] = await chat_structured(engine, [as_conversation("Reply in JSON.")], Sum, SamplingParams(max_tokens=3))
    assert p.value is None and p.repaired and p.error.startswith("after repair")


async def random_loras(engine, folder: Path, seeds: list[int]) -> list[Path]:
    """LoRA adapters with random A and B (one per seed), saved as PEFT saves one."""
    import copy

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    info = await engine.actor.start.remote()
    base = AutoModelForCausalLM.from_pretrained(info["model_path"])
    folders = []
    for seed in seeds:
        torch.manual_seed(seed)
        # init_lora_weights=False: random A and B, so the adapter really moves the output.
        config = LoraConfig(r=8, lora_alpha=32, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
        get_peft_model(copy.deepcopy(base), config).save_pretrained(folder / str(seed))
        folders.append(folder / str(seed))
    return folders


async def random_lora(engine, folder: Path, seed: int) -> Path:
    """One random LoRA adapter (see random_loras), in ``folder``."""
    [made] = await random_loras(engine, folder.parent / f"{folder.name}-made", [seed])
    shutil.move(made, folder)
    return folder


@pytest.fixture(scope="module")
async def random_adapter_folder(engine, tmp_path_factory) -> Path:
    """A LoRA adapter with random A and B, saved as PEFT saves one."""
    return await random_lora(engine, tmp_path_factory.mktemp("lora") / "random-adapter", seed=0)


@pytest.fixture(scope="module")
async def random_adapter(engine, random_adapter_folder) -> str:
    """The random adapter, loaded into the session engine as "random-adapter"."""
    await engine.load_adapter("random-adapter", str(random_adapter_folder))
    return "random-adapter"


async def test_lora_adapter_changes_output(engine, random_adapter):
    conv = [as_conversation("What is the capital of France?")]
    params = SamplingParams(max_tokens=16)
    [[plain]] = await engine.chat(conv, params)
    [[adapted]] = await engine.chat(conv, params, adapter="random-adapter")
    assert adapted.text != plain.text
    assert adapted.usage.model == "random-adapter"
    with pytest.raises(Exception, match="not loaded"):
        await engine.chat(conv, params, adapter="never-loaded")


async def test_a_base_request_batched_with_every_slot_full_is_answered_by_the_base_model(engine, tmp_path):
    """vLLM's CPU LoRA ops read a base request's slot index -1 as the last slot: with
    every slot holding an adapter, a base request batched with adapter requests was
    answered by an adapter (this test fails with VLLM_PLUGINS=none, which turns serving/cpu_lora.py off). A class of
    students on one engine with a base-model baseline is exactly that batch."""
    from support.engines import shared_pool_config

    slots = shared_pool_config().models["embedded"].engine.max_loras
    started = await engine.actor.info.remote()
    names = [f"slot-{k}" for k in range(slots)]
    folders = await random_loras(engine, tmp_path, [100 + k for k in range(slots)])
    convs = [as_conversation(f"What is {a} * {b}? End with 'The answer is N.'") for a in range(2, 4) for b in range(3, 6)]
    params = SamplingParams(max_tokens=16)

    def texts(replies):
        return [r[0].text for r in replies]

    try:
        for name, folder in zip(names, folders):
            await engine.load_adapter(name, str(folder))
        base_alone = texts(await engine.chat(convs, params))
        # Every slot active in one batch, base requests among them.
        base_mixed, *adapted_mixed = await asyncio.gather(
            engine.chat(convs, params), *(engine.chat(convs, params, adapter=name) for name in names)
        )
        assert texts(base_mixed) == base_alone
        assert all(texts(adapted) != base_alone for adapted in adapted_mixed)  # each adapter moves the output
    finally:
        await engine.actor.reset.remote(keep=started["adapters"])


async def test_a_reset_engine_unloads_the_adapters_it_is_not_told_to_keep(engine, random_adapter, random_adapter_folder):
    """What a kept engine does between episodes (and the tier's fixture between tests):
    the adapters an episode loaded go, the engine and the kept ones stay."""
    conv = [as_conversation("What is the capital of France?")]
    params = SamplingParams(max_tokens=16)
    started = await engine.actor.info.remote()  # the tier's adapters (a class's) stay too
    assert random_adapter in started["adapters"]
    await engine.load_adapter("for-one-episode", str(random_adapter_folder))
    [[before]] = await engine.chat(conv, params, adapter="for-one-episode")
    info = await engine.actor.reset.remote(keep=started["adapters"])
    assert info["adapters"] == started["adapters"] and info["pid"] == started["pid"]  # the same engine process
    with pytest.raises(Exception, match="'for-one-episode' is not loaded"):
        await engine.chat(conv, params, adapter="for-one-episode")
    [[kept]] = await engine.chat(conv, params, adapter=random_adapter)
    assert kept.text == before.text  # the same weights, still served
    with pytest.raises(Exception, match="'never-loaded' is not loaded"):
        await engine.actor.unload_adapter.remote("never-loaded")


async def test_an_adapter_travels_to_the_engine_as_its_files_not_its_path(engine, random_adapter, random_adapter_folder, tmp_path):
    # The trainer's folder is gone before the engine loads the adapter: the engine
    # writes the files it was sent into a folder of its own node (no shared filesystem).
    from classroom.serving.adapters import adapters_root, pack_adapter

    moved = tmp_path / "trained-elsewhere"
    shutil.copytree(random_adapter_folder, moved)
    files = pack_adapter(moved)
    shutil.rmtree(moved)
    await engine.actor.load_adapter.remote("moved-adapter", files)
    info = await engine.actor.info.remote()
    assert "moved-adapter" in info["adapters"]
    conv = [as_conversation("What is the capital of France?")]
    params = SamplingParams(max_tokens=16)
    [[original]] = await engine.chat(conv, params, adapter=random_adapter)
    [[travelled]] = await engine.chat(conv, params, adapter="moved-adapter")
    assert travelled.text == original.text  # the same weights, wherever they came from
    assert (adapters_root() / files.digest / "adapter_model.safetensors").is_file()
    with pytest.raises(Exception, match=r"no adapter_config\.json"):
        await engine.load_adapter("nothing", str(tmp_path))


async def test_an_engine_records_the_calls_it_answers_when_asked(engine):
    await engine.actor.record_calls.remote(True)
    conversations = [as_conversation("What is 2 + 3?"), as_conversation("What is 4 + 4?")]
    await engine.chat(conversations, SamplingParams(max_tokens=4))
    [call] = await engine.actor.record_calls.remote(False)
    assert call.conversations == conversations and call.params.max_tokens == 4 and call.started <= call.ended
    await engine.chat(conversations[:1], SamplingParams(max_tokens=4))
    assert await engine.actor.record_calls.remote(False) == []  # off: nothing kept


async def test_http_door_serves_the_same_engine(engine, engine_url):
    http = OpenAIBackend(engine_url, "embedded", keyless=True, max_retries=0)
    conv = [as_conversation("What is 7 + 1?")]
    params = SamplingParams(max_tokens=16)
    [[via_http]] = await http.chat(conv, params)
    [[via_ray]] = await engine.chat(conv, params)
    assert via_http.text == via_ray.text
    assert via_http.usage.completion_tokens == via_ray.usage.completion_tokens
    assert via_http.usage.prompt_tokens == via_ray.usage.prompt_tokens


async def test_http_structured_output_and_logprobs(engine_url):
    http = OpenAIBackend(engine_url, "embedded", keyless=True)
    [parsed] = await chat_structured(http, [as_conversation("What is 1 + 1? Reply in JSON.")], Sum, SamplingParams(max_tokens=96))
    # response_format reaches the engine over HTTP: the reply is the schema's JSON.
    assert isinstance(parsed.value, Sum) and json.loads(parsed.raw) == parsed.value.model_dump()
    [[c]] = await http.chat([as_conversation("Say yes.")], SamplingParams(max_tokens=4, logprobs=2))
    assert c.logprobs and c.logprobs[0].logprob <= 0.0 and len(c.logprobs[0].top) <= 3


async def test_http_serves_loaded_adapter_by_name(engine, engine_url, random_adapter):
    # Loaded on the engine (through Ray), the adapter is served by the HTTP door too.
    assert random_adapter in (await engine.actor.start.remote())["adapters"]
    http = OpenAIBackend(engine_url, "embedded", keyless=True)
    conv = [as_conversation("What is the capital of France?")]
    params = SamplingParams(max_tokens=16)
    [[via_http]] = await http.chat(conv, params, adapter="random-adapter")
    [[via_ray]] = await engine.chat(conv, params, adapter="random-adapter")
    [[plain]] = await http.chat(conv, params)
    assert via_http.text == via_ray.text and via_http.text != plain.text


async def test_an_endpoint_that_loads_adapters_serves_one_sent_by_path_and_the_engines_own_as_themselves(engine, engine_url, tmp_path):
    """The tier's HTTP door loads adapters at run time (opened as `classroom serve
    --runtime-lora` opens it). An endpoint with lora_base_model sends an adapter by its
    folder's path: the server lists and serves it, and it answers as the same weights
    loaded into the engine through Ray. vLLM keys adapters by id, and the door numbers
    the ones clients load: an adapter sent over HTTP and one the engine loads never take
    one id (the first loaded would answer for the other), whichever came first."""
    import httpx

    x = await random_lora(engine, tmp_path / "x", seed=1)
    y = await random_lora(engine, tmp_path / "y", seed=2)
    http = OpenAIBackend(engine_url, "embedded", keyless=True, loads_adapters=True)
    conv = [as_conversation("What is the capital of France?")]
    params = SamplingParams(max_tokens=16)
    try:
        await http.load_adapter("sent-by-path", str(x))
        await engine.load_adapter("y-through-ray", str(y))
        await engine.load_adapter("x-through-ray", str(x))
        served = {m["id"] for m in httpx.get(f"{engine_url}/models").json()["data"]}
        assert {"embedded", "sent-by-path", "y-through-ray", "x-through-ray"} <= served
        [[sent]] = await http.chat(conv, params, adapter="sent-by-path")
        [[x_ray]] = await engine.chat(conv, params, adapter="x-through-ray")
        [[y_ray]] = await engine.chat(conv, params, adapter="y-through-ray")
        [[y_http]] = await http.chat(conv, params, adapter="y-through-ray")
        [[plain]] = await http.chat(conv, params)
        assert sent.text == x_ray.text and sent.usage.model == "sent-by-path"
        assert y_ray.text == y_http.text
        assert len({plain.text, x_ray.text, y_ray.text}) == 3  # three weights, three answers
        # Loading a name again replaces it: the other weights now answer for it.
        await http.load_adapter("sent-by-path", str(y))
        [[replaced]] = await http.chat(conv, params, adapter="sent-by-path")
        assert replaced.text == y_ray.text
    finally:
        httpx.post(f"{engine_url}/unload_lora_adapter", json={"lora_name": "sent-by-path"})
    # Not marked as loading adapters, an endpoint refuses in one line naming the setting.
    with pytest.raises(BackendError, match="takes no LoRA adapters: set its endpoint's lora_base_model"):
        await OpenAIBackend(engine_url, "embedded", keyless=True).load_adapter("x", str(x))


async def test_greedy_reply_cache_serves_repeats_and_skips_sampling(engine):
    actor = engine.actor
    await actor.set_response_cache.remote(16)
    try:
        conv = [as_conversation("Name a fruit.")]
        first = await engine.chat(conv, SamplingParams(max_tokens=8))
        before = (await actor.set_response_cache.remote(16))["hits"]
        again = await engine.chat(conv, SamplingParams(max_tokens=8))
        stats = await actor.set_response_cache.remote(16)
        assert again == first and stats["hits"] == before + 1
        await engine.chat(conv, SamplingParams(max_tokens=8, temperature=0.8, seed=1))  # sampled: never cached
        assert (await actor.set_response_cache.remote(16))["hits"] == stats["hits"]

        # Identical requests at once (two episodes of a concurrent sweep, twins in one
        # batch): generated once, every caller gets the reply.
        twins = [as_conversation("Name a colour."), as_conversation("Name a tree."), as_conversation("Name a colour.")]
        served = (await actor.stats.remote()).requests
        one, two = await asyncio.gather(
            engine.chat(twins, SamplingParams(max_tokens=8)), engine.chat(twins[:2], SamplingParams(max_tokens=8))
        )
        assert (await actor.stats.remote()).requests == served + 2
        assert one[0] == one[2] == two[0] and one[1] == two[1] and one[0] != one[1]
        # A joined request gets its own reply, not the error of a request beside it.
        too_long = as_conversation("word " * 4000)
        fresh = [as_conversation("Name a river.")]
        failed, joined = await asyncio.gather(
            engine.chat([*fresh, too_long], SamplingParams(max_tokens=8)),
            engine.chat(fresh, SamplingParams(max_tokens=8)),
            return_exceptions=True,
        )
        assert isinstance(failed, Exception) and "word" not in str(joined), failed
        assert joined[0][0].text
    finally:
        await actor.set_response_cache.remote(0)
