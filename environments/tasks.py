"""Tasks: the datasets the teaching loops teach, as lists of :class:`Problem` per split.

Loaders: :func:`gsm8k` and :func:`svamp` from local files, :func:`huggingface` from the
hub or a local folder (needs the optional ``datasets`` package), and
:func:`reasoning_gym` for procedurally generated problems with known skills.

Every problem has a stable id ``<task>-<split>-<index>`` (the index is the row's position
in its source), so reruns refer to the same problems. Malformed rows are skipped and
recorded one line each in :attr:`Task.skipped_rows`; they never stop a load. No question
is in two splits (or twice in one): every loader ends with
:meth:`Task.drop_duplicate_questions`, which keeps a test question and drops its copies
(recorded in :attr:`Task.duplicates`, which a run's summary counts).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import random
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from classroom.agents.grading import REASONING_GYM_KEY, Grader, reasoning_gym_dataset
from classroom.agents.messages import Problem

ARITHMETIC_SKILLS = ("addition", "subtraction", "multiplication", "division")

# Small, easy problems by default, so a 135M-parameter student has a chance.
REASONING_GYM_DEFAULTS: dict[str, dict[str, Any]] = {
    "basic_arithmetic": {
        "min_terms": 2,
        "max_terms": 3,
        "min_digits": 1,
        "max_digits": 1,
        "operators": ["+", "-", "*"],
        "allow_parentheses": False,
        "allow_negation": False,
    },
    "chain_sum": {"min_terms": 2, "max_terms": 3, "min_digits": 1, "max_digits": 1},
}

_CALCULATOR = re.compile(r"<<([^=>]*)=")
_THOUSANDS_COMMA = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
# A minus counts as subtraction only between operands, not as a negative sign.
_BINARY_MINUS = re.compile(r"[\d.)%]\s*-")


# SVAMP.json spells one Type "Common-Divison"; left alone it becomes a one-problem skill.
_SVAMP_TYPE_TYPOS = {"common-divison": "common-division"}


_GRADER = Grader()


@dataclass
class Task:
    """A named dataset of problems per split, with the scorer that grades its answers."""

    name: str
    problems: dict[str, list[Problem]]
    skipped_rows: list[str] = field(default_factory=list)
    # Problems dropped because an earlier one asks the same question, one line each.
    duplicates: list[str] = field(default_factory=list)

    def splits(self) -> list[str]:
        """The names of the splits this task holds."""
        return list(self.problems)

    def split(self, name: str) -> list[Problem]:
        """All problems of one split."""
        if name not in self.problems:
            raise ValueError(f"task {self.name!r} has no split {name!r}; available: {self.splits()}")
        return self.problems[name]

    def sample(self, n: int, *, split: str, seed: int, exclude: Iterable[str] = (), episode_id: str | None = None) -> list[Problem]:
        """``n`` problems drawn without replacement, the same ones for the same seed.

        Asking for more problems than the split holds returns all of them (shuffled).
        ``exclude`` names problem ids to leave out (another split's draw); with an
        ``episode_id`` the problems come back stamped as sent by the task in that episode.
        """
        excluded = set(exclude)
        problems = [p for p in self.split(split) if p.id not in excluded]
        drawn = random.Random(seed).sample(problems, min(max(n, 0), len(problems)))
        if episode_id is None:
            return drawn
        return [p.model_copy(update={"episode_id": episode_id, "sender": "task"}) for p in drawn]

    def score(self, problem: Problem, final_answer: str | None) -> bool:
        """Whether ``final_answer`` is correct for ``problem``.

        Reasoning-gym problems are scored by their dataset's own scorer (correct iff it
        gives 1.0); the others symbolically against the reference answer.
        """
        return _GRADER.score(problem, final_answer)

    def __len__(self) -> int:
        return sum(len(p) for p in self.problems.values())

    def drop_duplicate_questions(self) -> int:
        """Drop every problem whose question (as :func:`question_key` reads it) an earlier
        one already asks: test first, then the other held-out splits, then train, each in
        its order, so a held-out question stays where it is and its copies go. Each drop
        is recorded in :attr:`duplicates`; returns how many were dropped."""
        order = sorted(self.problems, key=lambda split: (split == "train", split != "test"))
        seen: dict[str, str] = {}
        dropped = 0
        for split in order:
            kept = []
            for problem in self.problems[split]:
                key = question_key(problem.question)
                if key in seen:
                    self.duplicates.append(f"{problem.id}: duplicate question (kept as {seen[key]})")
                    dropped += 1
                    continue
                seen[key] = problem.id
                kept.append(problem)
            self.problems[split] = kept
        return dropped


def question_key(question: str) -> str:
    """A question as two splits are compared: case, whitespace and thousands separators
    aside ("What is 1,000 + 2?" and "what is 1000 +  2?" are one question)."""
    return " ".join(_THOUSANDS_COMMA.sub("", question).casefold().split())


def subskill_seed(seed: int, *names: str) -> int:
    """The seed of one generator in a task: the run's seed and the generator's names
    (dataset, sub-skill) together, so no two generators share their random draws."""
    digest = hashlib.sha256("/".join([str(seed), *names]).encode()).digest()
    return int.from_bytes(digest[:4], "big")


# --------------------------------------------------------------------------------- helpers


def _strip_thousands(answer: str) -> str:
    return _THOUSANDS_COMMA.sub("", answer.strip())


def format_number(value: float) -> str:
    """A number as an answer string: ``51.0`` -> ``"51"``, ``2.5`` -> ``"2.5"``."""
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def arithmetic_skills(solution: str, default: tuple[str, ...] = ("arithmetic",)) -> tuple[str, ...]:
    """Operations a GSM8K solution uses, read from its ``<<16-3-4=9>>`` annotations."""
    used: set[str] = set()
    for expression in _CALCULATOR.findall(solution):
        if "+" in expression:
            used.add("addition")
        if _BINARY_MINUS.search(expression):
            used.add("subtraction")
        if "*" in expression:
            used.add("multiplication")
        if "/" in expression:
            used.add("division")
    skills = tuple(s for s in ARITHMETIC_SKILLS if s in used)
    return skills or default


def _answer_after(solution: str, marker: str) -> str | None:
    """What follows the last ``marker`` in a solution, thousands commas removed."""
    if marker not in solution:
        return None
    answer = _strip_thousands(solution.rsplit(marker, 1)[1])
    return answer or None


def _require_file(path: Path, expected: str) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found (expected {expected})")


def _read_jsonl(path: Path, skipped: list[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row index, row) for each JSON-object line; blank lines keep their index."""
    with path.open(encoding="utf-8") as handle:
        for index, line in enumerate(handle):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                skipped.append(f"{path}:{index + 1}: invalid JSON ({error.msg})")
                continue
            if not isinstance(row, dict):
                skipped.append(f"{path}:{index + 1}: not a JSON object")
                continue
            yield index, row


