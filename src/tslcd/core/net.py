"""Network addresses as users type them: "host", "host:port", "[v6]:port" or a bare IPv6 address."""

import ipaddress
import re

_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$")


def parse_host_port(text: str, default_port: int) -> tuple[str, int]:
    """(host, port), or ValueError saying exactly what is wrong with the address."""
    text = text.strip()
    if not text:
        raise ValueError("the address is empty")
    port_text: str | None = None
    if text.startswith("["):
        host, closed, rest = text[1:].partition("]")
        if not closed:
            raise ValueError(f"'{text}': '[' without a closing ']'")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"'{text}': expected ':port' after ']'")
            port_text = rest[1:]
        _ip(host, text, version=6)
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host = text
    if text.count(":") > 1 and not text.startswith("["):
        _ip(host, text, version=6)
    elif not text.startswith("["):
        _check_host(host, text)
    port = default_port
    if port_text is not None:
        if not port_text.isascii() or not port_text.isdigit():
            raise ValueError(f"'{text}': the port '{port_text}' is not a number")
        port = int(port_text)
        if not 1 <= port <= 65535:
            raise ValueError(f"'{text}': the port {port} is outside 1-65535")
    return host, port


def _ip(host: str, text: str, *, version: int) -> None:
    try:
        if ipaddress.ip_address(host).version != version:
            raise ValueError
    except ValueError:
        raise ValueError(f"'{text}': '{host}' is not an IPv{version} address") from None


def _check_host(host: str, text: str) -> None:
    if not host:
        raise ValueError(f"'{text}': the host is empty")
    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    if all(part.isdigit() for part in host.split(".")):
        raise ValueError(f"'{text}': '{host}' is not a valid IPv4 address")
    if not _HOSTNAME.match(host):
        raise ValueError(f"'{text}': '{host}' is neither an IP address nor a host name")
