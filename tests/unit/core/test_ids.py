"""Random ids: UUIDv7 text (Currents event ids) and buffered random hex (braze ids)."""

from __future__ import annotations

import threading
import time
import uuid

from cohorthub.currents.envelope import custom_event
from cohorthub.identity.model import new_braze_id, new_braze_ids
from cohorthub.ids import random_hex, uuid7


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


def test_random_hex_is_random_per_thread() -> None:
    seen: list[str] = []

    def draw() -> None:
        seen.extend(random_hex(32) for _ in range(300))  # crosses a refill of the buffer

    threads = [threading.Thread(target=draw) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == len(seen) == 1_200
    assert all(len(h) == 32 and int(h, 16) >= 0 for h in seen)
    braze = new_braze_id(1_700_000_000.0)
    assert len(braze) == 24 and braze.startswith(f"{1_700_000_000:08x}")


def test_random_hex_gives_every_digit_asked_for_even_beyond_one_buffer() -> None:
    for digits in (1, 16, 4096, 4097, 8192, 80_000):
        drawn = random_hex(digits)
        assert len(drawn) == digits
        int(drawn, 16)
    many = new_braze_ids(1_700_000_000, 5_000)  # one draw for a whole chunk of an import
    assert len(set(many)) == 5_000
    assert all(len(i) == 24 and i.startswith(f"{1_700_000_000:08x}") for i in many)
