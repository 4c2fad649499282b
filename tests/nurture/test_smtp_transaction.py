"""The hand-written DATA phase of nurture sends (nurture.channels.email.smtp_transaction)."""

from nurture.channels.email import smtp_transaction


class RecordingSMTP:
    """Just enough of smtplib.SMTP to see the bytes a transaction sends."""

    sock = None
    does_esmtp = False

    def __init__(self):
        self.sent = b""

    def ehlo_or_helo_if_needed(self):
        pass

    def mail(self, sender, options):
        return 250, b"ok"

    def rcpt(self, recipient):
        return 250, b"ok"

    def docmd(self, command):
        return 354, b"go ahead"

    def send(self, data):
        self.sent += data

    def getreply(self):
        return 250, b"queued"


def test_lines_starting_with_a_dot_are_dot_stuffed():
    """A body line of "." would end the message early and let the rest of the
    body (lead data, template text) be read as SMTP commands."""
    client = RecordingSMTP()
    body = b"Subject: hi\r\n\r\nfirst\r\n.\r\nRSET\r\n..x\r\n\\not a dot\r\nlast"
    marks = []
    smtp_transaction(
        client, sender="a@example.com", recipient="b@example.com", data=body,
        before_final_dot=lambda: marks.append(client.sent),
    )  # fmt: skip
    assert client.sent == (
        b"Subject: hi\r\n\r\nfirst\r\n..\r\nRSET\r\n...x\r\n\\not a dot\r\nlast\r\n.\r\n"
    )
    assert marks == [client.sent[: -len(b".\r\n")]]  # the marker runs before the final dot
