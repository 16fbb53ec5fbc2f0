"""What the CLI prints from users and files: no passwords from --host URLs, no raw terminal escapes or markup."""

import socket

import yaml
from click.testing import CliRunner

from distml.cli import main

ESCAPE = "\x1b]0;pwned\x07\x1b[2J"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_password_in_host_is_never_printed():
    # exit 1: the host does not answer; exit 2: not an http(s) URL, a bad option value
    for host, code in ((f"http://alice:s3cret@127.0.0.1:{closed_port()}", 1), ("ftp://alice:s3cret@example", 2)):
        result = CliRunner().invoke(main, ["upload", "end_to_end", "--host", host])
        assert result.exit_code == code and isinstance(result.exception, SystemExit), result.output
        assert "s3cret" not in result.output and "alice:***@" in result.output, result.output


def write_dataset(path, name: str):
    images = [{"location": f"img/{i}.png", "label": "a"} for i in range(4)]
    path.write_text(yaml.safe_dump({"name": name, "description": name, "classes": ["a", "b"], "images": images}))
    return path


def test_escape_sequences_and_markup_in_a_dataset_name_are_shown_not_obeyed(tmp_path):
    for name in (f"evil{ESCAPE}", "[bold red]x[/]", "[/]oops"):
        dataset = write_dataset(tmp_path / "d.yml", name)
        for args in (["data", "info", str(dataset)], ["data", "split", str(dataset), "--parts", "2",
                                                          "--out", str(tmp_path / f"parts-{abs(hash(name))}")]):
            result = CliRunner().invoke(main, args)
            assert result.exit_code == 0 and result.exception is None, (args, result.exception, result.output)
            assert "\x1b" not in result.output and "\x07" not in result.output
            shown = name.replace("\x1b", "\\x1b").replace("\x07", "\\x07")
            assert shown in result.output, result.output
