"""LoRALearner: real LoRA SFT with TRL on the CPU, hot-loaded into the running engine;
its merged copy; incremental and accumulated training."""

from __future__ import annotations

import json
import math
import pickle
import shutil
from pathlib import Path

import pytest

from classroom.agents.learners import LoRALearner
from classroom.serving.adapters import materialize, pack_adapter
from classroom.serving.types import SamplingParams, as_conversation

# A made-up function the base model cannot know: zorp(n) = n + offset.
NUMBERS = range(2, 18)
GREEDY = SamplingParams(max_tokens=10, temperature=0.0)
# Measured on 2 cores: 3 epochs at lr 3e-3, batch 4 learn all 16 answers in ~18 s.
FAST_FIT = {"base_model": "embedded", "epochs": 3, "learning_rate": 3e-3, "batch_size": 4}


def zorp_examples(offset: int, numbers=NUMBERS) -> list[dict]:
    return [
        {
            # A short system turn replaces SmolLM2's default one: fewer tokens to train.
            "prompt": [{"role": "system", "content": "Answer."}, {"role": "user", "content": f"Q: What is the zorp of {n}?"}],
            "completion": [{"role": "assistant", "content": f"The answer is {n + offset}."}],
        }
        for n in numbers
    ]


def targets(examples: list[dict]) -> list[str]:
    return [e["completion"][0]["content"] for e in examples]


async def answers(engine, examples: list[dict], adapter: str | None) -> list[str]:
    replies = await engine.chat([as_conversation(e["prompt"]) for e in examples], GREEDY, adapter=adapter)
    return [r[0].text.strip() for r in replies]


def matches(replies: list[str], wanted: list[str]) -> int:
    return sum(r == w for r, w in zip(replies, wanted))


def lora_weights(folder: str) -> dict:
    from safetensors.torch import load_file

    return load_file(str(Path(folder) / "adapter_model.safetensors"))


@pytest.fixture(scope="module")
async def zorp_adapter(trainer, tmp_path_factory) -> tuple[list[dict], dict]:
    examples = zorp_examples(10)
    learner = LoRALearner(**FAST_FIT)
    result = await learner.fit(examples, str(tmp_path_factory.mktemp("lora") / "zorp10"))
    return examples, result


async def test_lora_fit_teaches_the_student_its_examples(engine, zorp_adapter):
    examples, result = zorp_adapter
    assert result["examples"] == 16 and result["mode"] == "accumulated" and result["epochs"] == 3
    assert result["steps"] == 3 * 16 // 4
    assert math.isfinite(result["train_loss"]) and result["seconds"] > 0
    config = json.loads((Path(result["adapter_path"]) / "adapter_config.json").read_text())
    assert config["r"] == 8 and set(config["target_modules"]) >= {"q_proj", "down_proj"}

    await engine.load_adapter("zorp", result["adapter_path"])
    wanted = targets(examples)
    taught = await answers(engine, examples, "zorp")
    base = await answers(engine, examples, None)
    assert matches(taught, wanted) >= 12, list(zip(taught, wanted))
    assert matches(base, wanted) <= 1, base


