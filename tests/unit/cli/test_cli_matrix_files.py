"""The CSV reader of the client commands: one header line at most, and every other cell a
number, or an error naming its line and column."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from sgt.cli.main import cli
from sgt.cli.matrix_files import read_matrix


def csv_file(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "rows.csv"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def test_a_first_line_of_names_is_a_header(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "x,y,label\n1,2,3\n\n4,5.5,-6e-1\n")
    assert read_matrix(path) == [[1.0, 2.0, 3.0], [4.0, 5.5, -0.6]]


def test_a_file_without_a_header_keeps_its_first_row(tmp_path: Path) -> None:
    assert read_matrix(csv_file(tmp_path, "1,2\n3,4\n")) == [[1.0, 2.0], [3.0, 4.0]]


def test_a_byte_order_mark_does_not_hide_the_first_row(tmp_path: Path) -> None:
    assert read_matrix(csv_file(tmp_path, b"\xef\xbb\xbf1,2\n3,4\n")) == [[1.0, 2.0], [3.0, 4.0]]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("1,2,x\n3,4,5\n", "line 1, column 3: 'x'"),  # was silently dropped as a header
        ("a,b\nc,d\n1,2\n", "line 2, column 1: 'c'"),  # a second header line
        ("a,b\n1,2\n3,oops\n", "line 3, column 2: 'oops'"),
        ("1,2\n\n3,\n", "line 3, column 2: ''"),
    ],
)
def test_any_other_cell_that_is_not_a_number_is_an_error_naming_line_and_column(
    tmp_path: Path, text: str, where: str
) -> None:
    path = csv_file(tmp_path, text)
    with pytest.raises(click.ClickException) as raised:
        read_matrix(path)
    assert raised.value.message == (
        f"{path}: {where} is not a number (only the first line may be a header)"
    )


def test_the_run_command_reports_a_bad_cell_and_exits_with_status_1(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "1,2,x\n")
    arguments = ["run", "arm", "--app", "rig", str(path), "--url", "http://127.0.0.1:9"]
    result = CliRunner().invoke(cli, [*arguments, "--secret-id", "a", "--secret-key", "k"])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {path}: line 1, column 3: 'x' is not a number "
        "(only the first line may be a header)\n"
    )
