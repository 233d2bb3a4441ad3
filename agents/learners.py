"""Learners: how a student learns between rounds, as one protocol with built-ins.

:class:`InContextLearner` keeps a memory of worked examples and puts the closest ones
before each question; it works with every backend. :class:`LoRALearner` (named in
Hydra by ``_target_``, as any :class:`Learner`) sends the training to a
:class:`LoRATrainer` Ray actor, which runs TRL's ``SFTTrainer`` with peft on the CPU
and saves an adapter folder the serving engine hot-loads (``load_adapter``).

Examples are TRL conversational prompt-completion dicts::

    {"prompt": [{"role": "user", "content": "..."}],
     "completion": [{"role": "assistant", "content": "..."}]}

and the loss is on the completion only (TRL's default for prompt-completion data).
"""

from __future__ import annotations

import copy
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from classroom.agents.distillation import DistillRow
from classroom.agents.messages import Explanation, Problem, TrainingExample
from classroom.serving.adapters import AdapterFiles, materialize, pack_adapter, write_adapter


@dataclass(frozen=True)
class LearnOutcome:
    """What one round of learning produced."""

    # Examples this round learned from (new ones only, for learners that continue).
    examples: int
    # A LoRA adapter's files, to serve from now on; None when nothing new is to be served.
    adapter: AdapterFiles | None = None
    train_loss: float | None = None
    epochs: int | None = None


@runtime_checkable
class Learner(Protocol):
    """How a student learns between rounds.

    ``learn`` gets every example so far, oldest first, and the same examples as TRL
    prompt-completion rows worded exactly as the student is asked. In-context learners
    keep them as demonstrations; fine-tuning learners train an adapter and return its
    files, which the student's engine then serves. The files, not a folder: a learner
    runs in the student's actor, on any node, and the run directory that keeps them is
    the driver's. ``state``/``restore`` carry a learner across a resumed episode.
    """

    def demonstrations(self, problem: Problem) -> list[tuple[Problem, Explanation]]: ...

    async def learn(self, examples: Sequence[TrainingExample], rows: Sequence[dict]) -> LearnOutcome: ...

    def state(self) -> dict[str, Any]: ...

    def restore(self, state: Mapping[str, Any]) -> None: ...


class InContextLearner:
    """A memory of worked examples, shown before each question as demonstrations.

    For each question the ``k`` examples sharing most skills with it come first, then
    the most recent ones; none is the question itself.
    """

    def __init__(self, k: int = 4):
        if k < 0:
            raise ValueError(f"InContextLearner: k must be >= 0, got {k}")
        self.k = k
        self.memory: list[tuple[Problem, Explanation]] = []

    def demonstrations(self, problem: Problem) -> list[tuple[Problem, Explanation]]:
        skills = set(problem.skills)
        candidates = [(i, p, e) for i, (p, e) in enumerate(self.memory) if p.id != problem.id]
        candidates.sort(key=lambda c: (-len(skills & set(c[1].skills)), -c[0]))
        return [(p, e) for _, p, e in candidates[: self.k]]

    async def learn(self, examples: Sequence[TrainingExample], rows: Sequence[dict]) -> LearnOutcome:
        """Add the examples not in memory yet (by id); nothing to train or serve."""
        seen = {p.id for p, _ in self.memory}
        new = [e for e in examples if e.id not in seen]
        for example in new:
            problem = Problem(id=example.id, question=example.prompt, answer=example.answer or "", skills=example.skills)
            self.memory.append((problem, Explanation(problem_id=example.id, text=example.completion, final_answer=example.answer)))
        return LearnOutcome(examples=len(new))

    def state(self) -> dict[str, Any]:
        return {"memory": [[p.model_dump(mode="json"), e.model_dump(mode="json")] for p, e in self.memory]}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.memory = [(Problem.model_validate(p), Explanation.model_validate(e)) for p, e in state.get("memory", [])]


