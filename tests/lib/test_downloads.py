"""Weights that must come from the network: asked once per backbone, never waited on for long (issue 15 item 7)."""

from __future__ import annotations

import dataclasses
import socket
import threading

import pytest
import torch

from explain.errors import LensError
from explain.models import REGISTRY, load_backbone

GIVE_UP_S = 60  # far beyond the library's timeout: a call still running by then would have hung


class SilentServer:
    """A loopback server that accepts every connection and never answers: a network that swallows requests.

    Also usable as an HTTP(S) proxy (http://127.0.0.1:port) for a whole app server. `connections` counts the tries.
    """

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            self._held.append(conn)  # kept open and unanswered

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.sock.close()
        for conn in self._held:
            conn.close()


def _load_in_thread(name: str) -> dict:
    """load_backbone(name) in a daemon thread: {"error": LensError} or {"backbone": …}; {} when it did not end."""
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["backbone"] = load_backbone(name, device="cpu")
        except LensError as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(GIVE_UP_S)
    return outcome


@pytest.fixture
def vgg16_behind(monkeypatch, tmp_path):
    """vgg16 whose weights URL points at a server that never answers, with an empty torch hub cache."""
    import explain.models.files as files

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(files, "_download_failures", {}, raising=False)  # a fresh server: nothing tried yet

    def point_at(server: SilentServer) -> None:
        spec = REGISTRY["vgg16"]
        url = f"http://127.0.0.1:{server.port}/models/{spec.cache_file.name}"
        monkeypatch.setitem(REGISTRY, "vgg16", dataclasses.replace(spec, weights_url=url))

    return point_at


def test_a_network_that_does_not_answer_is_asked_once_and_not_waited_on(vgg16_behind, tmp_path):
    with SilentServer() as silent:
        vgg16_behind(silent)
        first = _load_in_thread("vgg16")
        assert "error" in first, "load_backbone still waiting for a network that never answers"
        message = str(first["error"])
        assert "Weights for 'vgg16' are not on this machine and could not be downloaded" in message
        assert "offline backbone" in message and "vgg16-397923af.pth" in message
        again = _load_in_thread("vgg16")  # another page, another session
        assert "error" in again and str(again["error"]) == message
        assert silent.connections == 1  # the failure is remembered: the network is not asked a second time
    assert not list(tmp_path.rglob("*.partial")) and not list(tmp_path.rglob("*.pth"))  # nothing half-written stays


def test_a_failed_download_is_tried_again_after_a_while(vgg16_behind, monkeypatch):
    import explain.models.files as files

    with SilentServer() as silent:
        vgg16_behind(silent)
        monkeypatch.setattr(files, "DOWNLOAD_TIMEOUT_S", 0.5, raising=False)
        assert "error" in _load_in_thread("vgg16")
        monkeypatch.setattr(files, "DOWNLOAD_RETRY_AFTER_S", 0.0, raising=False)  # as if the few minutes had passed
        assert "error" in _load_in_thread("vgg16")
        assert silent.connections == 2  # a teacher who plugs in a cable is not told "no" for the server's life


class _FileServer:
    """A loopback HTTP server with one file; `cut` sends half of it under the full Content-Length, then hangs up."""

    def __init__(self, data: bytes, cut: bool = False) -> None:
        import http.server

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2] if cut else data)

            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def __enter__(self) -> _FileServer:
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def resnet18_file() -> bytes:
    import io

    from explain.models import build_architecture

    buffer = io.BytesIO()
    torch.save(build_architecture("resnet18").state_dict(), buffer)
    return buffer.getvalue()


def _serve_resnet18(monkeypatch, server) -> None:
    spec = REGISTRY["resnet18"]
    monkeypatch.setitem(REGISTRY, "resnet18", dataclasses.replace(spec, weights_url=f"http://127.0.0.1:{server.port}/{spec.cache_file.name}"))


def test_weights_that_can_come_are_downloaded_into_the_hub_cache_once(monkeypatch, tmp_path, resnet18_file):
    import explain.models.files as files
    from explain.models import weight_status

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(files, "_download_failures", {}, raising=False)
    with _FileServer(resnet18_file) as server:
        _serve_resnet18(monkeypatch, server)
        assert weight_status("resnet18") == "download"
        backbone = load_backbone("resnet18", device="cpu")
    assert backbone.source == "download" and weight_status("resnet18") == "cached"
    assert (tmp_path / "checkpoints" / "resnet18-f37072fd.pth").read_bytes() == resnet18_file
    assert load_backbone("resnet18", device="cpu").source == "cached"  # the server is gone: read from the cache


def test_a_transfer_cut_short_leaves_no_weights_behind(monkeypatch, tmp_path, resnet18_file):
    import explain.models.files as files

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(files, "_download_failures", {}, raising=False)
    with _FileServer(resnet18_file, cut=True) as server:
        _serve_resnet18(monkeypatch, server)
        with pytest.raises(LensError, match="could not be downloaded"):
            load_backbone("resnet18", device="cpu")
    assert not list(tmp_path.rglob("*.pth")) and not list(tmp_path.rglob("*.partial"))