def _text_field(row: dict[str, Any], key: str) -> str | None:
    value = row.get(key)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value
    return None


def _take(rows: Iterable[Problem], limit: int | None) -> list[Problem]:
    problems: list[Problem] = []
    for problem in rows:
        if limit is not None and len(problems) >= limit:
            break
        problems.append(problem)
    return problems


# --------------------------------------------------------------------------------- loaders


def gsm8k(data_dir: str | Path, splits: Sequence[str] = ("train", "test"), limit: int | None = None) -> Task:
    """GSM8K from ``{data_dir}/{split}.jsonl`` (rows ``{"question", "answer"}``).

    The reference answer is what follows ``####``; skills are the arithmetic operations
    the solution's calculator annotations use. ``limit`` caps the problems per split.
    """
    task = Task(name="gsm8k", problems={})
    for split in splits:
        path = Path(data_dir) / f"{split}.jsonl"
        _require_file(path, f"GSM8K {split} split as JSONL rows with 'question' and 'answer'")

        def rows(path: Path = path, split: str = split) -> Iterator[Problem]:
            for index, row in _read_jsonl(path, task.skipped_rows):
                problem = _solution_row_problem(row, index, path, task, split, "question", "answer", "####", arithmetic=True)
                if problem is not None:
                    yield problem

        task.problems[split] = _take(rows(), limit)
    task.drop_duplicate_questions()
    return task