LearnMode = Literal["accumulated", "incremental"]
MODES: tuple[str, ...] = ("accumulated", "incremental")
DEFAULT_TARGET_MODULES: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class LoRATrainer:
    """Trains LoRA adapters on one base model, held in memory between calls.

    Used as a Ray actor (one per base model, see :meth:`LoRALearner.fit`). Every
    ``train`` starts from a pristine copy of the base weights: peft injects its layers
    into the model it wraps, so training on the loaded model itself would leak one
    adapter into the next.
    """

    def __init__(self, base_model: str, num_threads: int | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from classroom.serving.embedded import resolve_model

        torch.set_num_threads(num_threads or os.cpu_count() or 1)
        self.base_model = base_model
        self.model_path = resolve_model(base_model)
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        self._base = AutoModelForCausalLM.from_pretrained(self.model_path, dtype=torch.float32)
        self._base.eval()

    def train(self, examples: list[dict], *, settings: dict[str, Any], init_adapter: AdapterFiles | None = None) -> dict[str, Any]:
        """Supervised fine-tuning on ``examples`` (prompt-completion rows); the adapter comes
        back as ``adapter_files``.

        ``settings`` holds r, alpha, dropout, target_modules, epochs, learning_rate,
        batch_size, max_length, seed and device (see :func:`device_args`). With
        ``init_adapter`` (an earlier ``out_dir``) that adapter is trained further; else
        a fresh LoRA is made from the settings.
        """
        from trl import SFTConfig, SFTTrainer

        return self._fit("train", SFTConfig, SFTTrainer, examples, settings, init_adapter, {})

    def train_preferences(self, rows: list[dict], *, settings: dict[str, Any], init_adapter: AdapterFiles | None = None) -> dict[str, Any]:
        """DPO on ``rows`` (prompt / chosen / rejected); with ``nll_weight`` > 0 an NLL
        term on the chosen completions is added (RPO, as LbT's M2 does). ``settings`` as
        for :meth:`train`, plus ``beta`` and ``nll_weight``.

        The reference is the policy DPO starts from: with ``init_adapter`` (SuperCorrect's
        stage 2 continuing stage 1) TRL's DPOTrainer keeps a frozen copy of it as the
        adapter "ref"; without one, the base model (the new adapter switched off). The
        figures say which (``reference``), so a TRL that changed this would show."""
        from trl import DPOConfig, DPOTrainer

        losses: dict[str, Any] = {"beta": settings["beta"], "loss_type": ["sigmoid"]}
        if settings.get("nll_weight"):
            losses.update(loss_type=["sigmoid", "sft"], loss_weights=[1.0, settings["nll_weight"]])
        return self._fit("train_preferences", DPOConfig, DPOTrainer, rows, settings, init_adapter, losses)

    def _fit(
        self,
        what: str,
        config_class: Any,
        trainer_class: Any,
        rows: list[dict],
        settings: dict[str, Any],
        init_adapter: AdapterFiles | None,
        extra: dict[str, Any],
    ) -> dict[str, Any]:
        from datasets import Dataset
        from peft import PeftModel

        if not rows:
            raise ValueError(f"LoRATrainer.{what}: no examples to train on")
        started = time.perf_counter()
        model = copy.deepcopy(self._base)
        peft_config = None
        if init_adapter is not None:  # sent as files: it was trained on any node
            model = PeftModel.from_pretrained(model, materialize(init_adapter), is_trainable=True)
        else:
            peft_config = lora_config(settings)
        scratch = tempfile.mkdtemp(prefix="classroom-lora-")
        try:
            # Gradient checkpointing only trades time for memory a small model does not need.
            config = config_class(
                output_dir=scratch,
                num_train_epochs=settings["epochs"],
                learning_rate=settings["learning_rate"],
                per_device_train_batch_size=settings["batch_size"],
                max_length=settings["max_length"],
                seed=settings["seed"],
                lr_scheduler_type="constant",
                warmup_steps=0,
                **device_args(settings.get("device", "cpu")),
                gradient_checkpointing=False,
                report_to=[],
                save_strategy="no",
                disable_tqdm=True,
                logging_strategy="no",
                dataloader_num_workers=0,
                dataloader_pin_memory=False,
                **extra,
            )
            trainer = trainer_class(
                model=model,
                args=config,
                train_dataset=Dataset.from_list(list(rows)),
                processing_class=self.tokenizer,
                peft_config=peft_config,
            )
            adapters = trainer.model.peft_config if isinstance(trainer.model, PeftModel) else {}
            reference = "the initial adapter" if "ref" in adapters else "the base model"
            result = trainer.train()
            # Saved here, then sent back as files: the caller, on any node, writes them
            # into its out_dir (no filesystem is shared with the trainer's node).
            trainer.model.save_pretrained(os.path.join(scratch, "adapter"))
            adapter = pack_adapter(os.path.join(scratch, "adapter"))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return {
            "train_loss": float(result.training_loss),
            "seconds": time.perf_counter() - started,
            "steps": int(result.global_step),
            "examples": len(rows),
            # What a preference step's reference policy was (an SFT step has none).
            **({"reference": reference} if what == "train_preferences" else {}),
            "adapter_files": adapter,
        }

    def train_to_teacher(
        self, rows: list[DistillRow], *, settings: dict[str, Any], init_adapter: AdapterFiles | None = None
    ) -> dict[str, Any]:
        """On-policy distillation: a LoRA adapter whose next-token distributions match a
        served teacher's top-k on ``rows`` (see :func:`classroom.agents.distillation.fit_to_teacher`)."""
        from classroom.agents.distillation import fit_to_teacher

        return fit_to_teacher(self._base, rows, settings, init_adapter)

    def scoring_ids(self, rows: list[dict]) -> list[tuple[list[int], list[int]]]:
        """Each prompt-completion row (chat messages) as token ids, the prompt's as an
        engine renders it (the chat template, generation prompt on) and the completion's
        after it: what a teacher scores and the student trains on."""
        pairs = []
        for row in rows:
            prompt = self.tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=False)
            whole = self.tokenizer.apply_chat_template([*row["prompt"], *row["completion"]], tokenize=False)
            if not whole.startswith(prompt):
                raise ValueError(f"{self.base_model}'s chat template does not write a reply after the prompt it renders")
            ids = self.tokenizer(whole, add_special_tokens=False)["input_ids"]
            prompt_ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
            if ids[: len(prompt_ids)] != prompt_ids:
                raise ValueError(f"{self.base_model}'s tokenizer merges the prompt's last token with the reply's first")
            # The completion with the template's end of turn: the student learns to stop too.
            pairs.append((prompt_ids, ids[len(prompt_ids) :]))
        return pairs

    def divergence(self, rows: list[DistillRow], adapter: AdapterFiles | None = None, *, beta: float = 0.5) -> float:
        """How far the base model (or the base with ``adapter``) is from the teacher on ``rows``."""
        from peft import PeftModel

        from classroom.agents.distillation import divergence

        model = self._base if adapter is None else PeftModel.from_pretrained(copy.deepcopy(self._base), materialize(adapter))
        model.eval()
        return divergence(model, rows, beta=beta)

    def preference_margins(self, rows: list[dict], adapter: AdapterFiles | None = None) -> list[float]:
        """log p(chosen | prompt) - log p(rejected | prompt) of each row, under the base
        model or, given ``adapter`` (its files), the base with that adapter."""
        import torch
        from peft import PeftModel

        model = self._base if adapter is None else PeftModel.from_pretrained(copy.deepcopy(self._base), materialize(adapter))
        model.eval()
        margins = []
        with torch.no_grad():
            for row in rows:
                chosen, rejected = (self._completion_logprob(model, row["prompt"], row[k]) for k in ("chosen", "rejected"))
                margins.append(chosen - rejected)
        return margins

    def _completion_logprob(self, model: Any, prompt: list[dict], completion: list[dict]) -> float:
        """Sum of the log-probabilities of the completion's tokens after the prompt."""
        import torch

        prompt_ids = self.tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True, return_dict=False)
        full_ids = self.tokenizer.apply_chat_template([*prompt, *completion], tokenize=True, return_dict=False)
        ids = torch.tensor([full_ids])
        logprobs = torch.log_softmax(model(ids).logits[0, :-1].float(), dim=-1)
        targets = ids[0, 1:]
        start = len(prompt_ids) - 1  # predictions of the completion's tokens start here
        return float(logprobs[start:].gather(1, targets[start:, None]).sum())


