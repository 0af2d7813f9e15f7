"""Mailed digests against a real SMTP server (aiosmtpd on loopback), through the CLI.

The news is the offline example's seven feeds; a story grows when a feed written here joins it.
"""

from __future__ import annotations

import os
import signal
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
import trustme
from click.testing import CliRunner, Result

from aggregator.runlock import run_lock
from cli import cli

from .conftest import EXAMPLES
from .processes import aggregator_process
from .smtp import SmtpServer

FEEDS = sorted((EXAMPLES / "feeds").glob("*.xml"))
READER = "reader@example.org"

# A new outlet's take on the Quillon phone launch, an hour after the last one: it joins the
# story, which then has one source more.
EASTBAY = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Eastbay Chronicle</title>
<link>https://eastbay-chronicle.example/</link><description>Made up for the tests</description>
<item>
  <title>Quillon Aero 7 with in-house Q3 chip: queues expected for the $899 phone</title>
  <link>https://eastbay-chronicle.example/tech/quillon-aero-7-q3-chip</link>
  <guid>eastbay-quillon-aero-7</guid>
  <pubDate>Tue, 24 Nov 2026 20:15:00 +0000</pubDate>
  <description>Quillon's Aero 7 smartphone, built on the company's own Q3 chip, goes on sale
  on December 5 for $899, and retailers expect queues.</description>
