"""The supervisor behind `rehab up`, with small stand-ins for the services and a real embedded nats-server.

`rehab up` itself runs as a real process (`python -m ops.cli up`) in a folder that holds stand-in `services` and
`gateway` packages: `python -m services.intake` finds the stand-in there before the real one, so everything else —
settings, ports, secrets, NATS, signals — is the real thing.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.supervisor import (HUNG_AFTER, LOWEST_CHOSEN_PORT, ProcessSpec, StartupError, Supervisor, check_ports,
                            free_block, free_port, free_ports, port_is_free)

STANDIN = textwrap.dedent(
    '''
    """A stand-in for a Rehab Support process: GET /healthz answers 200 with its pid and its REHAB_ settings."""
    import json
    import os
    import sys
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


    class Health(BaseHTTPRequestHandler):
        def do_GET(self):
            settings = {k: v for k, v in os.environ.items() if k.startswith("REHAB_")}
            body = json.dumps({"pid": os.getpid(), "env": settings}).encode()
            self.send_response(200 if self.path == "/healthz" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass


    def serve(port):
        print("standin output", flush=True)  # belongs in the log file, never on the supervisor's console
        ThreadingHTTPServer(("127.0.0.1", port), Health).serve_forever()


    if __name__ == "__main__":
        serve(int(sys.argv[1]))
    '''
)

PROCESSES = ("nats", "intake", "referrals", "funds", "reports", "gateway")
SECRET_FILES = ("intake/kek.json", "intake/blind_index.key", "intake/audit.key", "referrals/kek.json",
                "funds/kek.json", "gateway/audit.key", "gateway/token_signing.pem", "gateway/token_signing.pub.pem")
START_TIMEOUT = 30.0


# --- helpers -------------------------------------------------------------------------------------------------------


def health(port: int) -> dict:
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
        f"http://127.0.0.1:{port}/healthz", timeout=2
    ) as response:
        assert response.status == 200
        return json.loads(response.read())


def eventually(check, timeout: float = 10.0):
    """Call `check` until it returns something true (exceptions count as not yet); return that."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except Exception:
            result = None
            if time.monotonic() > deadline:
                raise
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{check} did not come true within {timeout}s")
        time.sleep(0.05)


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def standin_spec(name: str, port: int, stage: int = 0) -> ProcessSpec:
    return ProcessSpec(
        name=name,
        argv=[sys.executable, "-c", STANDIN, str(port)],
        ready_url=f"http://127.0.0.1:{port}/healthz",
        ports={port: f"TEST_{name.upper()}_PORT"},
        stage=stage,
    )


class Rehab:
    """`rehab up` as a real process, its console lines collected as they come."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ops.cli", "up"],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._ended = False
        self._new_line = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._new_line:
                self.lines.append(line.rstrip("\n"))
                self._new_line.notify_all()
        with self._new_line:
            self._ended = True
            self._new_line.notify_all()

    def wait_for(self, text: str, timeout: float = START_TIMEOUT) -> str:
        """The first console line holding `text`, once it has come."""
        deadline = time.monotonic() + timeout
        with self._new_line:
            while True:
                for line in self.lines:
                    if text in line:
                        return line
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._ended:
                    raise AssertionError(f"no line with {text!r}; the console said:\n" + "\n".join(self.lines))
                self._new_line.wait(remaining)

    def output(self) -> str:
        with self._new_line:
            return "\n".join(self.lines)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# --- fixtures ------------------------------------------------------------------------------------------------------


@pytest.fixture
def ports() -> dict[str, int]:
    return dict(zip(PROCESSES, free_ports(len(PROCESSES)), strict=True))


METRICS = ("intake", "referrals", "funds", "reports", "gateway")  # each has a metrics listener of its own; NATS has none


@pytest.fixture
def metrics_ports(ports: dict[str, int]) -> dict[str, int]:
    while True:
        chosen = dict(zip(METRICS, free_ports(len(METRICS)), strict=True))
        if not set(chosen.values()) & set(ports.values()):
            return chosen


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A folder where `python -m services.intake` (and the others) finds a stand-in, not the real service."""
    (tmp_path / "rehab_standin.py").write_text(STANDIN)
    for package in ("services", "services/intake", "services/referrals", "services/funds", "services/reports",
                    "gateway"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
        if package != "services":
            variable = f"REHAB_{Path(package).name.upper()}_PORT"
            (tmp_path / package / "__main__.py").write_text(
                f"import os, rehab_standin\nrehab_standin.serve(int(os.environ[{variable!r}]))\n"
            )
    # As the real gateway does on its first start without REHAB_ADMIN_PASSWORD.
    (tmp_path / "gateway" / "__main__.py").write_text(
        "import os, pathlib, rehab_standin\n"
        "secrets = pathlib.Path(os.environ['REHAB_STATE_DIR']) / 'secrets'\n"
        "(secrets / 'admin-password.txt').write_text('not a real password')\n"
        "rehab_standin.serve(int(os.environ['REHAB_GATEWAY_PORT']))\n"
    )
    return tmp_path


@pytest.fixture
def env(workdir: Path, ports: dict[str, int], metrics_ports: dict[str, int]) -> dict[str, str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("REHAB_")}
    return {
        **clean,
        "REHAB_STATE_DIR": "var",  # relative on purpose: every process must get it absolute
        **{f"REHAB_{name.upper()}_PORT": str(port) for name, port in ports.items()},
        **{f"REHAB_{name.upper()}_METRICS_PORT": str(port) for name, port in metrics_ports.items()},
    }


@pytest.fixture
def rehab(workdir: Path, env: dict[str, str]) -> Iterator[Rehab]:
    running = Rehab(workdir, env)
    try:
        running.wait_for("Rehab Support is up")
        yield running
    finally:
        running.stop()


# --- rehab up ------------------------------------------------------------------------------------------------------


def test_up_starts_everything_and_tells_each_process_where_the_others_are(
    rehab: Rehab, ports: dict[str, int], metrics_ports: dict[str, int], workdir: Path
) -> None:
    state_dir = workdir / "var"
    assert f"Rehab Support is up: http://127.0.0.1:{ports['gateway']}" in rehab.output()
    rehab.wait_for(f"logs: {state_dir / 'logs'}", timeout=5)
    rehab.wait_for(f"the first admin's password is in {state_dir / 'secrets' / 'admin-password.txt'}", timeout=5)

    for name in ("intake", "referrals", "funds", "reports", "gateway"):
        settings = health(ports[name])["env"]
        assert settings["REHAB_STATE_DIR"] == str(state_dir)
        assert settings["REHAB_NATS_URL"] == f"nats://127.0.0.1:{ports['nats']}"
        assert settings["REHAB_PORT"] == str(ports[name])
        assert settings["REHAB_METRICS_PORT"] == str(metrics_ports[name])  # its own, not another's
        for other in ("intake", "referrals", "funds", "reports", "gateway"):
            assert settings[f"REHAB_{other.upper()}_PORT"] == str(ports[other])
    gateway = health(ports["gateway"])["env"]
    for service in ("intake", "referrals", "funds", "reports"):
        assert gateway[f"REHAB_{service.upper()}_URL"] == f"http://127.0.0.1:{ports[service]}"

    # A real nats-server with JetStream, keeping its store under the state folder.
    with socket.create_connection(("127.0.0.1", ports["nats"]), timeout=2) as connection:
        info = connection.makefile().readline()
    assert info.startswith("INFO ") and json.loads(info[5:])["jetstream"] is True
    assert (state_dir / "nats" / "jetstream").is_dir()

    # What the processes print goes to their log files, not to the console.
    assert "standin output" in (state_dir / "logs" / "intake.log").read_text()
    assert "standin output" not in rehab.output()


def test_a_killed_process_is_restarted(rehab: Rehab, ports: dict[str, int]) -> None:
    first = health(ports["intake"])["pid"]
    os.kill(first, signal.SIGKILL)

    rehab.wait_for("intake exited with code -9; restarting in 0.5s", timeout=10)
    second = eventually(lambda: health(ports["intake"])["pid"])
    assert second != first


def test_sigterm_stops_every_process(rehab: Rehab) -> None:
    children = children_of(rehab.process.pid)
    assert len(children) == len(PROCESSES)

    rehab.process.send_signal(signal.SIGTERM)

    assert rehab.process.wait(10) == 0
    rehab.wait_for("stopped", timeout=5)
    assert [pid for pid in children if alive(pid)] == []


def test_processes_die_with_a_killed_supervisor(rehab: Rehab) -> None:
    children = children_of(rehab.process.pid)
    assert len(children) == len(PROCESSES)

    rehab.process.kill()
    rehab.process.wait()

    eventually(lambda: not any(alive(pid) for pid in children))


def test_secrets_are_created_owner_only_and_kept_across_starts(workdir: Path, env: dict[str, str]) -> None:
    secrets_dir = workdir / "var" / "secrets"
    (workdir / "var").mkdir(mode=0o755)  # made beforehand, as an operator's shell makes a folder
    (workdir / "var").chmod(0o755)
    first = Rehab(workdir, env)
    try:
        first.wait_for("Rehab Support is up")
    finally:
        first.stop()
    assert "created secrets in" in first.output()
    assert secrets_dir.stat().st_mode & 0o777 == 0o700
    # Every file the system wrote (databases, logs, NATS's store) is its owner's alone, whatever the shell's umask.
    assert (workdir / "var").stat().st_mode & 0o777 == 0o700
    written = [path for path in (workdir / "var").rglob("*") if path.is_file()]
    assert written and [path for path in written if path.stat().st_mode & 0o077] == []
    files = [secrets_dir / name for name in SECRET_FILES]
    assert all(path.stat().st_mode & 0o777 == 0o600 for path in files)
    contents = {path: path.read_bytes() for path in files}

    second = Rehab(workdir, env)
    try:
        second.wait_for("Rehab Support is up")
    finally:
        second.stop()
    assert "secrets: using the existing ones" in second.output()
    assert {path: path.read_bytes() for path in files} == contents


def test_a_port_in_use_is_refused_before_anything_starts(
    workdir: Path, env: dict[str, str], ports: dict[str, int]
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", ports["gateway"]))
        squatter.listen()
        result = subprocess.run(
            [sys.executable, "-m", "ops.cli", "up"],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )

    assert result.returncode == 1
    assert f"port {ports['gateway']} (gateway) is in use; set REHAB_GATEWAY_PORT" in result.stderr
    assert not (workdir / "var" / "logs" / "nats.log").exists()


def test_a_metrics_port_in_use_is_refused_before_anything_starts(
    workdir: Path, env: dict[str, str], metrics_ports: dict[str, int]
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", metrics_ports["intake"]))
        squatter.listen()
        result = subprocess.run(
            [sys.executable, "-m", "ops.cli", "up"], cwd=workdir, env=env, capture_output=True, text=True, timeout=30
        )

    assert result.returncode == 1
    assert f"port {metrics_ports['intake']} (intake) is in use; set REHAB_INTAKE_METRICS_PORT" in result.stderr
    assert not (workdir / "var" / "logs" / "nats.log").exists()


def test_metrics_ports_default_apart_and_zero_means_no_listener(tmp_path: Path) -> None:
    from ops.settings import SupervisorSettings
    from ops.system import system_specs

    defaults = SupervisorSettings(_env_file=None, nats_url="nats://127.0.0.1:4999")
    specs = {spec.name: spec for spec in system_specs(defaults, tmp_path)}
    wanted = [port for spec in specs.values() for port in spec.ports]
    assert len(wanted) == len(set(wanted)) == 2 * len(METRICS), "a main port and a metrics port each, all apart"
    for name in METRICS:
        metrics_port = int(specs[name].env["REHAB_METRICS_PORT"])
        assert specs[name].ports[metrics_port] == f"REHAB_{name.upper()}_METRICS_PORT"

    off = SupervisorSettings(_env_file=None, nats_url="nats://127.0.0.1:4999", intake_metrics_port=0)
    intake = next(spec for spec in system_specs(off, tmp_path) if spec.name == "intake")
    assert intake.env["REHAB_METRICS_PORT"] == "0" and list(intake.ports) == [off.intake_port]


# --- the Supervisor with stand-in processes ------------------------------------------------------------------------


async def test_a_process_that_dies_during_startup_is_named_with_its_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    healthy, broken = free_ports(2)
    specs = [
        standin_spec("healthy", healthy),
        ProcessSpec("broken", [sys.executable, "-c", "raise SystemExit(3)"], f"http://127.0.0.1:{broken}/", stage=1),
    ]

    code = await Supervisor(specs, log_dir=tmp_path / "logs").run()

    assert code == 1
    assert f"broken exited with code 3 during start-up; see {tmp_path / 'logs' / 'broken.log'}" in (
        capsys.readouterr().err
    )
    assert port_is_free(healthy)  # what had started is stopped again


async def test_a_process_whose_port_was_taken_after_the_check_is_told_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The port is free when `rehab up` checks it, and another process binds it in the seconds before this one
    does (as an outgoing connection may): the console says so, and which setting moves it."""
    port = free_port()
    takes_the_port = (f"import socket, time; s = socket.socket(); s.bind(('127.0.0.1', {port})); s.listen(); "
                      "time.sleep(60)")
    dies = textwrap.dedent(f"""
        import subprocess, sys, time
        subprocess.Popen([sys.executable, "-c", {takes_the_port!r}])
        time.sleep(1)
        raise SystemExit(3)  # as uvicorn does when it cannot bind
    """)
    late = ProcessSpec("late", [sys.executable, "-c", dies], f"http://127.0.0.1:{port}/",
                       ports={port: "REHAB_LATE_PORT"})

    assert await Supervisor([late], log_dir=tmp_path / "logs").run() == 1

    assert (f"late exited with code 3 during start-up: port {port} was free when checked but is now in use by another "
            f"process; set REHAB_LATE_PORT; see {tmp_path / 'logs' / 'late.log'}") in capsys.readouterr().err
    # The stranger was the process's own child, killed with its process group (at once, but not in the same instant).
    eventually(lambda: port_is_free(port))


async def test_a_process_that_never_gets_ready_is_given_up(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sleeper = ProcessSpec(
        "sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], f"http://127.0.0.1:{free_port()}/"
    )

    code = await Supervisor([sleeper], log_dir=tmp_path, startup_timeout=1, stop_timeout=2).run()

    assert code == 1
    assert f"sleeper was not ready within 1s; see {tmp_path / 'sleeper.log'}" in capsys.readouterr().err


async def test_restarts_back_off_and_stop_ends_everything(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    supervisor = Supervisor([standin_spec("flaky", port)], log_dir=tmp_path)
    running = asyncio.create_task(supervisor.run())
    out = ""

    async def ready(times: int) -> None:
        """Wait until the supervisor has said `times` times that the process is ready."""
        nonlocal out
        deadline = time.monotonic() + 10
        while out.count("flaky is ready") < times:
            assert time.monotonic() < deadline, out
            await asyncio.sleep(0.05)
            out += capsys.readouterr().out

    await ready(1)
    for times in (2, 3):
        os.kill(health(port)["pid"], signal.SIGKILL)
        await ready(times)
    last = health(port)["pid"]
    supervisor.stop()

    assert await asyncio.wait_for(running, 10) == 0
    out += capsys.readouterr().out
    assert "flaky exited with code -9; restarting in 0.5s" in out
    assert "flaky exited with code -9; restarting in 1.0s" in out
    assert "standin output" not in out  # what the process prints goes to its log file only
    assert (tmp_path / "flaky.log").read_text().count("supervisor: starting flaky") == 3
    assert not alive(last)
    assert port_is_free(port)


class ConsoleLines:
    """The supervisor's console lines as they come (stdout and stderr, through capsys)."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys, self.out = capsys, ""

    async def said(self, text: str, times: int = 1) -> None:
        """Wait until `text` has been said `times` times (20 s at most)."""
        deadline = time.monotonic() + 20
        while self.out.count(text) < times:
            assert time.monotonic() < deadline, self.out
            await asyncio.sleep(0.05)
            captured = self.capsys.readouterr()
            self.out += captured.out + captured.err


async def test_a_hung_process_is_killed_and_restarted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Stopped (SIGSTOP), a process never exits: once it has left enough questions in a row unanswered it is killed,
    and restarted like one that died."""
    port = free_port()
    supervisor = Supervisor([standin_spec("stuck", port)], log_dir=tmp_path, startup_timeout=1,
                            liveness_interval=0.1, liveness_timeout=0.2)
    running = asyncio.create_task(supervisor.run())
    said = ConsoleLines(capsys).said

    await said("stuck is ready")
    await asyncio.sleep(1.2)  # past its start-up: from now on it is asked whether it is alive
    hung = health(port)["pid"]
    os.kill(hung, signal.SIGSTOP)
    await said(f"stuck has not answered for {HUNG_AFTER} checks in a row; killing it")
    await said("stuck is ready", 2)
    assert health(port)["pid"] != hung and not alive(hung)
    supervisor.stop()
    assert await asyncio.wait_for(running, 10) == 0


async def test_a_process_that_hangs_soon_after_it_is_ready_is_killed_within_its_start_up_window(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Once ready it is asked whether it is alive at once: one that hung soon after a restart was left hung until its
    start-up window (a minute in `rehab up`) had passed."""
    port = free_port()
    supervisor = Supervisor([standin_spec("stuck", port)], log_dir=tmp_path, startup_timeout=60,
                            liveness_interval=0.1, liveness_timeout=0.2)
    running = asyncio.create_task(supervisor.run())
    said = ConsoleLines(capsys).said

    await said("stuck is ready")
    hung = health(port)["pid"]
    os.kill(hung, signal.SIGSTOP)  # well inside its 60 s start-up window
    await said(f"stuck has not answered for {HUNG_AFTER} checks in a row; killing it")
    await said("stuck is ready", 2)
    assert not alive(hung)
    supervisor.stop()
    assert await asyncio.wait_for(running, 10) == 0


def test_a_port_wanted_twice_is_refused() -> None:
    port = free_port()
    with pytest.raises(StartupError, match=f"port {port} is wanted by both a and b"):
        check_ports([standin_spec("a", port), standin_spec("b", port)])


def test_ports_handed_out_for_tests_lie_below_the_kernels_outgoing_range() -> None:
    """A test or bench system is given its ports seconds before it binds them: in the kernel's range for outgoing
    connections, any connection made meanwhile could be given one (a gateway then exits with code 3)."""
    first_outgoing = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = free_ports(30)
    base = free_block(20)
    block = range(base, base + 20)

    assert len(set(ports)) == 30 and all(port_is_free(port) for port in (*ports, *block))
    assert all(LOWEST_CHOSEN_PORT <= port < first_outgoing for port in (*ports, *block))
    assert not set(ports) & set(block) and not set(free_ports(30)) & {*ports, *block}  # none handed out twice


def test_an_external_nats_is_passed_on_and_none_is_started(workdir: Path, env: dict[str, str]) -> None:
    external = "nats://operator:s3cret@127.0.0.1:4999"
    rehab = Rehab(workdir, {**env, "REHAB_NATS_URL": external})
    try:
        rehab.wait_for("Rehab Support is up")
        children = children_of(rehab.process.pid)
        settings = health(int(env["REHAB_INTAKE_PORT"]))["env"]
    finally:
        rehab.stop()

    assert len(children) == len(PROCESSES) - 1
    assert settings["REHAB_NATS_URL"] == external
    assert "s3cret" not in rehab.output()
    assert not (workdir / "var" / "logs" / "nats.log").exists()