def lora_config(settings: Mapping[str, Any]) -> Any:
    """A fresh LoRA's peft config from a learner's settings (r, alpha, dropout, target_modules)."""
    from peft import LoraConfig

    return LoraConfig(
        r=settings["r"],
        lora_alpha=settings["alpha"],
        lora_dropout=settings["dropout"],
        target_modules=list(settings["target_modules"]),
        task_type="CAUSAL_LM",
    )


def device_args(device: str, bf16_supported: bool | None = None) -> dict[str, bool]:
    """The SFTConfig arguments for training on ``device`` ("cpu" or "cuda").

    On the CPU: float32. Measured on a 2-core CPU, TRL's default bf16 makes a step
    ~100x slower (no bf16 matmul kernels). On a GPU: bf16 mixed precision where the
    GPU has it (``bf16_supported`` None asks torch), else fp16.
    """
    if device == "cpu":
        return {"use_cpu": True, "bf16": False, "fp16": False}
    if device != "cuda":
        raise ValueError(f"LoRATrainer: device must be 'cpu' or 'cuda', got {device!r}")
    if bf16_supported is None:
        import torch

        bf16_supported = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return {"use_cpu": False, "bf16": bf16_supported, "fp16": not bf16_supported}


def trainer_actor_name(base_model: str) -> str:
    """The Ray name of the LoRATrainer actor shared by all learners of ``base_model``."""
    return "classroom-lora-trainer-" + hashlib.sha1(base_model.encode()).hexdigest()[:10]