def _solution_row_problem(
    row: dict[str, Any],
    index: int,
    source: Path | str,
    task: Task,
    split: str,
    question_field: str,
    answer_field: str,
    answer_after: str | None,
    *,
    arithmetic: bool,
) -> Problem | None:
    """A Problem from a question/solution row, or None (recorded) if the row is malformed."""
    where = f"{source}:{index + 1}"
    question, solution = _text_field(row, question_field), _text_field(row, answer_field)
    if question is None or solution is None:
        missing = [k for k, v in ((question_field, question), (answer_field, solution)) if v is None]
        task.skipped_rows.append(f"{where}: missing or empty field(s) {missing}")
        return None
    if answer_after is None:
        answer: str | None = _strip_thousands(solution)
    else:
        answer = _answer_after(solution, answer_after)
    if not answer:
        task.skipped_rows.append(f"{where}: no answer after {answer_after!r} in {answer_field!r}")
        return None
    skills = arithmetic_skills(solution) if arithmetic else ()
    return Problem(
        id=f"{task.name}-{split}-{index}",
        question=question.strip(),
        answer=answer,
        skills=skills,
        task=task.name,
        split=split,
        metadata={"solution": solution, "source_index": index},
    )


def svamp(path: str | Path, test_fraction: float = 0.3, seed: int = 0, limit: int | None = None) -> Task:
    """SVAMP from its ``SVAMP.json`` list, split into train/test deterministically by seed.

    question = Body + " " + Question; the answer drops a trailing ``.0``; the skill is the
    problem's Type in lower case. ``limit`` caps the problems per split.
    """
    path = Path(path)
    _require_file(path, "SVAMP.json: a JSON list of {ID, Body, Question, Equation, Answer, Type}")
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error.msg}, line {error.lineno})") from None
    if not isinstance(rows, list):
        raise ValueError(f"{path}: expected a JSON list of problems, got {type(rows).__name__}")
    if not 0.0 <= test_fraction <= 1.0:
        raise ValueError(f"test_fraction must be within [0, 1], got {test_fraction}")

    task = Task(name="svamp", problems={})
    indices = list(range(len(rows)))
    random.Random(seed).shuffle(indices)
    n_test = round(len(rows) * test_fraction)
    split_of = {i: ("test" if rank < n_test else "train") for rank, i in enumerate(indices)}

    by_split: dict[str, list[Problem]] = {"train": [], "test": []}
    for index, row in enumerate(rows):
        problem = _svamp_problem(row, index, path, split_of[index], task)
        if problem is not None:
            by_split[problem.split].append(problem)
    task.problems = {split: _take(problems, limit) for split, problems in by_split.items()}
    task.drop_duplicate_questions()
    return task


def _svamp_problem(row: Any, index: int, path: Path, split: str, task: Task) -> Problem | None:
    where = f"{path}[{index}]"
    if not isinstance(row, dict):
        task.skipped_rows.append(f"{where}: not a JSON object")
        return None
    missing = [k for k in ("Body", "Question", "Answer") if k not in row]
    if missing:
        task.skipped_rows.append(f"{where}: missing field(s) {missing}")
        return None
    try:
        answer = format_number(float(row["Answer"]))
    except (TypeError, ValueError):
        task.skipped_rows.append(f"{where}: Answer {row['Answer']!r} is not a number")
        return None
    kind = str(row.get("Type") or "").strip().lower()
    kind = _SVAMP_TYPE_TYPOS.get(kind, kind)
    return Problem(
        id=f"svamp-{split}-{index}",
        question=f"{str(row['Body']).strip()} {str(row['Question']).strip()}",
        answer=answer,
        skills=(kind,) if kind else (),
        task="svamp",
        split=split,
        metadata={"source_id": row.get("ID"), "equation": row.get("Equation"), "source_index": index},
    )


