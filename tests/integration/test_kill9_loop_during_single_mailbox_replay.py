"""kill -9 of holdd many times during one mailbox's replay of thousands of messages,
with the default `[delivery] pipeline = 1` (the next message waits for the previous
one's durable removal) and with `pipeline = 16` (issue 16: the next message goes as
soon as the upstream accepted the previous one, while up to 16 removals commit).
The new server must see every message, in order; a message may come again only
right after a kill, and only one of the last `pipeline` accepted before it, or the
one in flight."""
import pytest
import smtplib
import time

from helpers import wait_until

MESSAGES = 2500
KILLS = 15


def seq_of(data):
    for line in data.split(b"\r\n"):
        if line.startswith(b"X-Seq: "):
            return int(line[7:])
        if line == b"":
            break
    raise AssertionError(f"no X-Seq header in {data[:300]!r}")


def accepted_seqs(sink):
    return [seq_of(d["data"]) for d in sink.deliveries("anna@example.com")]


def transactions(sink):
    """Transactions the sink recorded so far, counted without parsing them."""
    try:
        return sink.log.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def load(holdd, count):
    with smtplib.SMTP("127.0.0.1", holdd.smtp_port, timeout=60) as client:
        client.ehlo("client.test")
        for n in range(count):
            msg = (f"Message-ID: <{n}.loop@sender.test>\r\nX-Seq: {n}\r\n"
                   f"Subject: replay {n}\r\n\r\nbody of message {n}\r\n").encode()
            client.sendmail("s@sender.test", ["anna@example.com"], msg)


@pytest.mark.holdd(config={"delivery": {"pipeline": 1}})
def test_kill9_loop_default_pipeline_repeats_at_most_one_per_kill(holdd):
    kill9_loop(holdd, pipeline=1)


@pytest.mark.holdd(config={"delivery": {"pipeline": 16}})
def test_kill9_loop_pipeline_16_loses_and_reorders_nothing(holdd):
    kill9_loop(holdd, pipeline=16)


def kill9_loop(holdd, pipeline):
    # `pipeline` accepted entries may wait for their removal, plus the one in
    # flight at the kill (the upstream took it, holdd never read the reply).
    max_repeat = pipeline + 1
    started = time.monotonic()
    holdd.ctl_json("lock", "anna@example.com")
    load(holdd, MESSAGES)
    holdd.wait_queued("anna@example.com", MESSAGES, timeout=30)
    holdd.ctl_json("release", "anna@example.com")

    step = MESSAGES // (KILLS + 2)
    kills = 0
    for _ in range(KILLS):
        seen = transactions(holdd.sink_new)
        if seen >= MESSAGES - step:
            break
        # Polled often, so that a fast replay is still killed about every `step`.
        wait_until(lambda: transactions(holdd.sink_new) >= seen + step, 30, interval=0.01,
                   what=f"{step} more transactions at the new server")
        holdd.kill9()
        kills += 1
        holdd.start()
    assert kills >= 10, f"the replay ended after {kills} kills: too fast to test"

    wait_until(lambda: len(set(accepted_seqs(holdd.sink_new))) == MESSAGES, 60,
               what=f"all {MESSAGES} messages at the new server")
    wait_until(lambda: holdd.queue("anna@example.com") == [], 30, what="an empty queue")
    seqs = accepted_seqs(holdd.sink_new)

    assert seqs[0] == 0
    back = []
    for i in range(1, len(seqs)):
        prev, cur = seqs[i - 1], seqs[i]
        if cur == prev + 1:
            continue
        # Nothing skipped (that would be a loss or a reorder); a step back only to a
        # message sent shortly before.
        assert cur <= prev, f"message {prev + 1} skipped: {cur} came after {prev} (at {i})"
        assert prev - cur < max_repeat, f"went back from {prev} to {cur} (at {i})"
        back.append((prev, cur))
    print(f"{kills} kills, {len(seqs)} deliveries of {MESSAGES} messages, steps back: {back}")
    assert len(back) <= kills, f"{len(back)} steps back for {kills} kills: {back}"
    assert len(seqs) - MESSAGES <= kills * max_repeat
    assert not holdd.sink_old.entries()
    assert time.monotonic() - started < 120
