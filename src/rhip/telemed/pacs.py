# ruff: noqa: E501
"""The PACS: a real Orthanc. rhip writes its configuration under the data folder and starts and stops it
(own HTTP and DICOM ports, own storage folder), or uses the one named by RHIP_ORTHANC_URL. `Pacs` is the
small REST client rhip needs: store, the change feed, studies, series, previews."""

from __future__ import annotations

import ctypes
import json
import logging
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from rhip.errors import RhipError

ORTHANC_BIN = "/usr/sbin/Orthanc"
PLUGIN_DIRS = ("/usr/share/orthanc/plugins", "/usr/lib/orthanc")
AET = "RHIP"
logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per feed poll otherwise


class PacsUnavailable(RhipError):
    """The PACS does not answer (503)."""

    status = 503
    title = "影像归档系统不可用"
    code = "pacs-unavailable"


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Pacs:
    """REST client of one Orthanc; `dicom_port` is its C-STORE port when known."""

    url: str
    dicom_port: int | None = None
    timeout: float = 30.0
    key: str = ""  # names this PACS in rhip's feed state (a managed Orthanc changes ports between runs)

    def __post_init__(self) -> None:
        self.url = self.url.rstrip("/")
        self.key = self.key or self.url
        self._http = httpx.Client(base_url=self.url, timeout=self.timeout)

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    def _get(self, path: str, **params: Any) -> Any:
        try:
            r = self._http.get(path, params=params or None)
        except httpx.HTTPError as exc:
            raise PacsUnavailable(f"影像归档系统（Orthanc，{self.url}）无响应：{exc}") from None
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return r.json() if r.headers.get("content-type", "").startswith("application/json") else r.content

    def alive(self) -> bool:
        """Whether Orthanc answers /system."""
        try:
            return self._http.get("/system", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def store(self, data: bytes) -> dict[str, Any]:
        """Store one DICOM instance (Orthanc's POST /instances); Orthanc's answer (ID, ParentStudy, ...)."""
        try:
            r = self._http.post("/instances", content=data, headers={"Content-Type": "application/dicom"})
        except httpx.HTTPError as exc:
            raise PacsUnavailable(f"影像归档系统（Orthanc，{self.url}）无响应：{exc}") from None
        if r.status_code >= 400:
            raise PacsUnavailable(f"影像归档系统（Orthanc，{self.url}）拒绝了该实例：HTTP {r.status_code}")
        try:
            answer = r.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or not answer.get("ID"):
            raise PacsUnavailable(f"影像归档系统（Orthanc，{self.url}）的应答不是存储结果")
        return answer

    def delete_instance(self, orthanc_id: str) -> bool:
        """Remove one instance (undoing a store whose record could not be written); whether it went."""
        try:
            return self._http.delete(f"/instances/{orthanc_id}").status_code == 200
        except httpx.HTTPError:
            return False

    def stow(self, parts: list[bytes]) -> int:
        """Store instances by DICOMweb STOW-RS (the orthanc-dicomweb plugin); how many were stored."""
        boundary = "rhip-stow-boundary"
        chunks = []
        for p in parts:
            chunks += [f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode(), p, b"\r\n"]
        chunks.append(f"--{boundary}--\r\n".encode())
        ctype = f'multipart/related; type="application/dicom"; boundary={boundary}'
        try:
            r = self._http.post(
                "/dicom-web/studies",
                content=b"".join(chunks),
                headers={"Content-Type": ctype, "Accept": "application/dicom+json"},
            )
        except httpx.HTTPError as exc:
            raise PacsUnavailable(f"影像归档系统（Orthanc，{self.url}）无响应：{exc}") from None
        if r.status_code >= 400:
            raise PacsUnavailable(f"影像归档系统的 STOW-RS 拒绝了上传：HTTP {r.status_code}")
        refs = r.json().get("00081199", {}).get("Value", [])
        return len(refs)

    def changes(self, since: int, limit: int = 200) -> dict[str, Any]:
        """A page of Orthanc's change feed after sequence `since`."""
        return self._get("/changes", since=since, limit=limit)  # type: ignore[no-any-return]

    def study(self, orthanc_id: str) -> dict[str, Any] | None:
        """A study's main tags, series ids and statistics."""
        return self._get(f"/studies/{orthanc_id}")  # type: ignore[no-any-return]

    def series(self, orthanc_id: str) -> dict[str, Any] | None:
        """A series' main tags and instance ids."""
        return self._get(f"/series/{orthanc_id}")  # type: ignore[no-any-return]

    def instance_tags(self, orthanc_id: str) -> dict[str, Any] | None:
        """An instance's tags (simplified names)."""
        return self._get(f"/instances/{orthanc_id}/simplified-tags")  # type: ignore[no-any-return]

    def instance_metadata(self, orthanc_id: str, name: str) -> str | None:
        """One metadata item of an instance (e.g. RemoteAET), or None."""
        try:
            r = self._http.get(f"/instances/{orthanc_id}/metadata/{name}")
        except httpx.HTTPError:
            return None
        return r.text if r.status_code == 200 else None

    def instance_file(self, instance_id: str) -> bytes | None:
        """An instance's DICOM file as stored, or None when the PACS does not hold it."""
        try:
            r = self._http.get(f"/instances/{instance_id}/file")
        except httpx.HTTPError as exc:
            raise PacsUnavailable(f"影像归档系统（Orthanc，{self.url}）无响应：{exc}") from None
        return r.content if r.status_code == 200 else None

    def preview(self, instance_id: str) -> bytes | None:
        """A PNG rendering of an instance."""
        try:
            r = self._http.get(f"/instances/{instance_id}/preview", headers={"Accept": "image/png"})
        except httpx.HTTPError as exc:
            raise PacsUnavailable(f"影像归档系统（Orthanc，{self.url}）无响应：{exc}") from None
        return r.content if r.status_code == 200 else None

    def delete_study(self, orthanc_id: str) -> None:
        """Remove a study from the PACS."""
        self._http.delete(f"/studies/{orthanc_id}")


PR_SET_PDEATHSIG = 1


def _load_prctl() -> Any:
    """libc's prctl, looked up once in the parent (never in the forked child, where dlopen may deadlock)."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: stop() is the only way Orthanc ends
        return None


_PRCTL = _load_prctl()


def _die_with_parent() -> None:
    """In the child before exec (Linux): SIGTERM when the rhip process that started Orthanc ends, however
    it ends (a killed `rhip serve` or test run left its Orthanc running, holding ports and files)."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGTERM)


# folders whose Orthanc is still shutting down in the background, and the thread waiting for it
_STOPPING: dict[Path, threading.Thread] = {}
_STOPPING_LOCK = threading.Lock()


@dataclass
class Orthanc:
    """An Orthanc process rhip runs: configuration and storage in `root`, its own ports."""

    root: Path
    http_port: int
    dicom_port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Its REST base URL."""
        return f"http://127.0.0.1:{self.http_port}"

    def configuration(self) -> dict[str, Any]:
        """The orthanc.json rhip writes."""
        plugins = [
            str(Path(d) / "libOrthancDicomWeb.so")
            for d in PLUGIN_DIRS
            if (Path(d) / "libOrthancDicomWeb.so").exists()
        ]
        return {
            "Name": "rhip-pacs",
            "StorageDirectory": str(self.root / "storage"),
            "IndexDirectory": str(self.root / "index"),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": AET,
            "DicomCheckCalledAet": False,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "HttpBindAddress": "127.0.0.1",  # ignored by older versions; remote access is off anyway
            "StableAge": 1,
            "SaveJobs": False,
            "StorageCompression": False,
            "Plugins": plugins[:1],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True},
        }

    def start(self, timeout: float = 30.0) -> None:
        """Write the configuration and start Orthanc; wait until it answers."""
        if not Path(ORTHANC_BIN).exists():
            raise PacsUnavailable(f"未安装 Orthanc（{ORTHANC_BIN}）：请运行 scripts/bootstrap.sh --system")
        with _STOPPING_LOCK:
            stopping = _STOPPING.pop(self.root, None)
        if stopping is not None:  # the folder's previous Orthanc still shutting down (`stop(wait=False)`)
            stopping.join()
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "orthanc.json"
        config.write_text(json.dumps(self.configuration(), ensure_ascii=False, indent=2), encoding="utf-8")
        log = (self.root / "orthanc.log").open("ab")
        self.process = subprocess.Popen(
            [ORTHANC_BIN, str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.root,
            preexec_fn=_die_with_parent,  # only a prctl call in the child
        )
        client = Pacs(self.url)
        deadline = time.monotonic() + timeout
        try:
            while not client.alive():
                if self.process.poll() is not None:
                    raise PacsUnavailable(
                        f"Orthanc 启动失败（退出码 {self.process.returncode}），见 {self.root / 'orthanc.log'}"
                    )
                if time.monotonic() > deadline:
                    self.stop()
                    raise PacsUnavailable(f"Orthanc 在 {timeout:.0f} 秒内没有响应")
                time.sleep(0.1)
        finally:
            client.close()

    def stop(self, *, wait: bool = True) -> None:
        """Stop the process (SIGTERM, then SIGKILL after 10 s). `wait=False`: its shutdown (~2 s: HTTP server,
        DICOM server, jobs, plugins) goes on in the background; a later `start` in the same folder waits
        for it first."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        if wait:
            self._reap()
            return
        reaper = threading.Thread(target=self._reap, name="orthanc-stop", daemon=True)
        with _STOPPING_LOCK:
            _STOPPING[self.root] = reaper
        reaper.start()

    def _reap(self) -> None:
        assert self.process is not None
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def client(self) -> Pacs:
        """A REST client for it."""
        return Pacs(self.url, dicom_port=self.dicom_port, key=f"orthanc:{self.root}")


def orthanc_in(folder: Path) -> Orthanc:
    """An Orthanc (not started) storing under `folder`, on two free ports."""
    return Orthanc(root=folder.resolve(), http_port=free_port(), dicom_port=free_port())


def url_file(data_dir: Path) -> Path:
    """Where a running rhip-managed Orthanc's URL and DICOM port are written for other processes."""
    return data_dir / "orthanc" / "running.json"


@contextmanager
def managed(data_dir: Path, url: str | None = None, *, wait_stop: bool = True) -> Iterator[Pacs]:
    """The given Orthanc, or one started under data_dir/orthanc for the block (then stopped; with
    `wait_stop=False` the block ends without waiting for its shutdown)."""
    if url:
        client = Pacs(url)
        try:
            yield client
        finally:
            client.close()
        return
    orth = orthanc_in(data_dir / "orthanc")
    orth.start()
    marker = url_file(data_dir)
    marker.write_text(
        json.dumps(
            {
                "url": orth.url,
                "dicom_port": orth.dicom_port,
                "pid": orth.process.pid if orth.process else None,
            }
        )
    )
    client = orth.client()
    try:
        yield client
    finally:
        client.close()
        marker.unlink(missing_ok=True)
        orth.stop(wait=wait_stop)


_CLIENTS: dict[tuple[str, str], Pacs] = {}
_CLIENTS_LOCK = threading.Lock()


def client_for(data_dir: Path, url: str | None) -> Pacs | None:
    """The PACS a request handler should use: the configured URL, or the running managed one, or None.
    Clients are kept per URL (an httpx client costs milliseconds to build, its TLS context above all)."""
    if url:
        key = (url, "")
    else:
        marker = url_file(data_dir)
        if not marker.is_file():
            return None
        info = json.loads(marker.read_text())
        key = (info["url"], f"{info.get('key', '')}|{info.get('dicom_port', '')}")
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            if url:
                client = Pacs(url)
            else:
                key_name, _, port = key[1].partition("|")
                client = Pacs(key[0], dicom_port=int(port) if port.isdigit() else None, key=key_name)
            _CLIENTS[key] = client
        return client


def installed() -> bool:
    """Whether Orthanc is installed on this machine."""
    return Path(ORTHANC_BIN).exists() or shutil.which("Orthanc") is not None
