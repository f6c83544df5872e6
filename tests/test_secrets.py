"""collectors/secrets.py: one precedence and one rule for unset, for every secret."""

from pathlib import Path

import pytest

from collectors.secrets import SecretMissing, one_line, read_secret, require_secret, strip_credentials


def test_a_named_file_wins_over_the_variable_which_wins_over_a_value(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PW_SECRET_T", " from-env\n")
    file = tmp_path / "secret"
    file.write_text("from-file\n")
    assert read_secret(env="PW_SECRET_T", file=str(file), value="literal") == "from-file"
    assert read_secret(env="PW_SECRET_T", value="literal") == "from-env"
    assert read_secret(value="literal") == "literal"


def test_an_unset_variable_is_no_secret_unless_one_is_required(monkeypatch) -> None:
    monkeypatch.delenv("PW_SECRET_UNSET", raising=False)
    monkeypatch.setenv("PW_SECRET_EMPTY", "  ")
    assert read_secret(env="PW_SECRET_UNSET") is None and read_secret(env="PW_SECRET_EMPTY") is None
    assert read_secret() is None
    with pytest.raises(SecretMissing, match="^hook: environment variable PW_SECRET_UNSET is not set$"):
        require_secret("hook", env="PW_SECRET_UNSET")
    with pytest.raises(SecretMissing, match="^hook: not configured$"):
        require_secret("hook")


def test_a_named_file_must_be_there_and_not_empty(tmp_path: Path) -> None:
    with pytest.raises(SecretMissing, match="absent: cannot read: No such file or directory$"):
        read_secret(file=str(tmp_path / "absent"))
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(SecretMissing, match="empty is empty$"):
        read_secret(file=str(tmp_path / "empty"))
    (tmp_path / "latin").write_bytes(b"caf\xe9")
    with pytest.raises(SecretMissing, match="latin: not UTF-8 text$"):
        read_secret(file=str(tmp_path / "latin"))


def test_redaction_and_one_line() -> None:
    assert strip_credentials("fetch https://user:pw@host/x failed") == "fetch https://host/x failed"
    assert one_line(" a\n  b\tc ") == "a b c"
    assert one_line("x" * 10, 5) == "xxxx…"