def sent(adapter_path: str | None) -> AdapterFiles | None:
    """An adapter folder of this node as the files the trainer actor (on any node) gets."""
    return None if adapter_path is None else pack_adapter(adapter_path)


def received(result: dict[str, Any], out_dir: str) -> dict[str, Any]:
    """The trainer's figures, its adapter's files written into ``out_dir`` here (the
    caller's node), which becomes ``adapter_path``."""
    figures = dict(result)
    figures["adapter_path"] = write_adapter(figures.pop("adapter_files"), out_dir)
    return figures


class LoRAFitting:
    """LoRA settings and the shared trainer actor, common to the SFT and DPO learners.

    ``base_model`` is the model the adapters are for: the one that serves the role the
    learner trains (``embedded``, a local folder, a hub id); a loop passes its role's
    model (:func:`classroom.environments.base.role_learner`), never a default. The
    trainer actor (one per base model, named) keeps the base model loaded between fits;
    a GPU for it (``trainer_num_gpus``) makes it train on CUDA in bf16.
    """

    def __init__(
        self,
        base_model: str,
        r: int = 8,
        alpha: int = 16,
        dropout: float = 0.0,
        target_modules: Sequence[str] = DEFAULT_TARGET_MODULES,
        epochs: int = 2,
        learning_rate: float = 1e-3,
        batch_size: int = 8,
        max_length: int = 256,
        seed: int = 0,
        trainer_num_cpus: float = 0,
        trainer_num_gpus: float = 0,
    ):
        self._check(
            ("base_model", base_model, isinstance(base_model, str) and bool(base_model), "the model the learner trains"),
            ("r", r, isinstance(r, int) and r >= 1, ">= 1"),
            ("alpha", alpha, alpha > 0, "> 0"),
            ("dropout", dropout, 0.0 <= dropout < 1.0, "in [0, 1)"),
            ("epochs", epochs, isinstance(epochs, int) and epochs >= 1, ">= 1"),
            ("learning_rate", learning_rate, learning_rate > 0, "> 0"),
            ("batch_size", batch_size, isinstance(batch_size, int) and batch_size >= 1, ">= 1"),
            ("max_length", max_length, isinstance(max_length, int) and max_length >= 16, ">= 16"),
            ("trainer_num_cpus", trainer_num_cpus, trainer_num_cpus >= 0, ">= 0"),
            ("trainer_num_gpus", trainer_num_gpus, trainer_num_gpus >= 0, ">= 0"),
            (
                "target_modules",
                target_modules,
                bool(target_modules) and not isinstance(target_modules, str),
                "a non-empty list of module names",
            ),
        )
        self.base_model = base_model
        self.r = r
        self.alpha = alpha
        self.dropout = dropout
        self.target_modules = tuple(target_modules)
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_length = max_length
        self.seed = seed
        self.trainer_num_cpus = trainer_num_cpus
        # A GPU for the trainer actor makes it train on CUDA; none trains on the CPU.
        self.trainer_num_gpus = trainer_num_gpus
        self._trainer_handle: Any = None

    def _check(self, *checks: tuple[str, Any, bool, str]) -> None:
        for key, value, ok, expected in checks:
            if not ok:
                raise ValueError(f"{type(self).__name__}: {key} must be {expected}, got {value!r}")

    def __getstate__(self) -> dict[str, Any]:
        # The learner travels into actors; a handle made here would tie the trainer
        # actor's lifetime to this copy.
        return {**self.__dict__, "_trainer_handle": None}

    def settings(self) -> dict[str, Any]:
        """The training settings sent to :class:`LoRATrainer`."""
        return {
            "r": self.r,
            "alpha": self.alpha,
            "dropout": self.dropout,
            "target_modules": list(self.target_modules),
            "epochs": self.epochs,
            "learning_rate": self.learning_rate,
            "batch_size": self.batch_size,
            "max_length": self.max_length,
            "seed": self.seed,
            "device": "cuda" if self.trainer_num_gpus > 0 else "cpu",
        }

    def trainer_options(self) -> dict[str, Any]:
        """The Ray options of the shared trainer actor (one per base model)."""
        return {
            "name": trainer_actor_name(self.base_model),
            "get_if_exists": True,
            "num_cpus": self.trainer_num_cpus,
            "num_gpus": self.trainer_num_gpus,
        }

    def _trainer(self) -> Any:
        # Kept while this learner lives: Ray ends a (non-detached) named actor once no
        # handle to it is left, and reloading the model costs seconds every fit.
        if self._trainer_handle is None:
            import ray

            self._trainer_handle = ray.remote(LoRATrainer).options(**self.trainer_options()).remote(self.base_model)
        return self._trainer_handle


