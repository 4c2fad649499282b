#!/usr/bin/env python3
"""Run a command against a throwaway PostgreSQL and Redis.

Usage:
    python scripts/with_services.py -- <command> [args...]

Starts PostgreSQL and Redis from the system's binaries in a fresh temporary
directory, listening on 127.0.0.1 on random free ports, and runs the command
with these variables added to its environment:

    DATABASE_URL=postgres://leadflow@127.0.0.1:<port>/leadflow
    REDIS_URL=redis://127.0.0.1:<port>/0

When PgBouncer is installed (Debian package ``pgbouncer``), it also starts one in
transaction pooling mode in front of that PostgreSQL (any database name, the same
role) and adds:

    PGBOUNCER_DATABASE_URL=postgres://leadflow@127.0.0.1:<port>/leadflow

The PostgreSQL role ``leadflow`` is the cluster's bootstrap superuser (trust
authentication), so the test runner can create ``test_leadflow``.

Both servers are stopped and the directory removed whatever happens (normal
exit, failure, Ctrl-C, SIGTERM, SIGHUP). The script exits with the command's
exit code (128 + N when the command was killed by signal N).

Standard library only; Python 3.11+.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROG = "with_services"
DB_USER = "leadflow"
DB_NAME = "leadflow"
FALLBACK_PG_OS_USER = "leadflow-pg"
STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
# Longest directory we accept for PostgreSQL's unix socket (sun_path is 108 bytes).
MAX_SOCKET_DIR_LEN = 80

PG_SERVER_BINARIES = ("initdb", "pg_ctl", "postgres")
PG_CLIENT_BINARIES = ("pg_isready", "createdb")


class ServiceError(RuntimeError):
    """A service could not be provided; the message is meant for the user."""


class Interrupted(Exception):
    """A terminating signal arrived while no command was running."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def log(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def is_root() -> bool:
    return os.geteuid() == 0


# --------------------------------------------------------------------------- discovery


def _version_key(path: str) -> tuple[int, ...]:
    # /usr/lib/postgresql/<version>/bin -> numeric version for sorting
    version = Path(path).parent.name
    return tuple(int(part) for part in re.findall(r"\d+", version)) or (0,)


def _has_all(bindir: str, names: tuple[str, ...]) -> bool:
    return all(os.access(os.path.join(bindir, name), os.X_OK) for name in names)


def find_pg_bindir() -> str | None:
    """Directory holding initdb, pg_ctl and postgres, or None."""
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"],
                capture_output=True,
                text=True,
                timeout=15,
                check=False,
            )
            bindir = out.stdout.strip()
            if out.returncode == 0 and bindir and _has_all(bindir, PG_SERVER_BINARIES):
                return bindir
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    for bindir in candidates:
        if _has_all(bindir, PG_SERVER_BINARIES):
            return bindir
    found = [shutil.which(name) for name in PG_SERVER_BINARIES]
    if all(found):
        # Resolve symlinks (e.g. /usr/local/bin/postgres -> /usr/lib/postgresql/N/bin/postgres)
        # so that the server binaries come from one installation.
        real_dir = os.path.dirname(os.path.realpath(found[2]))
        if _has_all(real_dir, PG_SERVER_BINARIES):
            return real_dir
        return os.path.dirname(found[0])
    return None


def pg_tool(bindir: str, name: str) -> str:
    path = os.path.join(bindir, name)
    if os.access(path, os.X_OK):
        return path
    found = shutil.which(name)
    if not found:
        raise ServiceError(f"PostgreSQL client program {name!r} not found")
    return found


def find_redis_server() -> str | None:
    found = shutil.which("redis-server")
    if found:
        return found
    for path in ("/usr/bin/redis-server", "/usr/local/bin/redis-server"):
        if os.access(path, os.X_OK):
            return path
    return None


def find_pgbouncer() -> str | None:
    found = shutil.which("pgbouncer")
    if found:
        return found
    path = "/usr/sbin/pgbouncer"
    return path if os.access(path, os.X_OK) else None


def apt_install(packages: list[str]) -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=300"]
    log("running apt-get update")
    subprocess.run(
        [*apt, "update"], env=env, stdin=subprocess.DEVNULL, stdout=sys.stderr, check=True
    )
    log(f"installing {' '.join(packages)}")
    subprocess.run(
        [*apt, "install", "-y", "--no-install-recommends", *packages],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=sys.stderr,
        check=True,
    )


