"""The consumer's rules with in-memory fakes: no broker, no database."""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncio

from schemas.contracts.identity import AccountDeleted
from services.kernel.consumer import EventConsumer, NoProcessedIds, TransientError
from services.kernel.envelope import CloudEvent, event_json, new_event
from services.kernel.kafka import IncomingMessage, OutgoingMessage


class FakeSubscription:
    def __init__(self, messages: list[IncomingMessage]) -> None:
        self.messages = messages
        self.commits: list[dict[tuple[str, int], int]] = []

    async def fetch(self, timeout_ms: int = 0) -> list[IncomingMessage]:
        batch, self.messages = self.messages, []
        return batch

    async def commit(self, next_offsets: dict[tuple[str, int], int]) -> None:
        self.commits.append(dict(next_offsets))


class FakeProcessed:
    def __init__(self) -> None:
        self.ids: set[str] = set()

    async def seen(self, group: str, event_ids: Sequence[str]) -> set[str]:
        return {i for i in event_ids if f"{group}:{i}" in self.ids}

    async def remember(self, group: str, event_ids: Sequence[str]) -> None:
        self.ids.update(f"{group}:{i}" for i in event_ids)


class FakePublisher:
    def __init__(self) -> None:
        self.sent: list[OutgoingMessage] = []

    async def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        self.sent.extend(messages)


async def no_sleep(_: float) -> None:
    return None


def message(offset: int, value: bytes, key: str = "a1") -> IncomingMessage:
    return IncomingMessage(topic="identity.account.v1", partition=0, offset=offset, key=key, value=value)


def deleted(account_id: str) -> bytes:
    return event_json(new_event(AccountDeleted(account_id=account_id, deleted_at=datetime.now(UTC)), source="/t", subject=account_id))


def make_consumer(
    messages: list[IncomingMessage], handler: Any | None, concurrency: int = 1
) -> tuple[EventConsumer, FakeSubscription, FakePublisher]:
    subscription = FakeSubscription(messages)
    dlq = FakePublisher()
    consumer = EventConsumer(
        group_id="g",
        subscription=subscription,
        handlers={AccountDeleted: handler} if handler else {},
        processed=FakeProcessed(),
        dead_letters=dlq,
        is_transient=lambda exc: isinstance(exc, ConnectionError),
        max_attempts=3,
        sleep=no_sleep,
        concurrency=concurrency,
    )
    return consumer, subscription, dlq


async def test_each_event_is_handled_once_even_when_delivered_twice() -> None:
    seen: list[str] = []

    async def handler(event: CloudEvent[Any]) -> None:
        seen.append(event.data.account_id)

    value = deleted("a1")
    consumer, subscription, _ = make_consumer([message(0, value), message(1, value)], handler)
    await consumer.consume_once()
    assert seen == ["a1"]
    assert subscription.commits == [{("identity.account.v1", 0): 2}]


async def test_a_malformed_message_goes_to_the_dead_letter_topic_and_later_ones_flow() -> None:
    seen: list[str] = []

    async def handler(event: CloudEvent[Any]) -> None:
        seen.append(event.data.account_id)

    consumer, subscription, dlq = make_consumer([message(0, b"garbage"), message(1, deleted("a2"))], handler)
    await consumer.consume_once()
    assert seen == ["a2"]
    assert [m.topic for m in dlq.sent] == ["identity.account.v1.dlq"]
    headers = dict(dlq.sent[0].headers)
    assert dlq.sent[0].value == b"garbage"
    assert headers["dlq.consumer_group"] == b"g"
    assert headers["dlq.original_offset"] == b"0"
    assert b"malformed" in headers["dlq.error"]
    assert subscription.commits[-1] == {("identity.account.v1", 0): 2}


async def test_a_handler_that_keeps_failing_is_dead_lettered_after_the_allowed_attempts() -> None:
    attempts = 0

    async def handler(event: CloudEvent[Any]) -> None:
        nonlocal attempts
        attempts += 1
        raise ValueError("adresse inconnue")

    consumer, _, dlq = make_consumer([message(0, deleted("a1"))], handler)
    await consumer.consume_once()
    assert attempts == 3
    assert b"ValueError: adresse inconnue" in dict(dlq.sent[0].headers)["dlq.error"]
    assert consumer.dead_lettered == 1


