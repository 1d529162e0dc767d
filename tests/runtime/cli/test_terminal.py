"""``mnemobot chat`` at a terminal, driven through a pseudo-terminal as a person types.

The console script runs in a subprocess whose standard streams are the slave side of a pty
(its controlling terminal); the test writes keys to the master side and reads what the
person would see, escape codes removed. Every wait is for output to appear (with a deadline
that only fails a test that hangs), never for a fixed time.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from tests.support import write_bot

SCRIPT = Path(sys.executable).with_name("mnemobot")
DEADLINE = 60.0  # seconds before a missing output fails the test; never slept
LEFT, UP, ENTER, CTRL_C, CTRL_D = b"\x1b[D", b"\x1b[A", b"\r", b"\x03", b"\x04"
_ESCAPES = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\x1b[=>()][0-9A-B]?|\r")

ECHO_BOT = """
async def on_message(ctx):
    await ctx.say("echo: " + ctx.text)
"""

# Stands in for a bot waiting on its model: it answers when the test creates the gate file.
GATED_BOT = """
import asyncio
import pathlib


async def on_message(ctx):
    gate = pathlib.Path("gate")
    while not gate.exists():
        await asyncio.sleep(0.02)
    await ctx.say("done: " + ctx.text)
"""


def _controlling_terminal() -> None:
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """One process on a pseudo-terminal: send keys, wait for text."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
        self.process = subprocess.Popen(
            [str(SCRIPT), *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=cwd,
            env=env,
            preexec_fn=_controlling_terminal,
        )
        os.close(slave)
        self.master = master
        self.seen = b""
        self.position = 0  # in the cleaned text: where the next expect() starts looking

    def text(self) -> str:
        return _ESCAPES.sub(b"", self.seen).decode("utf-8", "replace")

    def _read(self, until: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], max(0.0, until - time.monotonic()))
        if not ready:
            return False
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: the process closed the terminal
            data = b""
        if not data:
            return False
        self.seen += data
        return True

    def expect(self, pattern: str) -> re.Match[str]:
        """Wait until ``pattern`` appears after what earlier calls matched."""
        until = time.monotonic() + DEADLINE
        while True:
            found = re.compile(pattern).search(self.text(), self.position)
            if found:
                self.position = found.end()
                return found
            if not self._read(until):
                raise AssertionError(f"never saw {pattern!r}; the terminal shows:\n{self.text()}")

    def send(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def wait(self) -> int:
        """The exit status; fails if the process does not end (the deadline, not a sleep)."""
        until = time.monotonic() + DEADLINE
        while self._read(until):  # drain, so the process is never blocked writing
            pass
        return self.process.wait(timeout=max(1.0, until - time.monotonic()))

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        os.close(self.master)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    bots = tmp_path / "bots"
    write_bot(bots, "echo-bot", bot_py=ECHO_BOT)
    write_bot(bots, "gated-bot", bot_py=GATED_BOT)
    write_bot(bots, "printer", start_bas='PRINT "seen by " + "the operator"\nTALK "hi there"\n')
    return tmp_path


@pytest.fixture
def env(workdir: Path) -> dict[str, str]:
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("MNEMOBOT_")
    }
    environment.update(
        {
            "TERM": "xterm",
            "PROMPT_TOOLKIT_NO_CPR": "1",  # no cursor-position round trips to answer
            "NO_COLOR": "1",
            "PYTHONIOENCODING": "utf-8",
            "MNEMOBOT_DATABASE_URL": f"sqlite:///{workdir / 'data' / 'mnemobot.db'}",
            "MNEMOBOT_BOTS_DIR": str(workdir / "bots"),
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        }
    )
    return environment


@pytest.fixture
def terminal(workdir: Path, env: dict[str, str]):
    opened: list[Terminal] = []

    def start(*args: str) -> Terminal:
        term = Terminal(list(args), workdir, env)
        opened.append(term)
        return term

    yield start
    for term in opened:
        term.close()


def test_arrow_keys_edit_the_line_and_up_recalls_it_across_runs(terminal, workdir):
    chat = terminal("chat", "--bot", "echo-bot", "--user", "tia")
    chat.expect("you>")

    chat.send(b"abc" + LEFT + b"X" + ENTER)  # ← then typing inserts before the last letter

    chat.expect(r"echo-bot: echo: abXc\n")
    chat.expect("you>")
    chat.send(UP + ENTER)
    chat.expect(r"echo-bot: echo: abXc\n")
    chat.expect("you>")
    chat.send(CTRL_D)
    assert chat.wait() == 0

    history = workdir / "data" / "history" / "echo-bot"
    assert "+abXc" in history.read_text(encoding="utf-8")

    # A new chat with the same bot recalls the line; Ctrl-C at the prompt leaves at once.
    again = terminal("chat", "--bot", "echo-bot", "--user", "tia")
    again.expect("you>")
    again.send(UP + ENTER)
    again.expect(r"echo-bot: echo: abXc\n")
    again.expect("you>")
    again.send(CTRL_C)
    assert again.wait() == 0
    assert "\x1b" not in again.text()  # what the person saw, escape codes and all, was cleaned


