"""Drafts written by an LLM through any OpenAI-compatible endpoint, in two stages.

Stage 1 asks for new questions (code: tasks with templates), one topic per request in turn,
with seed-bank questions as style examples and the questions already written on that topic to
steer away from. Stage 2 asks, per question, for the answers of the requested variant and its
correct counterpart, with seed-bank cases as few-shot examples.

Everything a request contains is fixed by the recipe, the seed and earlier replies, never by
timing, so the same command sends the same requests and an interrupted build resumes from the
response cache. Question request ``k`` is shown the questions of requests up to
``k - QUESTION_LAG`` only, which lets ``QUESTION_LAG`` of them run at once. Drafts are yielded
in question order. The pipeline reports how many drafts it has accepted (:meth:`accepted`), so
the source asks for as many answers as are still needed and no more.

With ``--judge`` each usable answer is scored by a second model before it is yielded
(:mod:`emgen.generators.llm.judge`). With ``--max-cost`` a budget stops the run before it could be
exceeded; the drafts already answered are still yielded. With ``--batch`` the requests wait until
nothing else can progress and then go out together through the Batch API (:mod:`emgen.llm.batch`);
question requests are then all independent (no "already written" lists), and answers are asked
for all at once, so a build takes a few batches rather than one per step.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import signal
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from emgen.checks import Problem
from emgen.errors import ConflictError
from emgen.generators.base import Domain, Draft
from emgen.generators.llm import judge, prompts
from emgen.generators.llm.examples import Examples, pick
from emgen.generators.llm.kinds import kind_for
from emgen.generators.llm.prompts import Topic
from emgen.generators.llm.traffic import Traffic, settings_for
from emgen.llm.batch import STATE_FILE
from emgen.llm.budget import Budget, BudgetExceeded
from emgen.llm.client import ChatRequest, ClientSettings, Reply, api_key
from emgen.llm.prices import price_for, require_price
from emgen.llm.stats import LLMStats
from emgen.recipe import Recipe
from emgen.text import normalize, pair_id_for

QUESTIONS_PER_REQUEST = 10
QUESTION_LAG = 32
BATCH_SETTLE_STEPS = 10_000
AVOID_SHOWN = 25
QUESTION_EXAMPLES = 4
ANSWER_EXAMPLES = 2
WINDOW_PER_SLOT = 2
DEFAULT_TEMPERATURE = 1.0
STATUS_INTERVAL = 0.25

Status = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Question:
    topic: Topic
    prompt: str
    gist: str


class LLMSource:
    """A :class:`~emgen.generators.base.DraftSource` backed by an LLM (``--backend openai``)."""

    def __init__(self, domain: Domain, recipe: Recipe, *, status: Status | None = None) -> None:
        if recipe.n is None:
            raise ConflictError("--backend openai needs --n (how many rows to generate)")
        self.domain = domain
        self.kind = kind_for(domain)
        self.variant = recipe.variant
        self.target = recipe.n
        self.max_drafts = 3 * recipe.n + 20
        self.settings = settings_for(recipe)
        api_key(self.settings)
        self.temperature = recipe.temperature if recipe.temperature is not None else DEFAULT_TEMPERATURE
        self.max_tokens = recipe.max_tokens
        self.max_cost = recipe.max_cost
        self.price = price_for(self.settings.model, recipe.prices_file)
        if recipe.max_cost is not None:
            self.price = require_price(self.settings.model, recipe.prices_file)
            if recipe.max_tokens is None and self.price.max_output_tokens is None:
                raise ConflictError(
                    f"--max-cost needs --max-tokens for model {self.settings.model!r} "
                    "(its output limit is not in the prices file)"
                )
        self.budget: Budget | None = None
        self.batch = recipe.batch
        self.out_dir = recipe.output_dir()
        self.resume_files = (STATE_FILE,) if recipe.batch else ()
        self.batch_report: dict[str, Any] | None = None
        self.judge_settings: ClientSettings | None = None
        self.judge_price = None
        self.thresholds = judge.Thresholds.from_recipe(recipe)
        if recipe.judge is not None:
            judge.check_prompts()
            self.judge_settings = dataclasses.replace(self.settings, model=recipe.judge)
            self.judge_price = price_for(recipe.judge, recipe.prices_file)
            if recipe.max_cost is not None:
                self.judge_price = require_price(recipe.judge, recipe.prices_file)
        self.judge_stats = LLMStats()
        self.judged = {"judged": 0, "rejected": 0}
        self.seed = recipe.seed
        self.status = status
        self.topics = prompts.topics(domain.name)
        self.personas = prompts.personas(domain.name)
        for stage in prompts.STAGES:
            prompts.stage_prompt(domain.name, stage)
        self.stats = LLMStats()
        self.questions = {"requests": 0, "kept": 0, "duplicates": 0, "unusable_replies": 0}
        self._accepted: int | None = None
        self._examples: Examples | None = None

    def available(self) -> int:
        """The most drafts one build may ask for: enough for many rejections, bounded against a model that only refuses."""
        return self.max_drafts

    def accepted(self, count: int) -> None:
        """Told by the pipeline after each accepted draft."""
        self._accepted = count

    def drafts(self, rng: random.Random, n: int | None) -> Iterator[Draft]:
        """Drafts in question order, written as they are needed; the loop runs inside this generator."""
        self._accepted = None
        self.questions = dict.fromkeys(self.questions, 0)
        run = _Run(self, rng.getrandbits(63), n)
        loop = asyncio.new_event_loop()
        try:
            with _interrupts_stop(loop, run):
                loop.run_until_complete(run.open())
                while (draft := loop.run_until_complete(run.next())) is not None:
                    yield draft
                    if run.interrupted:
                        break
                if run.interrupted:
                    raise KeyboardInterrupt
        finally:
            try:
                loop.run_until_complete(run.close())
            finally:
                loop.close()

    def report(self) -> dict[str, Any]:
        """The manifest's ``llm`` section: settings that shaped the data, and the run's traffic."""
        return {
            "model": self.settings.model,
            "endpoint": self.settings.endpoint,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
            "concurrency": self.settings.concurrency,
            "rpm": self.settings.rpm,
            "tpm": self.settings.tpm,
            "cache": self.settings.cache,
            **self.stats.manifest(),
            "price": self.price.describe() if self.price is not None else None,
            "budget": self.budget.report() if self.budget is not None else None,
            "questions": dict(self.questions),
            "judge": self._judge_report(),
            "batch": self.batch_report or ({"batches": [], "resumed": []} if self.batch else None),
        }

    def _judge_report(self) -> dict[str, Any] | None:
        if self.judge_settings is None:
            return None
        return {
            "model": self.judge_settings.model,
            "thresholds": dataclasses.asdict(self.thresholds),
            **self.judged,
            **self.judge_stats.manifest(),
            "price": self.judge_price.describe() if self.judge_price is not None else None,
        }

    def examples(self) -> Examples:
        if self._examples is None:
            self._examples = Examples.gather(self.domain, self.kind, self.variant, self.topics, self.seed)
        return self._examples


@contextmanager
def _interrupts_stop(loop: asyncio.AbstractEventLoop, run: _Run) -> Iterator[None]:
    """Ctrl-C stops the run between steps (requests cancelled, replies so far cached), not mid-callback.

    A second Ctrl-C interrupts at once. Outside the main thread signals cannot be caught; the
    default behaviour stays.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(signum: int, frame: Any) -> None:
        if run.interrupted:
            raise KeyboardInterrupt
        run.interrupted = True
        loop.call_soon_threadsafe(run.stop)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class _Run:
    """The state of one ``drafts()`` call, driven by its event loop."""

    def __init__(self, source: LLMSource, base: int, limit: int | None) -> None:
        self.source = source
        self.base = base
        self.limit = limit
        self.target = source.target
        self.traffic = Traffic(source, base)
        self.client = self.traffic.client
        self.judge = self.traffic.judge
        source.budget = self.traffic.budget
        source.stats = self.client.stats
        if self.judge is not None:
            source.judge_stats = self.judge.stats
            source.judged = dict.fromkeys(source.judged, 0)
        self.budget_stopped = False
        self.flushing: asyncio.Future[None] | None = None
        self.window = WINDOW_PER_SLOT * source.settings.concurrency
        self.question_lag = QUESTION_LAG
        self.max_questions = 2 * -(-source.max_drafts // QUESTIONS_PER_REQUEST) + len(source.topics)
        if source.batch:
            self.window = source.max_drafts
            self.question_lag = self.max_questions
        self.questions: list[Question] = []
        self.seen: set[str] = set()
        self.written: dict[str, list[tuple[int, str]]] = {}
        self.batches: dict[int, list[tuple[str, str]]] = {}
        self.merged = 0
        self.q_issued = 0
        self.q_running = 0
        self.a_issued = 0
        self.a_done = 0
        self.done: dict[int, Draft] = {}
        self.ok_in_hand = 0
        self.yielded = 0
        self.yielded_ok = 0
        self.unjudged = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self.error: BaseException | None = None
        self.interrupted = False
        self.wake: asyncio.Event | None = None
        self.last_status = 0.0

    async def open(self) -> None:
        self.wake = asyncio.Event()
        await self.traffic.open(lambda: self._report_status(force=True))

    def stop(self) -> None:
        """Cancel every request in flight (after Ctrl-C); ``next`` then returns None."""
        for task in list(self.tasks):
            task.cancel()
        if self.flushing is not None:
            self.flushing.cancel()
        if self.wake is not None:
            self.wake.set()

    async def close(self) -> None:
        current = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks() if t is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await self.traffic.close()
        self._report_status(force=True)

    async def next(self) -> Draft | None:
        """The next draft in question order, or None when no more are needed or possible."""
        assert self.wake is not None
        self.unjudged = 0
        while True:
            if self.interrupted:
                return None
            if self.error is not None:
                raise self.error
            if self.limit is not None and self.yielded >= self.limit:
                return None
            accepted = self.source._accepted
            if accepted is not None and accepted >= self.target:
                return None
            if accepted is None and self.yielded_ok >= self.target:
                self.target += 1
            if self.budget_stopped and not self.tasks and self.done and self.yielded not in self.done:
                self.yielded = min(self.done)
            if self.yielded in self.done:
                draft = self.done.pop(self.yielded)
                self.yielded += 1
                if _usable(draft):
                    self.ok_in_hand -= 1
                    self.yielded_ok += 1
                    self.unjudged = 1
                self._report_status()
                return draft
            self.pump()
            if not self.tasks:
                return None
            self.wake.clear()
            if self.traffic.batchers():
                await self._batch_step()
            else:
                await self.wake.wait()
            self._report_status()

    async def _batch_step(self) -> None:
        """Batch mode: once every running request waits, send the waiting ones as batches and collect them."""
        assert self.wake is not None
        for _ in range(BATCH_SETTLE_STEPS):
            if self.traffic.blocked(len(self.tasks)):
                break
            await asyncio.sleep(0)
        else:
            await self.wake.wait()
            return
        self.flushing = asyncio.ensure_future(self.traffic.flush())
        try:
            await self.flushing
        except asyncio.CancelledError:
            if not self.interrupted:
                raise
        finally:
            self.flushing = None
            self.source.batch_report = self.traffic.batch_report()
        await asyncio.sleep(0)

    def need(self) -> int:
        """Answers still to be asked for: the target less drafts accepted (or usable and yielded), the one the
        pipeline is judging, and those usable in hand."""
        if self.source._accepted is None:
            return self.target - self.yielded_ok - self.ok_in_hand
        return self.target - self.source._accepted - self.unjudged - self.ok_in_hand

    def pump(self) -> None:
        """Start the answer and question requests that are needed now and allowed to run."""
        if self.error is not None or self.budget_stopped:
            return
        need = self.need()
        cap = self.source.max_drafts if self.limit is None else min(self.limit, self.source.max_drafts)
        while self.a_issued - self.a_done < min(need, self.window) and self.a_issued < min(len(self.questions), cap):
            self._spawn(self._answer(self.a_issued))
            self.a_issued += 1
        outstanding = self.a_issued - self.a_done
        unmerged = sum(len(turns) for turns in self.batches.values())
        missing = min(need - outstanding, self.window) - (len(self.questions) - self.a_issued) - unmerged
        while (
            missing > QUESTIONS_PER_REQUEST * self.q_running
            and self.a_issued < cap
            and self.q_issued < self.max_questions
            and self.q_issued - self.question_lag < self.merged
        ):
            self.q_running += 1
            self._spawn(self._questions(self.q_issued))
            self.q_issued += 1

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        failure = None if task.cancelled() else task.exception()
        if isinstance(failure, BudgetExceeded):
            self.budget_stopped = True
        elif failure is not None and self.error is None:
            self.error = failure
        assert self.wake is not None
        self.wake.set()

    async def _questions(self, k: int) -> None:
        try:
            reply = await self.client.complete(self.question_request(k))
            self.source.questions["requests"] += 1
            turns = []
            if reply.data is not None:
                turns = self.source.kind.user_turns(reply.data, random.Random(f"{self.base}:turns:{k}"))
            if not turns:
                self.source.questions["unusable_replies"] += 1
            self.batches[k] = turns
            while self.merged in self.batches:
                self._merge(self.merged)
                self.merged += 1
        finally:
            self.q_running -= 1
        self.pump()

    def _topic(self, k: int) -> Topic:
        return self.source.topics[k % len(self.source.topics)]

    def _merge(self, k: int) -> None:
        topic = self._topic(k)
        for turn, gist in self.batches.pop(k):
            key = normalize(turn)
            if key in self.seen:
                self.source.questions["duplicates"] += 1
                continue
            self.seen.add(key)
            self.questions.append(Question(topic, turn, gist))
            self.written.setdefault(topic.tag, []).append((k, gist))
            self.source.questions["kept"] += 1

    async def _answer(self, i: int) -> None:
        question = self.questions[i]
        reply = await self.client.complete(self.answer_request(i, question))
        draft = self.draft(question, reply)
        if self.judge is not None and _usable(draft):
            draft = await self._judged(draft)
        self.done[i] = draft
        self.a_done += 1
        if _usable(draft):
            self.ok_in_hand += 1
        self.pump()

    async def _judged(self, draft: Draft) -> Draft:
        assert self.judge is not None
        source = self.source
        verdict = await self.judge.complete(judge.request(source.domain, draft, source.variant, source.seed))
        judged = judge.apply(draft, source.variant, verdict, source.thresholds, self.judge.settings.model)
        source.judged["judged"] += 1
        source.judged["rejected"] += 0 if _usable(judged) else 1
        return judged

    def question_request(self, k: int) -> ChatRequest:
        source = self.source
        topic = self._topic(k)
        rng = random.Random(f"{self.base}:questions:{k}")
        examples = source.examples()
        chosen = pick(rng, examples.questions_by_topic[topic.tag], len(examples.questions), QUESTION_EXAMPLES)
        picked = [examples.questions[i].prompt for i in chosen]
        earlier = [gist for batch, gist in self.written.get(topic.tag, []) if batch <= k - self.question_lag]
        values = {
            "count": QUESTIONS_PER_REQUEST,
            "topic": topic.tag,
            "topic_about": topic.about,
            "persona": rng.choice(source.personas),
            "examples": _bullets(picked, "(none for this domain yet)"),
            "avoid": _bullets(earlier[-AVOID_SHOWN:], "(none yet)"),
        }
        name = source.domain.name
        messages = (
            ("system", prompts.fill(name, "questions", "system", values)),
            ("user", prompts.fill(name, "questions", "user", values)),
        )
        return self._request(messages, source.kind.questions_schema)

    def answer_request(self, i: int, question: Question) -> ChatRequest:
        source = self.source
        rng = random.Random(f"{self.base}:answers:{i}")
        examples = source.examples()
        chosen = pick(rng, examples.replies_by_topic[question.topic.tag], len(examples.replies), ANSWER_EXAMPLES)
        blocks = [f"Question:\n{examples.replies[j][0].prompt}\nReply:\n{examples.replies[j][1]}" for j in chosen]
        values = {
            "topic": question.topic.tag,
            "topic_about": question.topic.about,
            "examples": "\n\n".join(blocks) or "(none available)",
            "question": question.prompt,
        }
        name = source.domain.name
        task = prompts.fill(name, "answers", source.kind.task_key(source.variant), values)
        messages = (
            ("system", prompts.fill(name, "answers", "system", values | {"task": task})),
            ("user", prompts.fill(name, "answers", "user", values)),
        )
        return self._request(messages, source.kind.answers_schema(source.variant))

    def _request(self, messages: tuple[tuple[str, str], ...], schema: str) -> ChatRequest:
        source = self.source
        return ChatRequest(messages, schema, source.temperature, source.max_tokens, source.seed)

    def draft(self, question: Question, reply: Reply) -> Draft:
        source = self.source
        kind, variant, topic = source.kind, source.variant, question.topic
        problems: tuple[Problem, ...] = ()
        if reply.data is not None:
            answers = kind.answers(reply.data, variant, topic)
        else:
            answers = kind.stand_in(reply.text.strip() or "(empty reply)", variant, topic)
            if reply.problem == "refusal":
                problems = (Problem("refusal", reply.detail),)
            elif reply.problem == "invalid":
                problems = (Problem("invalid-reply", reply.detail),)
        return Draft(
            domain=source.domain.name,
            pair_id=pair_id_for(source.domain.name, question.prompt),
            topic=topic.tag,
            prompt=question.prompt,
            answers=answers,
            source=f"openai:{source.settings.model}",
            truncated=reply.problem == "truncated",
            problems=problems,
        )

    def _report_status(self, force: bool = False) -> None:
        if self.source.status is None:
            return
        now = time.monotonic()
        if not force and now - self.last_status < STATUS_INTERVAL:
            return
        self.last_status = now
        self.source.status(self.traffic.counters() | {"questions": len(self.questions)})


def _usable(draft: Draft) -> bool:
    return not draft.problems and not draft.truncated


def _bullets(items: list[str], empty: str) -> str:
    if not items:
        return empty
    return "\n".join("- " + item.strip().replace("\n", "\n  ") for item in items)