async def test_transient_failures_are_retried_until_they_pass_and_never_dead_lettered() -> None:
    attempts = 0

    async def handler(event: CloudEvent[Any]) -> None:
        nonlocal attempts
        attempts += 1
        if attempts < 6:
            raise TransientError("database down") if attempts % 2 else ConnectionError("kafka down")

    consumer, _, dlq = make_consumer([message(0, deleted("a1"))], handler)
    await consumer.consume_once()
    assert attempts == 6
    assert dlq.sent == []
    assert consumer.handled == 1


async def test_events_of_types_without_a_handler_are_skipped_and_committed() -> None:
    consumer, subscription, dlq = make_consumer([message(4, deleted("a1"))], None)
    await consumer.consume_once()
    assert dlq.sent == []
    assert subscription.commits == [{("identity.account.v1", 0): 5}]


class Overlap:
    """A handler that waits a little and records which handlers ran at once, and in what order."""

    def __init__(self) -> None:
        self.running = 0
        self.most_at_once = 0
        self.order: list[str] = []

    async def __call__(self, event: CloudEvent[Any]) -> None:
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        await asyncio.sleep(0.01)
        self.order.append(event.id)
        self.running -= 1


def interleaved(accounts: int, per_account: int) -> list[IncomingMessage]:
    """Events of several accounts mixed in one partition, as the broker delivers them."""
    values = [(f"acc{a}", deleted(f"acc{a}")) for _ in range(per_account) for a in range(accounts)]
    return [message(offset, value, key=key) for offset, (key, value) in enumerate(values)]


async def test_with_a_concurrency_keys_run_at_once_up_to_the_bound_and_each_keys_events_stay_in_order() -> None:
    messages = interleaved(accounts=6, per_account=3)
    handler = Overlap()
    consumer, subscription, _ = make_consumer(messages, handler, concurrency=4)
    assert await consumer.consume_once() == 18
    assert handler.most_at_once == 4
    ids_by_key: dict[str | None, list[str]] = {}
    for m in messages:
        ids_by_key.setdefault(m.key, []).append(CloudEvent[dict[str, Any]].model_validate_json(m.value).id)
    for key, ids in ids_by_key.items():
        assert [i for i in handler.order if i in ids] == ids, key
    assert consumer.handled == 18
    assert subscription.commits == [{("identity.account.v1", 0): 18}]


async def test_by_default_a_batch_is_handled_one_event_at_a_time_in_offset_order() -> None:
    messages = interleaved(accounts=3, per_account=2)
    handler = Overlap()
    consumer, _, _ = make_consumer(messages, handler)
    await consumer.consume_once()
    assert handler.most_at_once == 1
    assert handler.order == [CloudEvent[dict[str, Any]].model_validate_json(m.value).id for m in messages]


async def test_with_a_concurrency_a_failing_event_is_dead_lettered_and_the_other_keys_still_run() -> None:
    failing, fine = deleted("b"), deleted("c")
    handled: list[str] = []

    async def handler(event: CloudEvent[Any]) -> None:
        if event.subject == "b":
            raise ValueError("broken")
        handled.append(event.subject)

    messages = [message(0, failing, key="b"), message(1, fine, key="c"), message(2, fine, key="c")]
    consumer, subscription, dlq = make_consumer(messages, handler, concurrency=8)
    await consumer.consume_once()
    assert handled == ["c"]  # the duplicate in the same batch is skipped too
    assert [m.value for m in dlq.sent] == [failing]
    assert subscription.commits == [{("identity.account.v1", 0): 3}]


async def test_a_group_with_idempotent_handlers_keeps_no_processed_ids_and_runs_a_redelivery_again() -> None:
    seen: list[str] = []

    async def handler(event: CloudEvent[Any]) -> None:
        seen.append(event.data.account_id)

    value = deleted("a1")
    subscription = FakeSubscription([message(0, value)])
    consumer = EventConsumer(
        group_id="g", subscription=subscription, handlers={AccountDeleted: handler}, processed=NoProcessedIds(),
        dead_letters=FakePublisher(), is_transient=lambda exc: False, sleep=no_sleep,
    )
    await consumer.consume_once()
    subscription.messages = [message(1, value)]  # redelivered in a later batch
    await consumer.consume_once()
    assert seen == ["a1", "a1"]  # the handler's own idempotence makes the second one a no-op
    assert subscription.commits == [{("identity.account.v1", 0): 1}, {("identity.account.v1", 0): 2}]