def huggingface(
    dataset_id: str,
    *,
    splits: Sequence[str] = ("train", "test"),
    question_field: str = "question",
    answer_field: str = "answer",
    answer_after: str | None = "####",
    name: str | None = None,
    limit: int | None = None,
    subset: str | None = None,
) -> Task:
    """A task from ``datasets.load_dataset``: a hub id (``subset`` is its config name,
    e.g. ``"main"`` for ``openai/gsm8k``) or a local folder of ``{split}.jsonl`` files.

    The reference answer is what follows ``answer_after`` in ``answer_field`` (the whole
    field when None). GSM8K-style rows (``answer_after="####"``) get arithmetic skills.
    """
    try:
        import datasets
    except ImportError:
        raise ImportError("the huggingface task loader needs the `datasets` package: pip install datasets") from None

    local = Path(dataset_id).expanduser()
    looks_local = dataset_id.startswith((".", "/", "~")) or local.exists()
    if looks_local and not local.exists():
        raise FileNotFoundError(f"{local}: not found (expected a dataset folder or file)")
    task_name = name or (local.name if looks_local else dataset_id.rsplit("/", 1)[-1]).lower()
    task = Task(name=task_name, problems={})
    for split in splits:
        data = datasets.load_dataset(str(local) if looks_local else dataset_id, subset, split=split)

        def rows(data: Any = data, split: str = split) -> Iterator[Problem]:
            for index, row in enumerate(data):
                problem = _solution_row_problem(
                    row,
                    index,
                    f"{dataset_id}[{split}]",
                    task,
                    split,
                    question_field,
                    answer_field,
                    answer_after,
                    arithmetic=answer_after == "####",
                )
                if problem is not None:
                    yield problem

        task.problems[split] = _take(rows(), limit)
    task.drop_duplicate_questions()
    return task


def reasoning_gym(
    datasets: list[str] | Sequence[str] = ("basic_arithmetic", "chain_sum"),
    size: int = 60,
    seed: int = 0,
    test_fraction: float = 0.5,
    config: dict[str, dict[str, Any]] | None = None,
    name: str = "reasoning_gym",
) -> Task:
    """Procedurally generated problems from reasoning-gym, ``size`` per dataset (the
    task called ``name``).

    Each dataset's entries are split into train/test by ``seed``; the skill of a problem
    is its dataset's name. ``config`` maps a dataset name to ``create_dataset`` keyword
    arguments, laid over :data:`REASONING_GYM_DEFAULTS` (small, easy problems).
    """
    from reasoning_gym.factory import DATASETS

    if not 0.0 <= test_fraction <= 1.0:
        raise ValueError(f"test_fraction must be within [0, 1], got {test_fraction}")
    config = config or {}
    for dataset_name in list(datasets) + list(config):
        if dataset_name not in DATASETS:
            close = difflib.get_close_matches(dataset_name, list(DATASETS), n=3)
            hint = f"; did you mean {close}?" if close else ""
            raise ValueError(f"unknown reasoning-gym dataset {dataset_name!r}{hint}")

    task = Task(name=name, problems={"train": [], "test": []})
    for dataset_name in datasets:
        # JSON round trip: what the problem carries must rebuild the very same dataset
        # after the event log has turned tuples into lists.
        kwargs = json.loads(
            json.dumps(
                {
                    **REASONING_GYM_DEFAULTS.get(dataset_name, {}),
                    **config.get(dataset_name, {}),
                    "size": size,
                    "seed": subskill_seed(seed, dataset_name),
                }
            )
        )
        dataset = reasoning_gym_dataset(dataset_name, kwargs)
        _add_generated(
            task,
            dataset,
            dataset_name,
            kwargs,
            id_part=dataset_name,
            skills=(dataset_name,),
            split_seed=subskill_seed(seed, dataset_name, "split"),
            test_fraction=test_fraction,
        )
    task.drop_duplicate_questions()
    return task


