"""Ids: UUIDv7 text (Currents event ids) and object ids (braze ids)."""

from __future__ import annotations

import itertools
import os
import threading
import time
import uuid

from cohorthub.currents.envelope import custom_event
from cohorthub.identity.model import new_braze_id, new_braze_ids
from cohorthub.ids import uuid7


def test_a_uuid7_is_a_valid_version_7_uuid_with_the_time_in_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    text = uuid7()
    after = time.time_ns() // 1_000_000
    parsed = uuid.UUID(text)
    assert str(parsed) == text  # canonical: lowercase, hyphens at 8-4-4-4-12
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122
    assert before <= parsed.int >> 80 <= after


def test_uuid7s_are_unique_and_sort_by_time() -> None:
    ids = []
    for _ in range(3):
        ids += [uuid7() for _ in range(5_000)]
        time.sleep(0.002)
    assert len(set(ids)) == len(ids)
    stamps = [uuid.UUID(i).int >> 80 for i in ids]
    assert stamps == sorted(stamps)
    # the 74 other bits are random: every variant digit and many values of each random digit
    assert {i[19] for i in ids} == set("89ab")
    assert {i[15] for i in ids} == set("0123456789abcdef")


def test_currents_events_carry_uuid7_ids() -> None:
    event = custom_event(
        workspace_id="ws", user={"user_id": "b"}, name="played", time=1, custom_properties={}
    )
    assert uuid.UUID(event.id).version == 7


def test_uuid7s_drawn_in_many_threads_are_unique() -> None:
    seen: list[str] = []

    def draw() -> None:
        seen.extend(uuid7() for _ in range(600))  # crosses a refill of each thread's buffer

    threads = [threading.Thread(target=draw) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == len(seen) == 2_400


def test_braze_ids_are_object_ids_second_process_counter() -> None:
    one = new_braze_id(1_700_000_000.0)
    many = new_braze_ids(1_700_000_000, 5_000)  # one reservation for a whole chunk of an import
    assert len(one) == 24 and int(one, 16) >= 0
    assert all(len(i) == 24 and i.startswith(f"{1_700_000_000:08x}") for i in many)
    assert {i[8:18] for i in [one, *many]} == {one[8:18]}  # the process's random bytes
    counters = [int(i[18:], 16) for i in [one, *many]]
    assert counters == [(counters[0] + k) % (1 << 24) for k in range(5_001)]  # consecutive


def test_braze_ids_made_one_after_another_sort_in_order_within_a_second() -> None:
    ids = [new_braze_id(1_700_000_000.0) for _ in range(50)] + new_braze_ids(1_700_000_000, 50)
    ids += [new_braze_id(1_700_000_001.0)]
    wrapped = [a for a, b in itertools.pairwise(ids) if a > b]
    assert len(set(ids)) == len(ids)
    assert len(wrapped) <= 1  # only where the 3-byte counter wraps (once in 16.7M ids)


def test_braze_ids_drawn_in_many_threads_are_unique() -> None:
    seen: list[str] = []

    def draw() -> None:
        for _ in range(200):
            seen.append(new_braze_id(1_700_000_000.0))
            seen.extend(new_braze_ids(1_700_000_000, 7))

    threads = [threading.Thread(target=draw) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == len(seen) == 4 * 200 * 8


def test_a_forked_child_makes_other_braze_ids_than_its_parent() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its ids, through the pipe, then out at once
        os.write(write, new_braze_id(1_700_000_000.0).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    parent = new_braze_id(1_700_000_000.0)
    assert len(child) == 24 and child[8:18] != parent[8:18]
