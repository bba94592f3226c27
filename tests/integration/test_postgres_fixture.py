"""The `postgres` fixture the [cluster] tests stand on: a real PostgreSQL server that
keeps its data across stop() and start_again() on the same port, and leaves no
process behind."""
import socket

from helpers import wait_until


def test_postgres_keeps_rows_across_a_restart_and_leaves_no_process(postgres):
    assert postgres.running()
    port = postgres.port
    assert postgres.conninfo == (f"host=127.0.0.1 port={port} dbname=holdd user=holdd "
                                 "connect_timeout=3")
    # The conninfo's own address answers (the way holdd will connect, over TCP).
    socket.create_connection(("127.0.0.1", port), timeout=3).close()

    postgres.sql("CREATE TABLE mailbox_state (mailbox text PRIMARY KEY, state text NOT NULL)")
    postgres.sql("INSERT INTO mailbox_state VALUES (%s, %s), (%s, %s)",
                 "anna@example.com", "held", "o'brien@example.com", "new|line\nx")
    assert postgres.sql("SELECT mailbox, state FROM mailbox_state ORDER BY mailbox") == [
        ["anna@example.com", "held"], ["o'brien@example.com", "new|line\nx"]]
    assert postgres.sql("SELECT current_database(), current_user, NULL") == [
        ["holdd", "holdd", ""]]

    postgres.stop()
    assert not postgres.running()
    assert postgres.pids() == []

    postgres.start_again()
    assert postgres.running() and postgres.port == port
    assert postgres.sql("SELECT state FROM mailbox_state WHERE mailbox = %s",
                        "anna@example.com") == [["held"]]

    assert postgres.pids(), "no processes found for the running server"
    datadir = postgres.datadir
    postgres.cleanup()
    assert not postgres.running()
    assert wait_until(lambda: postgres.pids() == [], timeout=5, what="no postgres process left")
    assert not datadir.exists()