def locate_binaries(critical=contextlib.nullcontext) -> tuple[str, str]:
    pg_bindir = find_pg_bindir()
    redis_server = find_redis_server()
    missing = []
    if pg_bindir is None:
        missing.append("postgresql")
    if redis_server is None:
        missing.append("redis-server")
    if missing:
        if not is_root():
            raise ServiceError(
                f"missing system package(s): {' '.join(missing)}; "
                f"install them (e.g. sudo apt-get install -y {' '.join(missing)}) "
                "or run this script as root to have it install them"
            )
        if not shutil.which("apt-get"):
            raise ServiceError(f"missing {' '.join(missing)} and apt-get is not available")
        try:
            with critical():  # never kill apt-get/dpkg halfway
                apt_install(missing)
        except subprocess.CalledProcessError as exc:
            raise ServiceError(f"apt-get failed (exit {exc.returncode})") from exc
        pg_bindir = find_pg_bindir()
        redis_server = find_redis_server()
        if pg_bindir is None or redis_server is None:
            raise ServiceError("PostgreSQL or Redis still not found after apt-get install")
    return pg_bindir, redis_server


# --------------------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def others_can_traverse(path: str) -> bool:
    """Whether a non-root user can reach entries below *path*."""
    current = Path(path).resolve()
    for directory in (current, *current.parents):
        try:
            mode = directory.stat().st_mode
        except OSError:
            return False
        if not mode & 0o001:
            return False
    return True


def make_workdir() -> str:
    base = tempfile.gettempdir()
    if len(base) > MAX_SOCKET_DIR_LEN - 30 or (is_root() and not others_can_traverse(base)):
        base = "/tmp"
    return tempfile.mkdtemp(prefix="leadflow-services-", dir=base)


def ensure_pg_os_user() -> str:
    """Unprivileged OS user that runs PostgreSQL when we are root."""
    for name in ("postgres", FALLBACK_PG_OS_USER):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    log(f"creating system user {FALLBACK_PG_OS_USER}")
    subprocess.run(
        [
            "useradd",
            "--system",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            FALLBACK_PG_OS_USER,
        ],
        stdin=subprocess.DEVNULL,
        check=True,
    )
    return FALLBACK_PG_OS_USER


def as_user(user: str | None, argv: list[str]) -> list[str]:
    if user is None:
        return argv
    runuser = shutil.which("runuser") or (
        "/usr/sbin/runuser" if os.access("/usr/sbin/runuser", os.X_OK) else None
    )
    if runuser:
        return [runuser, "-u", user, "--", *argv]
    su = shutil.which("su") or "su"
    return [su, "-s", "/bin/sh", user, "-c", shlex.join(argv)]


def tail(path: str, lines: int = 25) -> str:
    try:
        with open(path, errors="replace") as handle:
            return "".join(handle.readlines()[-lines:])
    except OSError:
        return "(no log)"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie nobody reaps (e.g. PID 1 in a container) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return True


def become_subreaper() -> None:
    """Adopt orphaned descendants (Linux), so the postmaster that pg_ctl leaves behind
    is reaped by us instead of lingering as a zombie where PID 1 reaps nothing."""
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_child_subreaper = 36
        libc.prctl(pr_set_child_subreaper, 1, 0, 0, 0)


