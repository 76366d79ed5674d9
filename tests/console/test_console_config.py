"""The `console:` section: off unless present, loopback unless TLS or a loud opt-in, and
errors that name the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.errors import ConfigError
from config.loader import load_deployment

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "config" / "demo.yaml"


def _demo_with(tmp_path: Path, console: str) -> Path:
    text = DEMO.read_text().replace("data_dir: ../.covenant/demo", f"data_dir: {tmp_path}")
    start = text.index("console:\n")
    end = text.index("address_book:")
    file = tmp_path / "covenant.yaml"
    file.write_text(text[:start] + console + "\n" + text[end:])
    return file


def test_the_demo_turns_the_console_on_at_loopback() -> None:
    console = load_deployment(DEMO).console
    assert console is not None
    assert (console.host, console.port) == ("127.0.0.1", 8787)


def test_the_console_is_off_when_not_configured(tmp_path: Path) -> None:
    assert load_deployment(_demo_with(tmp_path, "")).console is None


@pytest.mark.parametrize("listen", ["0.0.0.0:8787", "192.168.1.5:80", "[::]:8787"])
def test_a_non_loopback_listen_without_tls_is_refused_naming_the_line(
    tmp_path: Path, listen: str
) -> None:
    file = _demo_with(tmp_path, f"console:\n  listen: '{listen}'")
    with pytest.raises(ConfigError) as caught:
        load_deployment(file)
    line = file.read_text().splitlines().index("console:") + 1
    assert f"{file}:{line}:" in str(caught.value)
    assert "allow_plaintext_non_loopback" in str(caught.value)


@pytest.mark.parametrize(
    "extra",
    [
        "  allow_plaintext_non_loopback: true",
        "  tls_cert: cert.pem\n  tls_key: key.pem",
    ],
)
def test_tls_or_the_loud_flag_allows_a_non_loopback_listen(tmp_path: Path, extra: str) -> None:
    # Negative control of the refusal above: the same address with TLS or the flag loads.
    file = _demo_with(tmp_path, f"console:\n  listen: '0.0.0.0:8787'\n{extra}")
    console = load_deployment(file).console
    assert console is not None
    assert console.host == "0.0.0.0"


@pytest.mark.parametrize("listen", ["127.0.0.1:8787", "[::1]:9000", "localhost:8000"])
def test_loopback_listens_need_nothing_else(tmp_path: Path, listen: str) -> None:
    file = _demo_with(tmp_path, f"console:\n  listen: '{listen}'")
    assert load_deployment(file).console is not None


@pytest.mark.parametrize(
    ("console", "phrase"),
    [
        ("console:\n  listen: '8787'", "must be host:port"),
        ("console:\n  tls_cert: cert.pem", "set both or neither"),
        ("console:\n  listen: '127.0.0.1:8787'\n  lsiten: x", "lsiten"),
    ],
)
def test_malformed_console_settings_say_what_to_write(
    tmp_path: Path, console: str, phrase: str
) -> None:
    with pytest.raises(ConfigError, match=phrase):
        load_deployment(_demo_with(tmp_path, console))


def test_metrics_are_private_unless_the_deployment_says_public(tmp_path: Path) -> None:
    console = load_deployment(DEMO).console
    assert console is not None
    assert console.metrics_public is False
    file = _demo_with(tmp_path, "console:\n  listen: '127.0.0.1:8787'\n  metrics_public: true")
    public = load_deployment(file).console
    assert public is not None
    assert public.metrics_public is True


def test_the_allowed_hosts_are_the_listen_host_loopback_names_and_public_names(
    tmp_path: Path,
) -> None:
    ipv6 = load_deployment(_demo_with(tmp_path, "console:\n  listen: '[::1]:9000'")).console
    assert ipv6 is not None
    assert ipv6.allowed_hosts == ["127.0.0.1", "[::1]", "localhost"]  # as Host headers say
    tls = "  tls_cert: c.pem\n  tls_key: k.pem\n  public_names: [Console.Example]"
    file = _demo_with(tmp_path, f"console:\n  listen: '10.0.0.5:8443'\n{tls}")
    remote = load_deployment(file).console
    assert remote is not None
    assert remote.allowed_hosts == ["10.0.0.5", "console.example"]  # no loopback names
