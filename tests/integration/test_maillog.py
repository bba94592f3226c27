"""The mail log: one line per event, queue ID first, stable `key=value` format
(include/holdd/base/maillog.h, README "Logs"), so that `grep ID` follows a message
from intake to delivery the way Postfix's "queued as" lines do. The IDs are the
ones in the 250 reply and in `holdctl queue`."""
import re

from helpers import make_message, wait_until

# holdd's own prefix outside the journal: "2026-11-23T17:00:00.123 info "
PREFIX = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} (trace|debug|info|warning|error|critical) ")
ID = r"[0-9A-Za-z]+"


def events(holdd):
    """The log's message parts (prefix removed), in order."""
    out = []
    for line in holdd.log_text().splitlines():
        m = PREFIX.match(line)
        if m:
            out.append((m.group(1), line[m.end():]))
    return out


def lines_for(holdd, qid):
    return [text for _, text in events(holdd) if text.startswith(qid + ": ")]


def one(lines, pattern):
    found = [line for line in lines if re.fullmatch(pattern, line)]
    assert len(found) == 1, f"expected one line matching {pattern!r}, got {found}\nall: {lines}"
    return re.fullmatch(pattern, found[0])


def queued_as(reply_text):
    m = re.search(r"queued as (" + ID + r")\b", reply_text)
    assert m, reply_text
    return m.group(1)


def test_every_event_of_a_message_is_one_line_with_its_queue_id(holdd):
    port = holdd.sink_new.port
    holdd.ctl_json("lock", "anna@example.com")
    original = make_message(1)
    reply = holdd.send("sender@sender.test", ["anna@example.com"], original)
    qid = queued_as(reply)
    queue = holdd.queue("anna@example.com")
    assert [m["id"] for m in queue] == [qid], (queue, reply)
    # `holdctl queue` shows what the sender sent ...
    assert queue[0]["size"] == len(original), queue
    holdd.ctl_json("release", "anna@example.com", "--wait")
    wait_until(lambda: any(" relayed " in line for line in lines_for(holdd, qid)), 10,
               what="the relayed line")

    lines = lines_for(holdd, qid)
    m = one(lines, rf'{qid}: accepted from=<sender@sender\.test> size=(\d+) nrcpt=1 client="(.+) \[127\.0\.0\.1\]"')
    # ... the log's size= is what holdd stored and relays: with its own headers.
    assert int(m.group(1)) == len(holdd.sink_new.deliveries()[0]["data"]) > len(original), m.group(0)
    one(lines, rf"{qid}: held to=<anna@example\.com>")
    m = one(lines, rf'{qid}: relayed to=<anna@example\.com> upstream=new relay=127\.0\.0\.1:{port} '
                   rf'delay=(\d+\.\d{{3}}) reply="(250 [^"]*)"')
    assert 0 <= float(m.group(1)) < 60, m.group(0)
    # Intake before delivery, and nothing else for this ID.
    assert [line.split()[1] for line in lines] == ["accepted", "held", "relayed"], lines

    texts = [text for _, text in events(holdd)]
    by = r'by="holdctl uid=\d+ pid=\d+"'
    state_lines = [t for t in texts if t.startswith("state anna@example.com ")]
    assert len(state_lines) == 2, state_lines
    assert re.fullmatch(rf"state anna@example\.com old -> held {by}", state_lines[0]), state_lines
    assert re.fullmatch(rf"state anna@example\.com held -> migrated {by}", state_lines[1]), state_lines
    assert any(re.fullmatch(r"connect from \S+ \[127\.0\.0\.1\]", t) for t in texts), texts
    assert any(re.fullmatch(r"disconnect from \[127\.0\.0\.1\] .*", t) for t in texts), texts
    # The order of events across lines: lock, accepted, held, release, relayed.
    order = [texts.index(state_lines[0]), texts.index(lines[0]), texts.index(lines[1]),
             texts.index(state_lines[1]), texts.index(lines[2])]
    assert order == sorted(order), order


def test_queued_deferred_parked_and_dropped_lines(holdd):
    old = holdd.sink_old
    old.set_control({"data": {"bob@example.com": "451 4.3.0 try again later"},
                     "rcpt": {"carol@example.com": "550 5.1.1 no such user here"}})
    bob = queued_as(holdd.send("s1@sender.test", ["bob@example.com"], make_message(1)))
    carol = queued_as(holdd.send("s2@sender.test", ["carol@example.com"], make_message(2)))
    # An alias with two mailboxes: one message, one ID, one line per mailbox;
    # nrcpt counts mailboxes after alias expansion (like Postfix after virtual).
    team = queued_as(holdd.send("s3@sender.test", ["team@example.com"], make_message(3)))

    wait_until(lambda: any(" deferred " in line for line in lines_for(holdd, bob)), 15,
               what="bob's message to be deferred")
    wait_until(lambda: any(" parked " in line for line in lines_for(holdd, carol)), 15,
               what="carol's message to be parked")
    old.set_control({})
    wait_until(lambda: any(" relayed " in line for line in lines_for(holdd, bob)), 15,
               what="bob's message to be relayed on retry")

    lines = lines_for(holdd, bob)
    one(lines, rf"{bob}: queued to=<bob@example\.com>")
    m = one(lines, rf'{bob}: deferred to=<bob@example\.com> upstream=old attempts=1 '
                   rf'next=(\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ) reply="451 4\.3\.0 try again later"')
    one(lines, rf'{bob}: relayed to=<bob@example\.com> upstream=old relay=127\.0\.0\.1:{old.port} '
               rf'delay=\d+\.\d{{3}} reply="250 [^"]*"')
    deferred_level = [lvl for lvl, text in events(holdd) if text == m.group(0)]
    assert deferred_level == ["warning"], deferred_level

    lines = lines_for(holdd, carol)
    one(lines, rf'{carol}: parked to=<carol@example\.com> upstream=old reply="550 5\.1\.1 no such user here"')
    assert holdd.ctl("drop", carol, "--yes").returncode == 0
    wait_until(lambda: any(" dropped " in line for line in lines_for(holdd, carol)), 5,
               what="the dropped line")
    one(lines_for(holdd, carol), rf'{carol}: dropped to=<carol@example\.com> by="holdctl uid=\d+ pid=\d+"')

    lines = lines_for(holdd, team)
    one(lines, rf'{team}: accepted from=<s3@sender\.test> size=\d+ nrcpt=2 client=".+"')
    one(lines, rf"{team}: queued to=<anna@example\.com>")
    one(lines, rf"{team}: queued to=<bob@example\.com>")