def _add_generated(
    task: Task,
    dataset: Any,
    dataset_name: str,
    kwargs: dict[str, Any],
    *,
    id_part: str,
    skills: tuple[str, ...],
    split_seed: int,
    test_fraction: float,
) -> None:
    """Split a made reasoning-gym dataset into the task's train/test problems.

    Ids are ``{task}-{split}-{id_part}-{index}``, stable across loads.
    """
    size = kwargs["size"]
    test_indices = set(random.Random(split_seed).sample(range(size), round(size * test_fraction)))
    for index in range(size):
        entry = dataset[index]
        split = "test" if index in test_indices else "train"
        task.problems[split].append(
            Problem(
                id=f"{task.name}-{split}-{id_part}-{index}",
                question=entry["question"],
                answer=str(entry["answer"]),
                skills=skills,
                task=task.name,
                split=split,
                metadata={REASONING_GYM_KEY: {"dataset": dataset_name, "config": kwargs, "entry": entry}},
            )
        )


def reasoning_gym_skills(
    skills: Mapping[str, Mapping[str, Mapping[str, Any]]],
    size: int = 20,
    seed: int = 0,
    test_fraction: float = 0.5,
    name: str = "reasoning_gym_skills",
) -> Task:
    """Reasoning-gym problems over a skill tree: skill = generator, sub-skill = settings.

    ``skills`` maps a reasoning-gym dataset to named sub-skills, each a dict of
    ``create_dataset`` keyword arguments (e.g. ``chain_sum: {two_terms: {min_terms: 2,
    max_terms: 2}}``); ``size`` problems are made per sub-skill. A problem's skills
    are ``(dataset, "dataset/sub-skill")``, so reports can slice by both levels.
    """
    from reasoning_gym.factory import DATASETS

    if not skills:
        raise ValueError("skills is empty: name at least one reasoning-gym dataset with one sub-skill")
    if not 0.0 <= test_fraction <= 1.0:
        raise ValueError(f"test_fraction must be within [0, 1], got {test_fraction}")
    task = Task(name=name, problems={"train": [], "test": []})
    for dataset_name, subskills in skills.items():
        if dataset_name not in DATASETS:
            close = difflib.get_close_matches(dataset_name, list(DATASETS), n=3)
            raise ValueError(f"unknown reasoning-gym dataset {dataset_name!r}" + (f"; did you mean {close}?" if close else ""))
        if not subskills:
            raise ValueError(f"skills.{dataset_name}: needs at least one named sub-skill")
        for sub, settings in subskills.items():
            if "/" in sub:
                raise ValueError(f"skills.{dataset_name}.{sub}: sub-skill names may not contain '/'")
            kwargs = json.loads(json.dumps({**dict(settings or {}), "size": size, "seed": subskill_seed(seed, dataset_name, sub)}))
            try:
                dataset = reasoning_gym_dataset(dataset_name, kwargs)
            except Exception as exc:
                raise ValueError(f"skills.{dataset_name}.{sub}: reasoning-gym rejected {dict(settings or {})}: {exc}") from None
            _add_generated(
                task,
                dataset,
                dataset_name,
                kwargs,
                id_part=f"{dataset_name}-{sub}",
                skills=(dataset_name, f"{dataset_name}/{sub}"),
                split_seed=subskill_seed(seed, dataset_name, sub, "split"),
                test_fraction=test_fraction,
            )
    task.drop_duplicate_questions()
    return task
