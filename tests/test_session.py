"""ui.session: answers finished on their own thread, conversations kept per process."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from rag import Answer, InputError
from ui.session import UNEXPECTED, BackgroundAnswer, Conversations


class Scripted:
    """A stand-in for rag.query_stream's result: deltas released one at a time by the test."""

    def __init__(self, deltas: list[str], fail: BaseException | None = None) -> None:
        self.deltas = deltas
        self.fail = fail
        self.release = threading.Semaphore(0)

    def __iter__(self) -> Iterator[str]:
        for delta in self.deltas:
            self.release.acquire()
            yield delta
        if self.fail:
            raise self.fail

    @property
    def answer(self) -> Answer:
        return Answer(text="".join(self.deltas))


def test_follow_streams_everything_in_order_while_it_arrives() -> None:
    stream = Scripted(["One. ", "Two [1]. ", "Three."])
    job = BackgroundAnswer(lambda: stream)
    follow = job.follow()
    stream.release.release()
    assert next(follow) == "One. "
    assert not job.done
    for _ in range(2):
        stream.release.release()
    assert list(follow) == ["Two [1]. ", "Three."]
    assert job.wait(10) and job.answer == Answer(text="One. Two [1]. Three.") and job.error is None
    assert list(job.follow()) == ["One. ", "Two [1]. ", "Three."]  # a later page follows from the start


def test_a_follower_that_stops_does_not_stop_the_answer() -> None:
    stream = Scripted(["a", "b", "c"])
    job = BackgroundAnswer(lambda: stream)
    stream.release.release()
    assert next(job.follow()) == "a"  # the page rerun abandons this follower
    for _ in range(2):
        stream.release.release()
    assert job.wait(10) and job.answer is not None and job.answer.text == "abc"


@pytest.mark.parametrize(
    ("fail", "message"),
    [(InputError("The question is empty."), "The question is empty."), (ZeroDivisionError("bug"), UNEXPECTED)],
)
def test_failures_become_a_message(fail: BaseException, message: str) -> None:
    stream = Scripted(["partial "], fail=fail)
    job = BackgroundAnswer(lambda: stream)
    stream.release.release()
    assert job.wait(10)
    assert job.answer is None and job.error == message  # partial text is never taken for an answer


def test_errors_raised_before_streaming_are_messages_too() -> None:
    def produce() -> Scripted:
        raise InputError("The question contains control characters.")

    job = BackgroundAnswer(produce)
    assert job.wait(10) and job.error == "The question contains control characters." and list(job.follow()) == []


def test_conversations_by_id_and_bounded() -> None:
    store = Conversations(limit=2)
    first_id, first = store.open(None)
    first.append({"role": "user", "content": "hi"})
    assert store.open(first_id) == (first_id, first) and store.open(first_id)[1] is first
    assert store.open("../../etc/passwd")[0] not in (first_id, "../../etc/passwd")  # a new one; evicts nothing yet
    store.open(first_id)  # recently used: kept
    other_id, _ = store.open("unknown-but-well-formed-id")  # a new one, evicting the ../ one
    assert other_id not in (first_id, "unknown-but-well-formed-id")
    store.open(first_id)
    store.open(None)  # a third conversation evicts the least recently used (other_id)
    assert store.open(first_id)[1] is first
    assert store.open(other_id)[0] != other_id
    assert len(first_id) >= 20  # unguessable