def test_a_merged_copy_holds_what_its_adapter_taught(zorp_adapter, tmp_path, capsys):
    """`classroom merge`: the adapter folded into the base weights gives the adapter's
    logits without peft, and so its answers (the engine then serves it at base speed)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from classroom.launch.cli import main
    from classroom.serving.embedded import resolve_model
    from classroom.serving.merged import MERGE_MARKER

    examples, result = zorp_adapter
    adapter, out = result["adapter_path"], tmp_path / "merged"
    assert main(["merge", adapter, str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    marker = json.loads((out / MERGE_MARKER).read_text())
    assert marker["adapter_digest"] == pack_adapter(adapter).digest and not (out / "adapter_config.json").exists()

    tokenizer = AutoTokenizer.from_pretrained(out)
    merged = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    adapted = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(resolve_model("embedded"), dtype=torch.float32), adapter
    ).eval()
    prompts = [tokenizer.apply_chat_template(e["prompt"], add_generation_prompt=True, tokenize=False) for e in examples]
    batch = tokenizer(prompts[:4], return_tensors="pt", padding=True)
    with torch.no_grad():
        want, got = adapted(**batch).logits, merged(**batch).logits
        with adapted.disable_adapter():
            base = adapted(**batch).logits
    assert torch.allclose(got, want, atol=1e-3), (got - want).abs().max()
    assert (base - want).abs().max() > 1.0  # the adapter does move them
    tokenizer.padding_side = "left"  # generation continues every prompt from its end
    batch = tokenizer(prompts, return_tensors="pt", padding=True)
    with torch.no_grad():
        replies = merged.generate(**batch, max_new_tokens=10, do_sample=False)
    taught = [text.strip() for text in tokenizer.batch_decode(replies[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)]
    assert matches(taught, targets(examples)) >= 12, list(zip(taught, targets(examples)))

    # Bad input: one line, exit 2, nothing written over.
    assert main(["merge", adapter, str(out)]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert main(["merge", str(tmp_path), str(tmp_path / "other")]) == 2
    assert "no adapter_config.json" in capsys.readouterr().err and not (tmp_path / "other").exists()


async def test_replacing_an_adapter_in_the_running_engine_changes_answers(engine, zorp_adapter, tmp_path_factory):
    import ray

    def actor_id(host) -> str:
        return ray.get_runtime_context().get_actor_id()

    examples, first = zorp_adapter
    # Half the prompts: LoRA requests are ~3x slower than base ones on vLLM's CPU build.
    examples = examples[::2]
    before = await engine.actor.start.remote()
    id_before = await engine.actor.__ray_call__.remote(actor_id)
    # The reply cache is on, so a stale reply of the replaced adapter would show.
    await engine.actor.set_response_cache.remote(64)
    try:
        await engine.load_adapter("zorp-swap", first["adapter_path"])
        old = await answers(engine, examples, "zorp-swap")
        hits = (await engine.actor.set_response_cache.remote(64))["hits"]
        assert await answers(engine, examples, "zorp-swap") == old
        assert (await engine.actor.set_response_cache.remote(64))["hits"] == hits + len(examples)

        # Any adapter but the first answers differently; two steps make one.
        other = zorp_examples(40)
        quick = LoRALearner(base_model="embedded", epochs=1, batch_size=8, learning_rate=5e-3)
        second = await quick.fit(other, str(tmp_path_factory.mktemp("lora") / "zorp40"))
        await engine.load_adapter("zorp-swap", second["adapter_path"])
        new = await answers(engine, examples, "zorp-swap")
    finally:
        await engine.actor.set_response_cache.remote(0)

    after = await engine.actor.start.remote()
    assert await engine.actor.__ray_call__.remote(actor_id) == id_before
    assert (after["pid"], after["startup_s"]) == (before["pid"], before["startup_s"])
    assert "zorp-swap" in after["adapters"]
    assert sum(n != o for n, o in zip(new, old)) >= 6, list(zip(old, new))
    assert matches(old, targets(examples)) >= 6 and matches(new, targets(examples)) <= 2, (old, new)


async def test_incremental_continues_the_adapter_on_new_examples_only(trainer, tmp_path):
    examples = zorp_examples(10, range(2, 8))
    first = LoRALearner(base_model="embedded", mode="incremental", epochs=1, batch_size=8, learning_rate=5e-3)
    one = await first.fit(examples[:4], str(tmp_path / "one"))
    assert (one["examples"], one["steps"], one["mode"]) == (4, 1, "incremental")
    # The adapter's files are not in the state (a checkpoint is JSON): the run keeps them.
    assert first.state() == {"mode": "incremental", "trained": 4}
    assert first.adapter == pack_adapter(one["adapter_path"])
    # The learner travels into the Student actor: its state and adapter go along, the handle not.
    copied = pickle.loads(pickle.dumps(first))
    assert copied.state() == first.state() and copied.adapter == first.adapter and copied._trainer_handle is None

    # A resumed learner with a tiny learning rate: if it continued the adapter, the
    # weights stay where the first fit left them; a fresh LoRA would start at B = 0.
    # Given the files only: the folder the first fit wrote is gone.
    files = pack_adapter(one["adapter_path"])
    shutil.rmtree(tmp_path / "one")
    resumed = LoRALearner(base_model="embedded", mode="incremental", epochs=1, batch_size=8, learning_rate=1e-8)
    with pytest.raises(ValueError, match="trained=4 but no adapter to continue"):
        resumed.restore(json.loads(json.dumps(first.state())))
    resumed.restore({**first.state(), "adapter": files})
    two = await resumed.fit(examples, str(tmp_path / "two"))
    assert (two["examples"], two["steps"]) == (2, 1)
    assert resumed.state()["trained"] == 6
    before, after = lora_weights(materialize(files, tmp_path / "kept")), lora_weights(two["adapter_path"])
    assert before.keys() == after.keys()
    lora_b = [k for k in before if "lora_B" in k]
    assert lora_b and max(before[k].abs().max().item() for k in lora_b) > 1e-3
    assert all((before[k] - after[k]).abs().max().item() < 1e-5 for k in before)

    with pytest.raises(ValueError, match="no examples to train on beyond the 6"):
        await resumed.fit(examples, str(tmp_path / "three"))


async def test_accumulated_retrains_a_fresh_adapter_on_all_examples(trainer, tmp_path):
    examples = zorp_examples(10, range(2, 8))
    learner = LoRALearner(base_model="embedded", mode="accumulated", epochs=1, batch_size=8, learning_rate=5e-3)
    one = await learner.fit(examples[:4], str(tmp_path / "one"))
    # A tiny learning rate for the second fit: a fresh LoRA stays where it starts
    # (B = 0); one that continued the first adapter would keep its weights.
    learner.learning_rate = 1e-8
    two = await learner.fit(examples, str(tmp_path / "two"))
    assert (one["examples"], two["examples"]) == (4, 6) and two["steps"] == 1  # all 6, one batch
    first, second = lora_weights(one["adapter_path"]), lora_weights(two["adapter_path"])
    lora_b = [k for k in first if "lora_B" in k]
    assert lora_b and max(first[k].abs().max().item() for k in lora_b) > 1e-3
    assert max(second[k].abs().max().item() for k in lora_b) < 1e-5


async def test_distilling_from_a_served_teacher_moves_the_student_toward_it(engine, scoring_engine, trainer, zorp_adapter):
    """On-policy distillation from a served teacher (issue #28). The student is the base
    model with the zorp adapter (zorp(n) = n + 10: it answers what the base model does
    not), the teacher the base model on an engine of its own (one that holds no adapters:
    vLLM's CPU build cannot read token distributions beside them). The student answers in its own words, the
    engine scores those tokens as the teacher would have written them (top-20), and a LoRA
    step from the student's adapter matches them. On held-out numbers the student's
    divergence from the teacher falls (each measured on the student's own samples), and on
    the training prompts it stops answering what the teacher does not know."""
    from classroom.agents.distillation import DistillRow

    examples, result = zorp_adapter
    student_files = pack_adapter(result["adapter_path"])
    await engine.load_adapter("zorp-student", student_files)
    settings = {**LoRALearner(**FAST_FIT).settings(), "beta": 0.5, "temperature": 1.0}

    async def samples(prompts: list[dict], adapter: str) -> list[DistillRow]:
        """The student's own answers (greedy), scored by the teacher."""
        replies = await answers(engine, prompts, adapter)
        rows = [{"prompt": e["prompt"], "completion": [{"role": "assistant", "content": r}]} for e, r in zip(prompts, replies)]
        sequences = await trainer.scoring_ids.remote(rows)
        scored = await scoring_engine.top_logprobs(sequences, 20)
        return [DistillRow(prompt_ids=p, completion_ids=c, teacher=t) for (p, c), t in zip(sequences, scored)]

    fitted = await trainer.train_to_teacher.remote(await samples(examples, "zorp-student"), settings=settings, init_adapter=student_files)
    assert fitted["steps"] == 3 * 16 // 4 and math.isfinite(fitted["train_loss"])
    held_out = zorp_examples(10, numbers=range(30, 38))
    before = await trainer.divergence.remote(await samples(held_out, "zorp-student"), student_files)
    await engine.load_adapter("distilled", fitted["adapter_files"])
    after = await trainer.divergence.remote(await samples(held_out, "distilled"), fitted["adapter_files"])
    assert after < 0.75 * before, (before, after)  # measured: 0.355 -> 0.182
    # One round of its own samples moves what it says: it drops the rule the teacher does
    # not know (n + 10) and starts as the teacher does ("The zorp of n is ...").
    was, now = await answers(engine, examples, "zorp-student"), await answers(engine, examples, "distilled")
    teacher = await answers(scoring_engine, examples, None)
    assert matches(was, targets(examples)) >= 12 and matches(now, targets(examples)) <= 2, now
    assert all(t.startswith("The z") for t in teacher)
    assert sum(a.startswith("The z") for a in now) >= sum(a.startswith("The z") for a in was) + 12, (now, teacher)
