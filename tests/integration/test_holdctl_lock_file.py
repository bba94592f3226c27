"""`holdctl lock --file F`: one address a line, # comments and blank lines ignored;
`list --state` and `show` report the change with its history."""
from datetime import datetime


def test_lock_file_sets_every_listed_mailbox_held(holdd, tmp_path):
    batch = tmp_path / "batch1.txt"
    batch.write_text("# first batch\n\nanna@example.com\n  bob@example.com  \n"
                     "# carol@example.com is not in this batch\ndave@EXAMPLE.com\n")
    result = holdd.ctl_json("lock", "--file", batch)
    assert sorted(result["changed"]) == ["anna@example.com", "bob@example.com", "dave@example.com"]
    assert result["state"] == "held"
    held = holdd.ctl_json("list", "--state", "held")["mailboxes"]
    assert [m["mailbox"] for m in held] == ["anna@example.com", "bob@example.com", "dave@example.com"]
    assert all(m["state"] == "held" for m in held)
    old = holdd.ctl_json("list", "--state", "old")["mailboxes"]
    assert [m["mailbox"] for m in old] == ["carol@example.com"]

    # Idempotent: a second lock changes nothing.
    again = holdd.ctl_json("lock", "--file", batch)
    assert again["changed"] == [] and len(again["unchanged"]) == 3

    show = holdd.ctl_json("show", "anna@example.com")
    assert show["state"] == "held"
    assert [(h["from"], h["to"]) for h in show["history"]][-1:] == [("old", "held")]
    datetime.strptime(show["history"][-1]["at"], "%Y-%m-%dT%H:%M:%SZ")
    assert len(show["history"]) == 1  # the idempotent second lock is no change


def test_lock_file_with_an_unknown_address_changes_nothing(holdd, tmp_path):
    batch = tmp_path / "batch.txt"
    batch.write_text("anna@example.com\nghost@example.com\n")
    r = holdd.ctl("lock", "--file", batch)
    assert r.returncode == 1 and "ghost@example.com" in r.stderr
    assert holdd.ctl_json("list", "--state", "held")["mailboxes"] == []


def test_state_survives_restart(holdd, tmp_path):
    batch = tmp_path / "batch.txt"
    batch.write_text("anna@example.com\nbob@example.com\n")
    holdd.ctl_json("lock", "--file", batch)
    holdd.restart()
    held = holdd.ctl_json("list", "--state", "held")["mailboxes"]
    assert [m["mailbox"] for m in held] == ["anna@example.com", "bob@example.com"]