def reap(pid: int = -1, timeout: float = 0.0) -> None:
    """Collect exited children (all of them for pid=-1) without blocking for long."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            got, _status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if got == 0:
            if time.monotonic() >= deadline:
                return
            time.sleep(0.05)
        elif pid != -1:
            return


# --------------------------------------------------------------------------- PostgreSQL


class Postgres:
    def __init__(self, bindir: str, workdir: str) -> None:
        self.bindir = bindir
        self.workdir = workdir
        self.datadir = os.path.join(workdir, "pgdata")
        self.logfile = os.path.join(workdir, "postgres.log")
        self.os_user: str | None = None
        self.port: int | None = None
        self.version = os.path.basename(os.path.dirname(bindir))

    def _run(self, argv: list[str], what: str, timeout: float = STARTUP_TIMEOUT) -> None:
        result = subprocess.run(
            as_user(self.os_user, argv),
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise ServiceError(
                f"{what} failed (exit {result.returncode}):\n{result.stdout}{result.stderr}"
            )

    def init(self) -> None:
        if is_root():
            self.os_user = ensure_pg_os_user()
            entry = pwd.getpwnam(self.os_user)
            os.chown(self.workdir, entry.pw_uid, entry.pw_gid)
        os.chmod(self.workdir, 0o700)
        self._run(
            [
                os.path.join(self.bindir, "initdb"),
                "-D",
                self.datadir,
                "-A",
                "trust",
                "-U",
                DB_USER,
                "-E",
                "UTF8",
                "--locale=C",
                # Byte-order sorting, but Unicode case mapping for LOWER().
                "--lc-ctype=C.UTF-8",
                "--no-sync",
            ],
            "initdb",
        )
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": "'{}'".format(self.workdir.replace("'", "''")),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",
            "logging_collector": "off",
        }
        conf = os.path.join(self.datadir, "postgresql.conf")
        with open(conf, "a") as handle:  # appending keeps the file's owner
            handle.write("\n# with_services.py (throwaway cluster)\n")
            for key, value in settings.items():
                handle.write(f"{key} = {value}\n")

    def start(self) -> None:
        last_error: Exception | None = None
        for _attempt in range(3):
            self.port = free_port()
            argv = as_user(
                self.os_user,
                [
                    os.path.join(self.bindir, "pg_ctl"),
                    "start",
                    "-D",
                    self.datadir,
                    "-l",
                    self.logfile,
                    "-o",
                    f"-p {self.port}",
                    "-w",
                    "-t",
                    str(int(STARTUP_TIMEOUT)),
                ],
            )
            # Own session: a Ctrl-C on the terminal must not reach the server, so that
            # the command can finish its own cleanup (e.g. dropping the test database).
            result = subprocess.run(
                argv,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                start_new_session=True,
                timeout=STARTUP_TIMEOUT + 15,
                check=False,
            )
            if result.returncode == 0 and self._wait_ready():
                return
            last_error = ServiceError(
                f"PostgreSQL did not start on port {self.port}:\n"
                f"{result.stdout}{result.stderr}{tail(self.logfile)}"
            )
            self.stop()
        assert last_error is not None
        raise last_error

    def _wait_ready(self) -> bool:
        pg_isready = pg_tool(self.bindir, "pg_isready")
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            result = subprocess.run(
                [pg_isready, "-q", "-h", "127.0.0.1", "-p", str(self.port), "-U", DB_USER],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=15,
                check=False,
            )
            if result.returncode == 0:
                return True
            time.sleep(0.2)
        return False

    def create_database(self) -> None:
        result = subprocess.run(
            [
                pg_tool(self.bindir, "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                DB_USER,
                DB_NAME,
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=STARTUP_TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            raise ServiceError(f"createdb failed:\n{result.stdout}{result.stderr}")

    @property
    def url(self) -> str:
        return f"postgres://{DB_USER}@127.0.0.1:{self.port}/{DB_NAME}"

    def _postmaster_pid(self) -> int | None:
        try:
            with open(os.path.join(self.datadir, "postmaster.pid")) as handle:
                return int(handle.readline().strip())
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        pid = self._postmaster_pid()
        if pid is None:
            return
        try:
            self._stop(pid)
        finally:
            reap(pid, timeout=2.0)

    def _stop(self, pid: int) -> None:
        if not pid_alive(pid):
            return
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                as_user(
                    self.os_user,
                    [
                        os.path.join(self.bindir, "pg_ctl"),
                        "stop",
                        "-D",
                        self.datadir,
                        "-m",
                        "fast",
                        "-w",
                        "-t",
                        str(int(STOP_TIMEOUT)),
                    ],
                ),
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                start_new_session=True,
                timeout=STOP_TIMEOUT + 10,
                check=False,
            )
        # Fall back to signals: SIGQUIT is PostgreSQL's immediate shutdown.
        for sig, wait in ((signal.SIGINT, 0.0), (signal.SIGQUIT, 10.0), (signal.SIGKILL, 5.0)):
            deadline = time.monotonic() + wait
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if not pid_alive(pid):
                return
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        if pid_alive(pid):
            log(f"warning: PostgreSQL (pid {pid}) is still running")


# --------------------------------------------------------------------------- Redis


class ForegroundServer:
    """A server run in the foreground in its own session on a random loopback
    port (three tries), logging to a file in the work directory."""

    name = "server"

    def __init__(self, workdir: str, logname: str) -> None:
        self.workdir = workdir
        self.logfile = os.path.join(workdir, logname)
        self.proc: subprocess.Popen[bytes] | None = None
        self.port: int | None = None

    def argv(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        last_error: Exception | None = None
        for _attempt in range(3):
            self.port = free_port()
            with open(self.logfile, "ab") as log_handle:
                self.proc = subprocess.Popen(
                    self.argv(),
                    cwd=self.workdir,
                    stdin=subprocess.DEVNULL,
                    stdout=log_handle,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            if self._wait_ready():
                return
            last_error = ServiceError(
                f"{self.name} did not start on port {self.port}:\n{tail(self.logfile)}"
            )
            self.stop()
        assert last_error is not None
        raise last_error

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            if self.ready():
                return True
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)


class Redis(ForegroundServer):
    name = "Redis"

    def __init__(self, server: str, workdir: str) -> None:
        super().__init__(workdir, "redis.log")
        self.server = server

    def argv(self) -> list[str]:
        return [
            self.server,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            self.workdir,
            "--daemonize",
            "no",
        ]

    def ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def version(self) -> str:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [self.server, "--version"], capture_output=True, text=True, timeout=10, check=False
            ).stdout
            match = re.search(r"v=(\S+)", out)
            if match:
                return match.group(1)
        return "?"


# --------------------------------------------------------------------------- PgBouncer


class PgBouncer(ForegroundServer):
    """PgBouncer in transaction pooling mode in front of the throwaway PostgreSQL.

    server_round_robin spreads consecutive transactions of one client over the
    pool's server connections, so code that leans on session state (a SET outside
    a transaction, a session advisory lock, a server-side cursor) fails here as it
    would under production load."""

    name = "PgBouncer"

    def __init__(self, binary: str, workdir: str, os_user: str | None, postgres_port: int) -> None:
        super().__init__(workdir, "pgbouncer.log")
        self.binary = binary
        self.os_user = os_user
        self.postgres_port = postgres_port
        self.config = os.path.join(workdir, "pgbouncer.ini")

    def argv(self) -> list[str]:
        users = os.path.join(self.workdir, "pgbouncer-users.txt")
        with open(users, "w") as handle:
            handle.write(f'"{DB_USER}" ""\n')
        with open(self.config, "w") as handle:
            handle.write(
                "[databases]\n"
                f"* = host=127.0.0.1 port={self.postgres_port}\n"
                "[pgbouncer]\n"
                "listen_addr = 127.0.0.1\n"
                f"listen_port = {self.port}\n"
                "unix_socket_dir =\n"
                "auth_type = trust\n"
                f"auth_file = {users}\n"
                f"admin_users = {DB_USER}\n"
                "pool_mode = transaction\n"
                "server_round_robin = 1\n"
                "default_pool_size = 20\n"
                "max_client_conn = 500\n"
                "ignore_startup_parameters = extra_float_digits,options\n"
            )
        return as_user(self.os_user, [self.binary, self.config])

    def ready(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1.0).close()
        except OSError:
            return False
        return True

    @property
    def url(self) -> str:
        return f"postgres://{DB_USER}@127.0.0.1:{self.port}/{DB_NAME}"


# --------------------------------------------------------------------------- main


class Runner:
    TERMINATING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self, command: list[str]) -> None:
        self.command = command
        self.child: subprocess.Popen[bytes] | None = None
        self.received: int | None = None
        self.pending: int | None = None
        self.defer_depth = 0

    @contextlib.contextmanager
    def critical(self):
        """Hold back Interrupted until the block is over."""
        self.defer_depth += 1
        try:
            yield
        finally:
            self.defer_depth -= 1
        if self.defer_depth == 0 and self.pending is not None and self.child is None:
            signum, self.pending = self.pending, None
            raise Interrupted(signum)

    def _on_signal(self, signum: int, _frame: object) -> None:
        if self.received is None:
            self.received = signum
        child = self.child
        if child is None:
            if self.defer_depth:
                self.pending = signum
                return
            raise Interrupted(signum)
        if child.poll() is not None:
            return
        if signum == signal.SIGINT and self._child_got_tty_sigint():
            return
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signum)

    @staticmethod
    def _child_got_tty_sigint() -> bool:
        # A Ctrl-C at the terminal goes to the whole foreground process group, which
        # includes the command; forwarding it again would interrupt its cleanup.
        try:
            return os.tcgetpgrp(sys.stdin.fileno()) == os.getpgrp()
        except (OSError, ValueError, AttributeError):
            return False

    def _install_handlers(self) -> None:
        for sig in self.TERMINATING:
            signal.signal(sig, self._on_signal)

    def _ignore_signals(self) -> None:
        for sig in self.TERMINATING:
            signal.signal(sig, signal.SIG_IGN)

    def run(self) -> int:
        self._install_handlers()
        become_subreaper()
        workdir: str | None = None
        postgres: Postgres | None = None
        redis: Redis | None = None
        pgbouncer: PgBouncer | None = None
        try:
            pg_bindir, redis_server = locate_binaries(self.critical)
            workdir = make_workdir()
            postgres = Postgres(pg_bindir, workdir)
            redis = Redis(redis_server, workdir)
            postgres.init()
            postgres.start()
            postgres.create_database()
            log(
                f"PostgreSQL {postgres.version} listening on 127.0.0.1:{postgres.port} "
                f"(database {DB_NAME}, superuser {DB_USER}, trust auth)"
            )
            redis.start()
            log(f"Redis {redis.version} listening on 127.0.0.1:{redis.port} (db 0)")

            env = dict(os.environ, DATABASE_URL=postgres.url, REDIS_URL=redis.url)
            env.pop("PGBOUNCER_DATABASE_URL", None)
            pgbouncer_binary = find_pgbouncer()
            if pgbouncer_binary:
                pgbouncer = PgBouncer(pgbouncer_binary, workdir, postgres.os_user, postgres.port)
                pgbouncer.start()
                env["PGBOUNCER_DATABASE_URL"] = pgbouncer.url
                log(f"PgBouncer listening on 127.0.0.1:{pgbouncer.port} (transaction pooling)")
            else:
                log("PgBouncer not installed: its tests will be skipped")
            self.defer_depth += 1  # a signal now must not leave the command orphaned
            try:
                self.child = subprocess.Popen(self.command, env=env)
            except OSError as exc:
                log(f"cannot run {self.command[0]!r}: {exc.strerror or exc}")
                return 127 if isinstance(exc, FileNotFoundError) else 126
            finally:
                self.defer_depth -= 1
            if self.pending is not None:
                signum, self.pending = self.pending, None
                with contextlib.suppress(ProcessLookupError):
                    self.child.send_signal(signum)  # it came before the command existed
            returncode = self.child.wait()
            return 128 - returncode if returncode < 0 else returncode
        except Interrupted as exc:
            log(f"interrupted ({exc}); cleaning up")
            return 128 + exc.signum
        except ServiceError as exc:
            log(f"error: {exc}")
            return 1
        except subprocess.TimeoutExpired as exc:
            log(f"error: timed out: {shlex.join(str(a) for a in exc.cmd)}")
            return 1
        except subprocess.CalledProcessError as exc:
            log(f"error: exit {exc.returncode}: {shlex.join(str(a) for a in exc.cmd)}")
            return 1
        finally:
            self._ignore_signals()
            self._cleanup(workdir, postgres, redis, pgbouncer)

    def _cleanup(
        self,
        workdir: str | None,
        postgres: Postgres | None,
        redis: Redis | None,
        pgbouncer: PgBouncer | None = None,
    ) -> None:
        child = self.child
        if child is not None and child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        for service in (pgbouncer, redis, postgres):
            if service is not None:
                try:
                    service.stop()
                except Exception as exc:  # keep going: the directory must still go
                    log(f"warning: stopping {type(service).__name__} failed: {exc}")
        reap()
        if workdir is not None:
            for _attempt in range(5):
                shutil.rmtree(workdir, ignore_errors=True)
                if not os.path.exists(workdir):
                    break
                time.sleep(0.5)
            else:
                log("warning: could not remove the temporary directory")


def parse_command(argv: list[str]) -> list[str] | None:
    if argv and argv[0] in ("-h", "--help"):
        return None
    if "--" in argv:
        argv = argv[argv.index("--") + 1 :]
    return argv or None


def main(argv: list[str] | None = None) -> int:
    command = parse_command(sys.argv[1:] if argv is None else argv)
    if command is None:
        print(f"usage: {PROG}.py -- <command> [args...]", file=sys.stderr)
        print("Runs the command with a throwaway PostgreSQL and Redis;", file=sys.stderr)
        print("sets DATABASE_URL and REDIS_URL in its environment.", file=sys.stderr)
        return 2
    return Runner(command).run()


if __name__ == "__main__":
    sys.exit(main())