</item>
</channel></rss>
"""


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


def write_config(
    directory: Path, port: int, *, feeds: list[Path] = FEEDS, email: str = "", **settings: str
) -> Path:
    lines = [f"database: {directory / 'news.db'}", "feeds:"]
    lines += [f"  - {feed}" for feed in feeds]
    lines += [
        "email:",
        "  smtp_host: 127.0.0.1",
        f"  smtp_port: {port}",
        f"  security: {settings.pop('security', 'none')}",
        "  from: News <news@example.org>",
        f"  to: [{settings.pop('to', READER)}]",
    ]
    lines += [f"  {key}: {value}" for key, value in settings.items()]
    path = directory / "config.yaml"
    path.write_text("\n".join(lines) + "\n" + email, encoding="utf-8")
    return path


def aggregator(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)


def outbox(config: Path) -> list[dict[str, object]]:
    return list(sqlite_utils.Database(config.parent / "news.db").query("SELECT * FROM outbox"))


def grow_the_phone_story(config: Path, port: int, **settings: str) -> None:
    extra = config.parent / "eastbay.xml"
    extra.write_text(EASTBAY, encoding="utf-8")
    write_config(config.parent, port, feeds=[*FEEDS, extra], **settings)


# --- what is sent, and when ----------------------------------------------------------------


def test_run_mails_one_multipart_digest_then_nothing_while_nothing_is_new(
    tmp_path: Path, smtp: SmtpServer
) -> None:
    config = write_config(tmp_path, smtp.port)
    result = aggregator(config, "run")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""  # mailed, not printed
    assert f"Mailed a digest of 5 stories to {READER}" in result.stderr
    [mail] = smtp.received
    assert mail.sender == "news@example.org" and mail.recipients == [READER]
    message = mail.message
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["Subject"].startswith("aggregator digest: 5 stories, led by ")
    assert message["To"] == READER and message["From"] == "News <news@example.org>"
    assert message["Date"] and message["Message-ID"].endswith("@example.org>")
    assert message["Auto-Submitted"] == "auto-generated"
    text = message.get_body(("plain",)).get_content()
    assert "Quillon" in text and "Velmora" in text
    assert all(
        len(line) <= 72 or line.lstrip().startswith("https://") for line in text.splitlines()
    )
    html = message.get_body(("html",)).get_content()
    assert '<a href="https://meridian-wire.example/' in html and "<script" not in html
    [row] = outbox(config)
    assert row["sent_at"] and row["message_id"] == message["Message-ID"]

    again = aggregator(config, "run")
    assert again.exit_code == 0 and len(smtp.received) == 1
    assert f"Nothing new for {READER}: no mail sent" in again.stderr


def test_a_grown_story_comes_again_saying_what_it_gained(tmp_path: Path, smtp: SmtpServer) -> None:
    config = write_config(tmp_path, smtp.port)
    assert aggregator(config, "run").exit_code == 0
    grow_the_phone_story(config, smtp.port)
    assert aggregator(config, "run").exit_code == 0
    assert len(smtp.received) == 2
    second = smtp.received[1].message
    assert second["Subject"].startswith("aggregator digest: 1 story, led by Quillon")
    text = second.get_body(("plain",)).get_content()
    assert "+1 source since your last digest" in text
    assert "5 sources:" in text and "Eastbay Chronicle" in text
    assert "Velmora" not in text  # unchanged stories are not sent twice
    assert "+1 source since your last digest" in second.get_body(("html",)).get_content()


def test_each_recipient_has_their_own_state(tmp_path: Path, smtp: SmtpServer) -> None:
    config = write_config(tmp_path, smtp.port)
    assert aggregator(config, "poll").exit_code == 0
    assert aggregator(config, "digest", "--to", "a@example.org").exit_code == 0
    assert aggregator(config, "digest", "--to", "Bee <b@example.org>").exit_code == 0
    assert [m.recipients for m in smtp.received] == [["a@example.org"], ["b@example.org"]]
    assert smtp.received[1].message["To"] == "Bee <b@example.org>"
    assert aggregator(config, "digest", "--to", "A@Example.org").exit_code == 0
    assert len(smtp.received) == 2  # a@ has seen it all, however it is written
    assert aggregator(config, "digest").exit_code == 0  # email.to has not
    assert smtp.received[2].recipients == [READER]


def test_dry_run_shows_the_mail_and_neither_sends_nor_remembers(
    tmp_path: Path, smtp: SmtpServer
) -> None:
    config = write_config(tmp_path, smtp.port)
    assert aggregator(config, "poll").exit_code == 0
    preview = aggregator(config, "digest", "--dry-run")
    assert preview.exit_code == 0
    assert preview.stdout.startswith(f"To: {READER}\nSubject: aggregator digest: 5 stories")
    assert "Quillon" in preview.stdout
    assert smtp.received == [] and outbox(config) == []
    assert aggregator(config, "digest").exit_code == 0
    assert len(smtp.received) == 1


def test_digest_print_and_since_show_stories_already_mailed(
    tmp_path: Path, smtp: SmtpServer
) -> None:
    config = write_config(tmp_path, smtp.port)
    assert aggregator(config, "run").exit_code == 0
    printed = aggregator(config, "digest", "--print", "--format", "markdown")
    assert printed.exit_code == 0 and printed.stdout.startswith("# aggregator digest: 5 stories")
    again = aggregator(config, "digest", "--print")
    assert "Nothing new." in again.stdout  # the printed digest keeps its own state
    catch_up = aggregator(config, "digest", "--print", "--since", "all", "--limit", "2")
    assert "aggregator digest: 2 stories" in catch_up.stdout
    assert len(smtp.received) == 1


def test_without_an_email_section_run_prints_and_says_nothing_when_nothing_is_new(
    tmp_path: Path,
) -> None:
    config = tmp_path / "config.yaml"
    feeds = "\n".join(f"  - {feed}" for feed in FEEDS)
    config.write_text(f"database: news.db\nfeeds:\n{feeds}\n", encoding="utf-8")
    first = aggregator(config, "--quiet", "run")
    assert first.exit_code == 0 and first.stdout.startswith("aggregator digest: 5 stories")
    assert first.stderr == ""
    second = aggregator(config, "--quiet", "run")
    assert second.exit_code == 0 and second.output == ""  # cron mails nothing
    to = aggregator(config, "digest", "--to", READER)
    assert to.exit_code == 2 and "needs an email: section" in to.stderr


# --- failures: kept in the outbox, sent by the next run --------------------------------------


@pytest.mark.parametrize(
    ("reply", "word"),
    [("451 4.3.0 Mailbox busy, try later", "deferred"), ("554 5.7.1 Rejected", "refused")],
)
def test_a_refused_digest_stays_in_the_outbox_and_the_next_run_sends_it(
    tmp_path: Path, smtp: SmtpServer, reply: str, word: str
) -> None:
    config = write_config(tmp_path, smtp.port)
    smtp.mailbox.data_reply = reply
    failed = aggregator(config, "run")
    assert failed.exit_code == 4
    assert f"{word} the digest: {reply}" in failed.stderr
    assert "kept in the outbox for the next run" in failed.stderr
    assert "Traceback" not in failed.output
    [row] = outbox(config)
    assert row["sent_at"] is None and row["attempts"] == 1 and reply in str(row["last_error"])

    again = aggregator(config, "run")  # still refused: nothing new is queued behind it
    assert again.exit_code == 4 and len(outbox(config)) == 1

    smtp.mailbox.data_reply = None
    fixed = aggregator(config, "run")  # nothing new, but the outbox goes out
    assert fixed.exit_code == 0, fixed.output
    assert f"Mailed a digest of 5 stories to {READER} (from the outbox)" in fixed.stderr
    [mail] = smtp.received
    assert mail.message["Message-ID"] == row["message_id"]
    assert mail.data.replace(b"\r\n", b"\n") == bytes(row["message"]).replace(b"\r\n", b"\n")
    assert aggregator(config, "run").exit_code == 0 and len(smtp.received) == 1


def test_a_refused_recipient_is_a_clear_error(tmp_path: Path, smtp: SmtpServer) -> None:
    config = write_config(tmp_path, smtp.port)
    smtp.mailbox.rcpt_reply = "550 5.1.1 No such user"
    result = aggregator(config, "run")
    assert result.exit_code == 4
    assert f"refused the recipient {READER}: 550 5.1.1 No such user" in result.stderr


def test_one_refused_address_keeps_back_only_its_own_digest(
    tmp_path: Path, smtp: SmtpServer
) -> None:
    """mail_digests hands each delivery to ``report`` as it goes, and raises DeliveryError
    for the digests not sent once every recipient had their turn; the CLI says what was
    mailed, then the error (exit 4)."""
    from aggregator.config import load_config
    from aggregator.delivery import mail_digests
    from aggregator.errors import DeliveryError
    from aggregator.models import Delivery, DeliveryOutcome
    from aggregator.store import open_store

    gone = "gone@example.org"

    async def refuse_one(server: object, session: object, envelope: Any, address: str, _: object):
        if address == gone:
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    smtp.mailbox.handle_RCPT = refuse_one  # type: ignore[method-assign]
    path = write_config(tmp_path, smtp.port, to=f"{gone}, {READER}")
    assert aggregator(path, "poll").exit_code == 0
    config = load_config(path)
    store = open_store(config.database)
    reported: list[Delivery] = []
    with pytest.raises(DeliveryError) as raised:
        mail_digests(config, store, report=reported.append)
    store.close()
    assert [(d.recipient, d.outcome) for d in reported] == [
        (gone, DeliveryOutcome.FAILED),
        (READER, DeliveryOutcome.SENT),
    ]
    assert str(raised.value) == (
        f"1 digest not sent, kept in the outbox for the next run. {gone}: {reported[0].error}"
    )
    assert raised.value.exit_code == 4 and "550 5.1.1 No such user" in str(raised.value)
    assert [mail.recipients for mail in smtp.received] == [[READER]]

    grow_the_phone_story(path, smtp.port, to=f"{gone}, {READER}")
    again = aggregator(path, "run")  # the reader gets the grown story; gone@ is still refused
    assert again.exit_code == 4
    assert again.stderr.endswith(
        f"Mailed a digest of 1 story to {READER}\n"
        f"Error: 1 digest not sent, kept in the outbox for the next run. {gone}: "
        f"the SMTP server 127.0.0.1:{smtp.port} refused the recipient {gone}: "
        "550 5.1.1 No such user\n"
    )


def test_connection_refused_keeps_the_digest_for_a_run_that_reaches_the_server(
    tmp_path: Path, smtp: SmtpServer
) -> None:
    with SmtpServer() as closed:
        port = closed.port  # nothing listens there once this server stops
    config = write_config(tmp_path, port)
    result = aggregator(config, "run")
    assert result.exit_code == 4
    assert f"cannot send through the SMTP server 127.0.0.1:{port}: connection refused" in (
        result.stderr
    )
    write_config(tmp_path, smtp.port)  # the user fixes the port
    fixed = aggregator(config, "run")
    assert fixed.exit_code == 0 and len(smtp.received) == 1
    assert "5 stories" in smtp.received[0].message["Subject"]


# --- TLS and logins ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture
def ca_file(tmp_path: Path, ca: trustme.CA) -> Path:
    path = tmp_path / "relay-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def test_starttls_with_a_self_signed_certificate_is_refused_unless_its_ca_is_configured(
    tmp_path: Path, ca: trustme.CA, ca_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "s3cret")
    login = {"username": "reader", "password_env": "TEST_SMTP_PASSWORD"}
    with SmtpServer(starttls=server_context(ca), users={"reader": "s3cret"}) as server:
        config = write_config(tmp_path, server.port, security="starttls", **login)
        refused = aggregator(config, "run")
        assert refused.exit_code == 4
        assert "cannot be verified" in refused.stderr and "email.ca_file" in refused.stderr
        assert server.received == [] and server.mailbox.logins == []  # no password leaked

        write_config(tmp_path, server.port, security="starttls", ca_file=str(ca_file), **login)
        sent = aggregator(config, "run")
        assert sent.exit_code == 0, sent.output
        assert server.mailbox.logins == [("reader", "s3cret")]
        assert len(server.received) == 1


def test_a_wrong_password_is_a_clear_error(tmp_path: Path, ca: trustme.CA, ca_file: Path) -> None:
    secret = tmp_path / "smtp-password"
    secret.write_text("wrong\n", encoding="utf-8")
    with SmtpServer(starttls=server_context(ca), users={"reader": "s3cret"}) as server:
        config = write_config(
            tmp_path,
            server.port,
            security="starttls",
            ca_file=str(ca_file),
            username="reader",
            password_file="smtp-password",
        )
        result = aggregator(config, "run")
    assert result.exit_code == 4
    assert "refused the login for reader: 535" in result.stderr
    assert set(server.mailbox.logins) == {("reader", "wrong")}  # smtplib tries PLAIN, LOGIN


def test_a_password_beyond_ascii_or_an_unreadable_ca_file_is_a_clear_error(
    tmp_path: Path, ca: trustme.CA, ca_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "pässwörd")
    login = {"username": "reader", "password_env": "TEST_SMTP_PASSWORD"}
    with SmtpServer(starttls=server_context(ca), users={"reader": "s3cret"}) as server:
        config = write_config(
            tmp_path, server.port, security="starttls", ca_file=str(ca_file), **login
        )
        result = aggregator(config, "run")
        assert result.exit_code == 4 and "beyond ASCII" in result.stderr
        assert "Traceback" not in result.output
        write_config(tmp_path, server.port, security="starttls", ca_file="nowhere.pem", **login)
        result = aggregator(config, "run")
        assert result.exit_code == 2 and "email.ca_file: cannot load" in result.stderr
    assert server.received == []


def test_sent_digests_leave_the_outbox_after_a_month(tmp_path: Path) -> None:
    from aggregator.store import open_store

    store = open_store(tmp_path / "x.db")
    then = datetime(2026, 1, 1, tzinfo=UTC)
    first = store.record_digest("a@example.org", [], then, mail=("<1@x>", b"one", 1))
    unsent = store.record_digest("a@example.org", [], then, mail=("<2@x>", b"two", 1))
    assert first is not None and unsent is not None
    store.mail_attempted(first, then)
    store.record_digest("a@example.org", [], then + timedelta(days=31), mail=("<3@x>", b"3", 1))
    assert [m.message_id for m in store.unsent_mail(["a@example.org"])] == ["<2@x>", "<3@x>"]
    assert store.db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 2
    store.close()


def test_starttls_not_offered_means_nothing_is_sent(tmp_path: Path, smtp: SmtpServer) -> None:
    config = write_config(tmp_path, smtp.port, security="starttls")
    result = aggregator(config, "run")
    assert result.exit_code == 4
    assert "does not offer STARTTLS" in result.stderr and smtp.received == []


def test_implicit_tls(tmp_path: Path, ca: trustme.CA, ca_file: Path) -> None:
    with SmtpServer(implicit_tls=server_context(ca)) as server:
        config = write_config(tmp_path, server.port, security="ssl", ca_file=str(ca_file))
        result = aggregator(config, "run")
        assert result.exit_code == 0, result.output
        assert len(server.received) == 1


def test_a_missing_password_variable_is_a_config_error(tmp_path: Path, smtp: SmtpServer) -> None:
    config = write_config(
        tmp_path, smtp.port, security="starttls", username="me", password_env="NO_SUCH_VARIABLE"
    )
    result = aggregator(config, "run")
    assert result.exit_code == 2
    assert "email.password_env: the environment variable NO_SUCH_VARIABLE is not set" in (
        result.stderr
    )


# --- cron: the lock, and kill -9 between the steps of a run ------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("step", "kill_in", "mails_after_crash", "mails_in_the_end"),
    [
        ("after the poll, before the digest", "aggregator.delivery:build_digest", 0, 1),
        ("after the outbox, before the send", "aggregator.mail:SmtpSender.send", 0, 1),
        ("after the send, before the mark", "aggregator.store:Store.mail_attempted", 1, 2),
    ],
)
def test_kill_9_between_the_steps_of_a_run_loses_nothing_and_sends_at_most_one_duplicate(
    tmp_path: Path,
    smtp: SmtpServer,
    step: str,
    kill_in: str,
    mails_after_crash: int,
    mails_in_the_end: int,
) -> None:
    config = write_config(tmp_path, smtp.port)
    crashed = aggregator_process(config, "run", kill_in=kill_in)
    assert crashed.returncode == -signal.SIGKILL, (step, crashed.stderr)
    assert len(smtp.received) == mails_after_crash

    for _ in range(2):  # the next runs deliver it, and then nothing more
        after = aggregator_process(config, "run")
        assert after.returncode == 0, (step, after.stderr)
    assert len(smtp.received) == mails_in_the_end
    assert {m.message["Message-ID"] for m in smtp.received} == {
        row["message_id"] for row in outbox(config)
    }
    assert len(outbox(config)) == 1 and all(row["sent_at"] for row in outbox(config))
    assert "5 stories" in smtp.received[-1].message["Subject"]


def test_a_second_run_exits_0_and_says_another_run_holds_the_lock(
    tmp_path: Path, smtp: SmtpServer
) -> None:
    config = write_config(tmp_path, smtp.port)
    with run_lock(tmp_path / "news.db"):
        second = aggregator_process(config, "run")
        quiet = aggregator_process(config, "--quiet", "run")
    assert second.returncode == 0
    assert "another aggregator run holds the lock" in second.stderr
    assert f"(pid {os.getpid()}, started " in second.stderr
    assert quiet.returncode == 0 and quiet.stderr == "" and quiet.stdout == ""
    assert smtp.received == [] and not (tmp_path / "news.db").exists()
    assert aggregator_process(config, "run").returncode == 0  # released: the next run works
    assert len(smtp.received) == 1


def test_a_run_stuck_for_over_an_hour_is_reported_even_when_quiet(tmp_path: Path) -> None:
    config = write_config(tmp_path, 25)
    long_ago = datetime.now(UTC) - timedelta(hours=3)
    with run_lock(tmp_path / "news.db", now=long_ago):
        result = aggregator(config, "--quiet", "run")
    assert result.exit_code == 0
    assert "another aggregator run holds the lock" in result.stderr


def test_dry_run_needs_no_lock(tmp_path: Path, smtp: SmtpServer) -> None:
    config = write_config(tmp_path, smtp.port)
    assert aggregator(config, "poll").exit_code == 0
    with run_lock(tmp_path / "news.db"):
        assert "Subject:" in aggregator(config, "digest", "--dry-run").stdout
        held = aggregator(config, "digest")
    assert held.exit_code == 0 and "holds the lock" in held.stderr and smtp.received == []
