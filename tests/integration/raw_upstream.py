"""RawUpstream: an SMTP server that answers with exactly the bytes a test gives it.

aiosmtpd speaks only UTF-8; old servers (Exchange, Sendmail, Domino with localized
texts) answer in Latin-1 now and then. This one is a plain socket server on a
loopback port, one thread per connection, that records every transaction (envelope
and the dot-unstuffed content, as bytes) and answers RCPT and the end of DATA with
the replies the test sets. Stopped by stop() (the fixture calls it).
"""
import socket
import threading


class RawUpstream:
    def __init__(self, banner=b"220 old.test ESMTP ready",
                 ehlo=(b"250-old.test", b"250-8BITMIME", b"250 PIPELINING")):
        self.banner = banner
        self.ehlo = ehlo
        self.rcpt_reply = b"250 2.1.5 Ok"
        self.data_reply = b"250 2.0.0 Ok"
        self.lock = threading.Lock()
        self.deliveries = []   # (mail_from_line, [rcpt lines], content bytes): 2xx at the end
        self.attempts = 0      # transactions that reached RCPT
        self.helos = []
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.stopping = False
        self.conns = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def set_replies(self, rcpt=None, data=None):
        with self.lock:
            if rcpt is not None:
                self.rcpt_reply = rcpt
            if data is not None:
                self.data_reply = data

    def delivered(self):
        with self.lock:
            return list(self.deliveries)

    def stop(self):
        self.stopping = True
        try:
            self.listener.close()
        except OSError:
            pass
        for c in list(self.conns):
            try:
                c.shutdown(socket.SHUT_RDWR)
                c.close()
            except OSError:
                pass
        self.thread.join(timeout=5)

    def _accept(self):
        while not self.stopping:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        buf = b""

        def line():
            nonlocal buf
            while b"\r\n" not in buf:
                chunk = conn.recv(65536)
                if not chunk:
                    raise EOFError
                buf += chunk
            out, buf = buf.split(b"\r\n", 1)
            return out

        def say(*lines):
            conn.sendall(b"".join(l + b"\r\n" for l in lines))

        try:
            say(self.banner)
            mail, rcpts = None, []
            while True:
                cmd = line()
                verb = cmd[:4].upper()
                if verb in (b"EHLO", b"HELO", b"LHLO"):
                    with self.lock:
                        self.helos.append(cmd)
                    say(*self.ehlo)
                elif verb == b"MAIL":
                    mail, rcpts = cmd, []
                    say(b"250 2.1.0 Ok")
                elif verb == b"RCPT":
                    with self.lock:
                        self.attempts += 1
                        reply = self.rcpt_reply
                    if reply.startswith(b"2"):
                        rcpts.append(cmd)
                    say(reply)
                elif verb == b"DATA":
                    if not rcpts:
                        say(b"554 5.5.1 No valid recipients")
                        continue
                    say(b"354 End data with <CR><LF>.<CR><LF>")
                    content = []
                    while True:
                        l = line()
                        if l == b".":
                            break
                        content.append(l[1:] if l.startswith(b".") else l)
                    with self.lock:
                        reply = self.data_reply
                        if reply.startswith(b"2"):
                            self.deliveries.append((mail, rcpts, b"\r\n".join(content) + b"\r\n"))
                    say(reply)
                    mail, rcpts = None, []
                elif verb == b"RSET":
                    mail, rcpts = None, []
                    say(b"250 2.0.0 Ok")
                elif verb == b"NOOP":
                    say(b"250 2.0.0 Ok")
                elif verb == b"QUIT":
                    say(b"221 2.0.0 Bye")
                    return
                else:
                    say(b"502 5.5.2 Command not recognized")
        except (EOFError, OSError):
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass
