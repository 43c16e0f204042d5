"""`make image-test`: build Vellum's container image and run it for real.

    python tests/image/check_image.py [--if-possible] [--base IMAGE] [--rebuild-base]

Steps, each timed:
1. Docker: a `dockerd` that answers. When none is running and this runs as root, it is
   installed if missing (`apt-get update`, `apt-get install -y docker.io debootstrap`)
   and started, its pid in /run/vellum-image-test/dockerd.pid; it is stopped (by that
   pid) at the end only if this script started it.
2. The base image: `--base IMAGE` (e.g. python:3.11-slim-bookworm, if it can be pulled),
   else `vellum-base:bookworm`, built once with `debootstrap --variant=minbase` from the
   machine's Debian mirror and `docker import`, then reused from Docker's image cache.
3. `make wheelhouse` (the wheels of requirements/runtime.txt, hash-checked, and Vellum's
   own wheel), then `docker build --build-arg BASE_IMAGE=...`.
4. The checks, against a SeaweedFS on the host (Vellum's own EmbeddedS3, free loopback
   ports, stopped by its pid), the container on the host network bound to 127.0.0.1:
   /healthz and /readyz answer 200; Docker's HEALTHCHECK (the image's own command)
   reports healthy; the server is a non-root uid on a read-only root filesystem; a corpus
   article POSTed gives 201, its record and `/original` come back (the original byte for
   byte); `docker stop` (SIGTERM) ends it within the grace period with exit 0; and without
   API keys on VELLUM_HOST=0.0.0.0 the image refuses to start, says why, exits non-zero.

Exit status 0 only when every check passed. With --if-possible (what `make test` uses) a
machine where no dockerd can be had prints one line saying so and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from service.storage.embedded import EmbeddedS3, free_ports  # noqa: E402

IMAGE = "vellum:image-test"
LOCAL_BASE = "vellum-base:bookworm"
DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = os.environ.get("VELLUM_DEBIAN_MIRROR", "http://deb.debian.org/debian")
STATE_DIR = Path("/run/vellum-image-test")
CORPUS = ROOT.parent / "shared" / "corpus" / "articles.jsonl"
BUCKET = "vellum-image-test"
STOP_GRACE = 10  # seconds: Docker's default for `docker stop`
HEALTH_TIMEOUT = 60.0


class Failed(Exception):
    """A check failed: the message says which and why."""


class Unavailable(Exception):
    """No Docker daemon can be had on this machine."""


def say(message: str) -> None:
    print(f"image-test: {message}", flush=True)


@contextlib.contextmanager
def step(name: str, timings: dict[str, float]) -> Iterator[None]:
    started = time.monotonic()
    say(f"{name} ...")
    yield
    timings[name] = time.monotonic() - started
    say(f"{name}: done in {timings[name]:.1f} s")


def run(
    *command: str, check: bool = True, timeout: float = 900, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
        )
    except subprocess.TimeoutExpired as expired:
        raise Failed(f"`{' '.join(command)}` did not finish within {timeout:.0f} s") from expired
    if check and result.returncode != 0:
        raise Failed(
            f"`{' '.join(command)}` exited {result.returncode}:\n"
            f"{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )
    return result


# --- 1. Docker -----------------------------------------------------------------------


def docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    return run("docker", "info", "--format", "{{.ServerVersion}}", check=False).returncode == 0


def is_root() -> bool:
    return os.geteuid() == 0


def apt_install(*packages: str) -> None:
    if not is_root() or shutil.which("apt-get") is None:
        raise Unavailable(f"{', '.join(packages)} missing and no root apt-get to install them")
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    say(f"installing {' '.join(packages)} with apt-get")
    try:
        run("apt-get", "update", "-q", env=env, timeout=600)
        run("apt-get", "install", "-y", "-q", *packages, env=env, timeout=900)
    except (Failed, subprocess.TimeoutExpired) as error:
        raise Unavailable(f"apt-get could not install {' '.join(packages)}: {error}") from error


class Dockerd:
    """The machine's dockerd, or one this script starts (and then stops by pid)."""

    def __init__(self) -> None:
        self.started: subprocess.Popen[bytes] | None = None

    def ensure(self) -> None:
        if docker_answers():
            say("dockerd: already running, used as it is")
            return
        if not is_root():
            raise Unavailable("no dockerd answers and, not being root, this cannot start one")
        missing = [
            package
            for program, package in (("dockerd", "docker.io"), ("debootstrap", "debootstrap"))
            if shutil.which(program) is None
        ]
        if missing or shutil.which("docker") is None:
            apt_install(*(missing or ["docker.io"]))
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        log = (STATE_DIR / "dockerd.log").open("ab")
        self.started = subprocess.Popen(
            [
                "dockerd",
                "--pidfile",
                str(STATE_DIR / "dockerd.pid"),
                "--host",
                "unix:///var/run/docker.sock",
            ],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.started.poll() is not None:
                break
            if docker_answers():
                say(f"dockerd: started, pid {self.started.pid}")
                return
            time.sleep(0.5)
        tail = (STATE_DIR / "dockerd.log").read_text(errors="replace")[-1500:]
        self.stop()
        raise Unavailable(f"dockerd did not start; its log ends:\n{tail}")

    def stop(self) -> None:
        process, self.started = self.started, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        say(f"dockerd: stopped (pid {process.pid}, which this script started)")


# --- 2. the base image ---------------------------------------------------------------


def image_exists(name: str) -> bool:
    return run("docker", "image", "inspect", name, check=False).returncode == 0


def build_local_base() -> None:
    """A minimal Debian with python3 and python3-venv, from the Debian mirror."""
    if shutil.which("debootstrap") is None:
        apt_install("debootstrap")
    with tempfile.TemporaryDirectory(prefix="vellum-base-", dir="/var/tmp") as tmp:
        rootfs = Path(tmp) / "rootfs"
        run(
            "debootstrap",
            "--variant=minbase",
            "--include=python3,python3-venv,ca-certificates",
            DEBIAN_SUITE,
            str(rootfs),
            DEBIAN_MIRROR,
            timeout=1200,
        )
        # What a container never uses: downloaded packages, apt's lists, documentation
        # (copyright files stay), manual pages and message catalogues.
        for pattern in ("var/cache/apt/archives/*.deb", "var/cache/apt/*.bin"):
            for path in rootfs.glob(pattern):
                path.unlink()
        for directory in (
            "var/lib/apt/lists",
            "usr/share/man",
            "usr/share/locale",
            "usr/share/info",
        ):
            target = rootfs / directory
            if target.is_dir():
                shutil.rmtree(target)
                target.mkdir()
        for path in (rootfs / "usr/share/doc").rglob("*"):
            if path.is_file() and path.name != "copyright":
                path.unlink()
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(
            [
                "docker",
                "import",
                "--change",
                "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "--change",
                "ENV LANG=C.UTF-8",
                "--change",
                'CMD ["python3"]',
                "-",
                LOCAL_BASE,
            ],
            stdin=tar.stdout,
            capture_output=True,
            text=True,
            check=False,
        )
        assert tar.stdout is not None
        tar.stdout.close()
        if tar.wait() != 0 or imported.returncode != 0:
            raise Failed(f"docker import of the debootstrap base failed: {imported.stderr}")


# --- 3. the image --------------------------------------------------------------------


def image_size(name: str) -> int:
    return int(run("docker", "image", "inspect", "--format", "{{.Size}}", name).stdout)


def mb(size: int) -> str:
    return f"{size / 1e6:.0f} MB"


# --- 4. the checks -------------------------------------------------------------------


def corpus_article() -> tuple[str, bytes]:
    """The corpus's first article of 2-64 KB with non-ASCII text (read here, never copied
    into the repository); a seed article when the corpus is not beside this checkout."""
    path = Path(os.environ.get("VELLUM_CORPUS", CORPUS))
    if path.is_file():
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                article = json.loads(line)
                text = article["text"].encode()
                if 2000 <= len(text) <= 65536 and not article["text"].isascii():
                    return f"corpus article {article['id']} of {path}", text
    seed = sorted((ROOT / "seeds").glob("*.txt"))[0]
    return f"seed {seed.name} (no corpus at {path})", seed.read_bytes()


def http(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def wait_for(url: str, container: str, timeout: float = HEALTH_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if http("GET", url)[0] == 200:
                return
        if inspect(container, "{{.State.Running}}") != "true":
            raise Failed(f"the container exited before {url} answered:\n{logs(container)}")
        time.sleep(0.3)
    raise Failed(f"{url} did not answer 200 within {timeout:.0f} s:\n{logs(container)}")


def inspect(container: str, template: str) -> str:
    return run("docker", "inspect", "--format", template, container).stdout.strip()


def logs(container: str) -> str:
    result = run("docker", "logs", "--tail", "30", container, check=False)
    return result.stdout + result.stderr


class Checks:
    def __init__(self, image: str) -> None:
        self.image = image
        self.passed: list[str] = []

    def ok(self, what: str) -> None:
        self.passed.append(what)
        say(f"PASS {what}")

    def expect(self, condition: bool, what: str, detail: str = "") -> None:
        if not condition:
            raise Failed(f"FAIL {what}" + (f": {detail}" if detail else ""))
        self.ok(what)

    def serving(self, s3: EmbeddedS3) -> None:
        settings = s3.settings
        (port,) = free_ports(1)
        base = f"http://127.0.0.1:{port}"
        name = f"vellum-image-test-{os.getpid()}"
        env = os.environ | {
            "AWS_ACCESS_KEY_ID": settings.access_key_id or "",
            "AWS_SECRET_ACCESS_KEY": settings.secret_access_key or "",
        }
        # `-e NAME` without a value: the S3 keys come from this process's environment and
        # never appear on a command line. The healthcheck is the image's own command; only
        # its interval is shortened, so that "healthy" comes within seconds.
        run(
            "docker", "run", "--detach", "--name", name,
            "--network", "host", "--read-only", "--tmpfs", "/tmp",
            "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "--health-interval", "2s", "--health-start-period", "30s",
            "-e", "VELLUM_HOST=127.0.0.1", "-e", f"VELLUM_PORT={port}",
            "-e", f"VELLUM_S3_ENDPOINT={settings.endpoint}", "-e", f"VELLUM_S3_BUCKET={BUCKET}",
            "-e", "AWS_ACCESS_KEY_ID", "-e", "AWS_SECRET_ACCESS_KEY",
            self.image,
            env=env,
        )  # fmt: skip
        try:
            self._while_serving(name, base)
            self._stops_on_sigterm(name)
        finally:
            run("docker", "rm", "--force", name, check=False)

    def _while_serving(self, name: str, base: str) -> None:
        wait_for(f"{base}/healthz", name)
        for path in ("/healthz", "/readyz"):
            status, _, body = http("GET", base + path)
            self.expect(status == 200, f"GET {path} is 200", f"{status} {body[:300]!r}")

        deadline = time.monotonic() + HEALTH_TIMEOUT
        health = ""
        while time.monotonic() < deadline:
            health = inspect(name, "{{.State.Health.Status}}")
            if health in {"healthy", "unhealthy"}:
                break
            time.sleep(0.5)
        self.expect(
            health == "healthy",
            "Docker's HEALTHCHECK reports healthy",
            f"{health}: {inspect(name, '{{json .State.Health}}')}",
        )
        image_check = run(
            "docker", "image", "inspect", "--format", "{{json .Config.Healthcheck.Test}}",
            self.image,
        ).stdout.strip()  # fmt: skip
        container_check = inspect(name, "{{json .Config.Healthcheck.Test}}")
        self.expect(
            image_check == container_check and "/healthz" in image_check,
            "the health check run is the image's own (/healthz)",
            f"{container_check} vs {image_check}",
        )

        status_lines = run("docker", "exec", name, "cat", "/proc/1/status").stdout
        uids = next(line for line in status_lines.splitlines() if line.startswith("Uid:"))
        real, effective = (int(n) for n in uids.split()[1:3])
        cmdline = run("docker", "exec", name, "cat", "/proc/1/cmdline").stdout
        self.expect(
            real == effective == 10001 and "serve" in cmdline,
            "the server (pid 1, `vellum serve`) runs as uid 10001, not root",
            f"uid {real}/{effective}, cmdline {cmdline!r}",
        )
        write = run(
            "docker", "exec", name, "python3", "-c",
            "open('/opt/venv/written-at-run-time', 'w')", check=False,
        )  # fmt: skip
        self.expect(
            inspect(name, "{{.HostConfig.ReadonlyRootfs}}") == "true"
            and write.returncode != 0
            and "Read-only file system" in write.stderr,
            "the root filesystem is read-only (a write in /opt/venv fails with EROFS)",
            write.stderr[-300:],
        )

        label, text = corpus_article()
        status, headers, body = http(
            "POST",
            f"{base}/v1/documents",
            text,
            {"Content-Type": "text/plain; charset=utf-8"},
        )
        self.expect(
            status == 201, f"POST of {label} ({len(text)} bytes) is 201", f"{status} {body[:500]!r}"
        )
        created = json.loads(body)
        document = created["id"]
        digest = hashlib.sha256(text).hexdigest()
        self.expect(
            created["original"]["sha256"] == digest
            and headers.get("Location", "").endswith(document),
            "the 201 names the original's sha256 and the document's Location",
            json.dumps(created)[:500],
        )
        status, headers, record = http("GET", f"{base}/v1/documents/{document}")
        again = http("GET", f"{base}/v1/documents/{document}")
        self.expect(
            status == 200
            and json.loads(record)["id"] == document
            and again[0] == 200
            and again[2] == record
            and again[1].get("ETag") == headers.get("ETag"),
            "GET of the record is 200, names the document, and is the same bytes every time",
            f"{status} {record[:300]!r}",
        )
        status, headers, original = http("GET", f"{base}/v1/documents/{document}/original")
        self.expect(
            status == 200 and original == text,
            "GET /original returns the POSTed bytes exactly",
            f"{status}, {len(original)} bytes back of {len(text)}",
        )
        status, _, body = http(
            "POST", f"{base}/v1/documents", text, {"Content-Type": "text/plain; charset=utf-8"}
        )
        self.expect(
            status == 200 and json.loads(body)["id"] == document,
            "the same POST again is 200 with the same id (no second document)",
            f"{status} {body[:300]!r}",
        )

    def _stops_on_sigterm(self, name: str) -> None:
        started = time.monotonic()
        run("docker", "stop", "--time", str(STOP_GRACE), name, timeout=STOP_GRACE + 30)
        elapsed = time.monotonic() - started
        code = inspect(name, "{{.State.ExitCode}}")
        self.expect(
            code == "0" and elapsed < STOP_GRACE,
            f"docker stop (SIGTERM) ends it in {elapsed:.1f} s (grace {STOP_GRACE} s), exit 0",
            f"exit {code} after {elapsed:.1f} s (137 is SIGKILL at the end of the grace):\n"
            + logs(name),
        )

    def refuses_public_bind_without_keys(self) -> None:
        # No network at all: even a server that wrongly went on to bind would be unreachable.
        name = f"vellum-image-test-public-{os.getpid()}"
        try:
            result = run(
                "docker", "run", "--rm", "--name", name,
                "--network", "none", "--read-only", "--tmpfs", "/tmp",
                "-e", "VELLUM_HOST=0.0.0.0", "-e", "VELLUM_S3_ENDPOINT=http://127.0.0.1:9",
                "-e", f"VELLUM_S3_BUCKET={BUCKET}",
                self.image, check=False, timeout=60,
            )  # fmt: skip
        finally:
            run("docker", "rm", "--force", name, check=False)
        output = result.stdout + result.stderr
        self.expect(
            result.returncode != 0
            and "refusing to bind 0.0.0.0" in output
            and "VELLUM_KEYS_FILE" in output,
            f"without keys on VELLUM_HOST=0.0.0.0 it refuses, says why, exits {result.returncode}",
            f"exit {result.returncode}: {output[-800:]}",
        )


@contextlib.contextmanager
def host_seaweedfs() -> Iterator[EmbeddedS3]:
    with tempfile.TemporaryDirectory(prefix="vellum-image-test-s3-") as data:
        server = EmbeddedS3(Path(data), bucket=BUCKET)
        server.start()
        try:
            asyncio.run(server.wait_ready())
            say(
                f"SeaweedFS on the host: {server.settings.endpoint} (pid {server.process.pid if server.process else '?'})"
            )
            yield server
        finally:
            server.stop()


@contextlib.contextmanager
def one_run_at_a_time() -> Iterator[None]:
    """Runs on one machine take turns: a run must not stop the dockerd another one uses."""
    directory = STATE_DIR if is_root() else Path(tempfile.gettempdir())
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "image-test.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say("another image-test runs on this machine: waiting for it")
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--if-possible", action="store_true", help="one line and exit 0 without Docker"
    )
    parser.add_argument(
        "--base", help=f"base image (default: {LOCAL_BASE}, built with debootstrap)"
    )
    parser.add_argument("--rebuild-base", action="store_true", help=f"build {LOCAL_BASE} again")
    parser.add_argument("--image", default=IMAGE, help="tag of the image built")
    args = parser.parse_args()
    with one_run_at_a_time():
        return image_test(args)


def image_test(args: argparse.Namespace) -> int:
    timings: dict[str, float] = {}
    dockerd = Dockerd()
    total = time.monotonic()
    try:
        with step("docker daemon", timings):
            dockerd.ensure()
        base = args.base or LOCAL_BASE
        if args.base is None and (args.rebuild_base or not image_exists(LOCAL_BASE)):
            with step(
                f"base image {LOCAL_BASE} (debootstrap {DEBIAN_SUITE}, docker import)", timings
            ):
                build_local_base()
            say(f"base image {LOCAL_BASE}: {mb(image_size(LOCAL_BASE))}")
        elif args.base is None:
            say(
                f"base image {LOCAL_BASE}: reused from Docker's cache ({mb(image_size(LOCAL_BASE))})"
            )
        with step("wheelhouse (make wheelhouse)", timings):
            run("make", "--no-print-directory", "wheelhouse", cwd=ROOT, timeout=900)
        with step(f"docker build on {base}", timings):
            run(
                "docker",
                "build",
                "--build-arg",
                f"BASE_IMAGE={base}",
                "--tag",
                args.image,
                str(ROOT),
                timeout=900,
            )
        say(
            f"image {args.image}: {mb(image_size(args.image))} (base {base}: {mb(image_size(base))})"
        )
        checks = Checks(args.image)
        with step("checks", timings):
            with host_seaweedfs() as s3:
                checks.serving(s3)
            checks.refuses_public_bind_without_keys()
    except Unavailable as reason:
        dockerd.stop()
        if args.if_possible:
            say(f"SKIPPED: the container image was not built or run, no dockerd here: {reason}")
            return 0
        say(f"FAILED: no dockerd here: {reason}")
        return 1
    except Failed as failure:
        say(str(failure))
        say("FAILED")
        return 1
    finally:
        dockerd.stop()
    spent = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items())
    say(f"all {len(checks.passed)} checks passed in {time.monotonic() - total:.0f} s ({spent})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