class LoRALearner(LoRAFitting):
    """A student that learns by LoRA supervised fine-tuning on the teacher's examples.

    It keeps no demonstrations: what it learns lives in its adapter, whose files it
    keeps (the last one) to continue from and hands back (``learn``; ``fit`` writes them
    into a folder of the caller's node).
    ``mode="accumulated"`` trains a fresh adapter on all examples each time (as in
    DataEnvGym); ``mode="incremental"`` continues the previous adapter on the new
    examples only, cheaper on CPUs. Settings: see :class:`LoRAFitting`.
    """

    def __init__(self, *, mode: LearnMode = "accumulated", **settings: Any):
        super().__init__(**settings)
        self._check(("mode", mode, mode in MODES, f"one of {', '.join(MODES)}"))
        self.mode: LearnMode = mode
        # Examples already in the last adapter, and that adapter's files.
        self.trained = 0
        self.adapter: AdapterFiles | None = None

    def demonstrations(self, problem: Problem) -> list[tuple[Problem, Explanation]]:
        """None: what this learner learns lives in its adapter."""
        return []

    async def learn(self, examples: Sequence[TrainingExample], rows: Sequence[dict]) -> LearnOutcome:
        """Train on the rows (as :meth:`fit`); the new adapter's files are to be served."""
        result = await self._fit_files(rows)
        return LearnOutcome(
            examples=int(result["examples"]),
            adapter=result["adapter_files"],
            train_loss=result["train_loss"],
            epochs=result["epochs"],
        )

    async def fit(self, examples: Sequence[dict], out_dir: str) -> dict[str, Any]:
        """Train on ``examples`` (all so far, oldest first); the adapter goes to ``out_dir``,
        a folder of this process's node.

        Returns the trainer's figures (train_loss, seconds, steps, examples,
        adapter_path) plus ``mode`` and ``epochs``.
        """
        return received(await self._fit_files(examples), os.path.abspath(out_dir))

    async def _fit_files(self, examples: Sequence[dict]) -> dict[str, Any]:
        """:meth:`fit`, the adapter as files (``adapter_files``), written nowhere."""
        if not examples:
            raise ValueError("LoRALearner.fit: no examples to train on")
        init_adapter = None
        batch = list(examples)
        if self.mode == "incremental":
            if len(examples) < self.trained:
                raise ValueError(
                    f"LoRALearner.fit: got {len(examples)} examples but {self.trained} were trained already "
                    "(incremental mode expects all examples so far, oldest first)"
                )
            batch = list(examples[self.trained :])
            if not batch:
                raise ValueError(f"LoRALearner.fit: no examples to train on beyond the {self.trained} trained already")
            init_adapter = self.adapter
        result = await self._trainer().train.remote(batch, settings=self.settings(), init_adapter=init_adapter)
        self.trained = len(examples)
        self.adapter = result["adapter_files"]
        return {**result, "mode": self.mode, "epochs": self.epochs}

    def state(self) -> dict[str, Any]:
        """What a resumed episode needs to continue training where this one stopped,
        but the adapter: its files are kept where the run is (the student's caller writes
        them into the run directory), and handed back to :meth:`restore`."""
        return {"mode": self.mode, "trained": self.trained}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue from a :meth:`state` of an earlier learner, plus its last adapter:
        ``adapter`` (its files) or ``adapter_path`` (a folder of this node; checkpoints
        written before adapters travelled as files name one)."""
        trained = int(state.get("trained", 0))
        if trained < 0:
            raise ValueError(f"LoRALearner.restore: trained must be >= 0, got {trained}")
        adapter = state.get("adapter")
        if adapter is None and state.get("adapter_path") is not None:
            try:
                adapter = pack_adapter(state["adapter_path"])
            except (OSError, ValueError) as exc:
                raise ValueError(f"LoRALearner.restore: {exc}") from None
        if trained and adapter is None:
            raise ValueError(f"LoRALearner.restore: trained={trained} but no adapter to continue")
        self.trained = trained
        self.adapter = adapter


class DPOLearner(LoRAFitting):
    """Direct preference optimization of a LoRA adapter (TRL's DPOTrainer, peft).

    Rows are TRL's preference format, conversational: ``{"prompt": [messages],
    "chosen": [assistant message], "rejected": [assistant message]}``. ``beta`` is DPO's
    temperature (the paper's 0.1); ``nll_weight`` > 0 adds an NLL term on the chosen
    completions (LbT's M2). The adapter is hot-loaded into the running engine by whoever
    serves the model it trains. Settings as :class:`LoRAFitting` (one epoch, lr 5e-4 by
    default: preference data is small and a 135M model moves fast). Batches hold two
    rows by default: TRL keeps chosen and rejected logits over the whole vocabulary
    (and again for the reference pass), so on the embedded model 8 rows of ~300 tokens
    peaked at 12 GB and 2 rows at 4.4 GB, in the same time.
    """

    def __init__(
        self,
        *,
        beta: float = 0.1,
        nll_weight: float = 0.0,
        epochs: int = 1,
        learning_rate: float = 5e-4,
        batch_size: int = 2,
        **settings: Any,
    ):
        super().__init__(epochs=epochs, learning_rate=learning_rate, batch_size=batch_size, **settings)
        self._check(("beta", beta, beta > 0, "> 0"), ("nll_weight", nll_weight, nll_weight >= 0, ">= 0"))
        self.beta = beta
        self.nll_weight = nll_weight

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "beta": self.beta, "nll_weight": self.nll_weight}

    async def fit(self, rows: Sequence[dict], out_dir: str, *, init_adapter: str | None = None) -> dict[str, Any]:
        """Train an adapter on the preference rows into ``out_dir`` (continuing
        ``init_adapter`` if given); returns the trainer's figures."""
        if not rows:
            raise ValueError("DPOLearner.fit: no preference pairs to train on")
        out_dir = os.path.abspath(out_dir)
        rows = list(rows)
        result = await self._trainer().train_preferences.remote(rows, settings=self.settings(), init_adapter=sent(init_adapter))
        return received(result, out_dir)

    async def margins(self, rows: Sequence[dict], adapter_path: str | None = None) -> list[float]:
        """log p(chosen) - log p(rejected) per row, under the base or with ``adapter_path``."""
        return await self._trainer().preference_margins.remote(list(rows), sent(adapter_path))