def test_history_is_kept_per_bot(terminal, workdir):
    chat = terminal("chat", "--bot", "gated-bot", "--user", "tia")
    chat.expect("you>")
    chat.send(UP)  # nothing said to this bot yet: no line comes back
    chat.send(b"/quit" + ENTER)
    assert chat.wait() == 0
    assert "abXc" not in chat.text()
    assert not (workdir / "data" / "history" / "echo-bot").exists()


def test_a_slow_turn_shows_the_bot_thinking_on_a_terminal_only(terminal, workdir, env):
    chat = terminal("chat", "--bot", "gated-bot", "--user", "tia")
    chat.expect("you>")

    chat.send(b"question" + ENTER)
    chat.expect("thinking…")
    (workdir / "gate").touch()
    chat.expect(r"gated-bot: done: question\n")
    assert b"\r\x1b[K" in chat.seen  # the spinner's line is cleared before the reply
    chat.expect("you>")
    chat.send(CTRL_D)
    assert chat.wait() == 0

    piped = subprocess.run(
        [str(SCRIPT), "chat", "--bot", "gated-bot", "--user", "tia"],
        input="again\n",
        capture_output=True,
        text=True,
        cwd=workdir,
        env=env,
        timeout=DEADLINE,
        check=False,
    )
    assert (piped.returncode, piped.stdout, piped.stderr) == (0, "gated-bot: done: again\n", "")


def test_basic_print_shows_on_stderr_as_the_bots_log(workdir, env):
    piped = subprocess.run(
        [str(SCRIPT), "chat", "--bot", "printer", "--user", "tia"],
        input="hello\n",
        capture_output=True,
        text=True,
        cwd=workdir,
        env=env,
        timeout=DEADLINE,
        check=False,
    )

    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == "printer: hi there\n"
    assert piped.stderr == "[printer log] seen by the operator\n"


def test_forget_asks_on_a_terminal_and_no_keeps_everything(terminal, workdir, env):
    subprocess.run(
        [str(SCRIPT), "chat", "--bot", "echo-bot", "--user", "tia"],
        input=b"hi\n",
        cwd=workdir,
        env=env,
        capture_output=True,
        timeout=DEADLINE,
        check=True,
    )

    forget = terminal("forget", "tia")
    forget.expect(r"Forget everything about tia \([0-9a-f-]+\)\? \[y/N\]: ")
    forget.send(b"n" + ENTER)
    assert forget.wait() == 1

    export = subprocess.run(
        [str(SCRIPT), "export", "tia"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=True,
    )
    assert '"external_id": "tia"' in export.stdout


def test_init_makes_a_folder_both_bots_chat_in(tmp_path, env):
    for name in ("MNEMOBOT_DATABASE_URL", "MNEMOBOT_BOTS_DIR"):
        del env[name]  # the folder's own config/mnemobot.toml says where everything is

    def mnemobot(*args: str, cwd: Path, input: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(SCRIPT), *args],
            input=input,
            capture_output=True,
            text=True,
            cwd=cwd,
            env=env,
            timeout=DEADLINE,
            check=False,
        )

    made = mnemobot("init", "project", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    project = tmp_path / "project"
    assert (project / "config" / "mnemobot.toml").is_file()
    assert made.stdout.splitlines()[-1] == (
        "ready: cd project && mnemobot chat (hello-bot), or mnemobot chat --bot greeter (BASIC)"
    )

    # The Python bot (the default) learns a name; the BASIC bot knows it from user memory.
    python = mnemobot("chat", "--user", "zoe", cwd=project, input="hi\nZoe\nhi again\n")
    assert (python.returncode, python.stderr) == (0, "")
    assert python.stdout == (
        "hello-bot: Hi! I'm hello-bot. What's your name?\n"
        "hello-bot: Nice to meet you, Zoe!\n"
        "hello-bot: Welcome back, Zoe! Visit number 1.\n"
    )
    basic = mnemobot("chat", "--bot", "greeter", "--user", "zoe", cwd=project, input="hi\n")
    assert (basic.returncode, basic.stdout, basic.stderr) == (
        0,
        "greeter: Welcome back, Zoe!\n",
        "",
    )

    # A second init changes nothing it finds; new-bot adds a bot that chats at once.
    again = mnemobot("init", cwd=project)
    assert again.returncode == 0 and "created" not in again.stdout
    assert "config/mnemobot.toml exists already; left as it is" in again.stderr
    added = mnemobot("new-bot", "helper", "--basic", cwd=project)
    assert added.returncode == 0, added.stderr
    assert (project / "bots" / "helper" / "start.bas").is_file()
    listed = mnemobot("bots", cwd=project)
    assert [line.split("\t")[:2] for line in listed.stdout.splitlines()] == [
        ["greeter", "dialog"],
        ["hello-bot", "python"],
        ["helper", "dialog"],
    ]
    helper = mnemobot("chat", "--bot", "helper", "--user", "new", cwd=project, input="hi\n")
    assert helper.stdout == "helper: Welcome! What's your name?\n"
    taken = mnemobot("new-bot", "helper", cwd=project)
    assert (taken.returncode, taken.stderr) == (
        1,
        "error: bots/helper exists already; choose another name\n",
    )
