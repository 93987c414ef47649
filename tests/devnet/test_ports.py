"""A port a stopped demo process served on is free for the next start, though its connections linger."""

from __future__ import annotations

import socket

from devnet.ports import port_is_free


def test_a_port_whose_server_just_stopped_is_free_but_a_listening_one_is_not() -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    assert not port_is_free(port)
    accepted.close()  # the server side closes first: its end of the connection stays in TIME_WAIT
    client.close()
    server.close()
    assert port_is_free(port)


def test_the_launcher_prefers_the_asked_then_the_default_then_the_last_runs_port(monkeypatch) -> None:
    from devnet import launch

    taken: set[int] = set()
    monkeypatch.setattr(launch, "port_is_free", lambda port: port not in taken)
    used = {"web": 8123}
    assert launch._pick_port(9001, "web", used) == 9001  # asked for on the command line
    assert launch._pick_port(None, "web", used) == 8000  # the default, the URL the README names
    taken.add(8000)
    used["web"] = 8123
    assert launch._pick_port(None, "web", used) == 8123  # the port this demo fell back to last time
    taken.add(8123)
    other = launch._pick_port(None, "web", used)
    assert other not in {8000, 8123}
    assert used == {"web": other}


def test_a_ports_file_cut_short_by_a_kill_means_no_earlier_ports(tmp_path) -> None:
    from devnet import launch

    assert launch._ports_used_before(tmp_path) == {}
    (tmp_path / launch.PORTS_FILE).write_text('{"web": 80')  # what a kill mid-write would leave
    assert launch._ports_used_before(tmp_path) == {}
    (tmp_path / launch.PORTS_FILE).write_text('{"web": 8001}')
    assert launch._ports_used_before(tmp_path) == {"web": 8001}
