"""Big batches are split into chunks transparently: same result, in order, with progress."""

from __future__ import annotations

import array
import math

import pytest

import sgt.client as sc


class FakeArray:
    """Quacks like a numpy array: the client may only use `.tolist()` and `len()`."""

    def __init__(self, values):
        self._values = values

    def tolist(self):
        return [v.tolist() if isinstance(v, FakeArray) else v for v in self._values]

    def __len__(self):
        return len(self._values)


class FakeScalar:
    """Quacks like a numpy float32 scalar inside a plain list."""

    def __init__(self, value):
        self._value = value

    def tolist(self):
        return self._value


def summing_model(json_reply):
    # A stand-in model whose single output is the sum of the row: order mistakes show.
    return lambda r: json_reply([[float(sum(row))] for row in r.body["data"]])


ROWS = [[float(i), float(i) / 2] for i in range(10)]


def test_run_in_chunks_equals_one_request(make_client, json_reply):
    whole, _ = make_client(summing_model(json_reply))
    chunked, transport = make_client(summing_model(json_reply), chunk_rows=3)
    progress = []

    result = chunked.run(
        "arm", "rig", ROWS, progress=lambda done, total: progress.append((done, total))
    )

    assert result == whole.run("arm", "rig", ROWS)
    assert [len(r.body["data"]) for r in transport.requests] == [3, 3, 3, 1]
    assert [row for r in transport.requests for row in r.body["data"]] == ROWS
    assert progress == [(3, 10), (6, 10), (9, 10), (10, 10)]


def test_run_with_no_rows_still_asks_the_server(make_client, json_reply):
    client, transport = make_client(lambda r: json_reply([]))
    progress = []

    assert client.run("arm", "rig", [], progress=lambda *a: progress.append(a)) == []
    assert [r.body["data"] for r in transport.requests] == [[]]
    assert progress == [(0, 0)]


def test_upload_in_chunks_keeps_every_pair_in_order(make_client, json_reply):
    client, transport = make_client(lambda r: json_reply(None), chunk_rows=4)
    labels = [[i * 10.0] for i in range(10)]
    progress = []

    client.upload_train_data("arm", "rig", ROWS, labels, progress=lambda *a: progress.append(a))

    sent = [pair for r in transport.requests for pair in r.body["train_data"]]
    assert sent == [[x, y] for x, y in zip(ROWS, labels, strict=True)]
    assert [len(r.body["train_data"]) for r in transport.requests] == [4, 4, 2]
    assert progress == [(4, 10), (8, 10), (10, 10)]


def test_upload_of_pairs_is_chunked_the_same(make_client, json_reply):
    client, transport = make_client(lambda r: json_reply(None), chunk_rows=3)
    pairs = [(row, [1.0]) for row in ROWS]

    client.upload_train_data("arm", "rig", pairs=pairs)

    sent = [pair for r in transport.requests for pair in r.body["train_data"]]
    assert sent == [[row, [1.0]] for row in ROWS]


def test_array_likes_are_read_through_tolist(make_client, json_reply):
    client, transport = make_client(summing_model(json_reply), chunk_rows=2)
    data = FakeArray([FakeArray([1.0, 2.0]), FakeArray([3.0, 4.0]), FakeArray([5.0, 6.0])])

    assert client.run("arm", "rig", data) == [[3.0], [7.0], [11.0]]
    assert transport.requests[0].body["data"] == [[1.0, 2.0], [3.0, 4.0]]


def test_lists_of_array_rows_and_scalars_are_encoded(make_client, json_reply):
    client, transport = make_client(lambda r: json_reply(None))
    inputs = [FakeArray([1.0, 2.0]), array.array("d", [3.0, 4.0]), (5.0, FakeScalar(6.0))]
    labels = FakeArray([FakeArray([1.0]), FakeArray([2.0]), FakeArray([3.0])])

    client.upload_train_data("arm", "rig", inputs=inputs, labels=labels)

    assert transport.requests[0].body["train_data"] == [
        [[1.0, 2.0], [1.0]],
        [[3.0, 4.0], [2.0]],
        [[5.0, 6.0], [3.0]],
    ]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_stop_an_upload_before_anything_is_sent(make_client, json_reply, bad):
    client, transport = make_client(lambda r: json_reply(None), chunk_rows=2)
    inputs = [[1.0], [2.0], [3.0], [bad], [5.0]]

    with pytest.raises(sc.UploadDataException, match=r"train_data\[1\] contains NaN or infinity"):
        client.upload_train_data("arm", "rig", inputs=inputs, labels=[[0.0]] * 5)

    # the index counts within the failing chunk of rows 2..3, which was never sent
    assert transport.requests == []


def test_non_finite_numbers_in_run_raise_the_run_exception(make_client, json_reply):
    client, _ = make_client(summing_model(json_reply))

    with pytest.raises(sc.RunWeightsNetException, match="NaN"):
        client.run("arm", "rig", [[1.0], [math.nan]])


def test_ragged_rows_are_refused_with_their_batch_index(make_client, json_reply):
    client, transport = make_client(summing_model(json_reply), chunk_rows=2)
    rows = [[1.0, 2.0]] * 5 + [[1.0]]

    with pytest.raises(sc.RunWeightsNetException, match=r"data\[5\] has 1 values, data\[0\] has 2"):
        client.run("arm", "rig", rows)

    assert transport.requests == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"inputs": [[1.0], [2.0]], "labels": [[1.0]]}, "inputs has 2 rows but labels has 1"),
        ({"inputs": [[1.0], [2.0, 3.0]], "labels": [[1.0], [1.0]]}, r"inputs\[1\] has 2"),
        ({"inputs": [[1.0], [2.0]], "labels": [[1.0], []]}, r"labels\[1\] has 0"),
        ({"pairs": [[[1.0], [1.0]], [[1.0]]]}, r"train_data\[1\] must be an \[input, label\]"),
        ({"pairs": [[[1.0], [1.0]], [[1.0, 2.0], [1.0]]]}, r"train_data\[\*\]\[0\]\[1\] has 2"),
        ({"inputs": 3.0, "labels": [[1.0]]}, "inputs must be a list of rows"),
        ({"inputs": [1.0, 2.0], "labels": [[1.0], [2.0]]}, r"inputs\[0\] must be a list"),
    ],
)
def test_malformed_training_data_is_refused_before_sending(make_client, json_reply, kwargs, match):
    client, transport = make_client(lambda r: json_reply(None))

    with pytest.raises(sc.UploadDataException, match=match):
        client.upload_train_data("arm", "rig", **kwargs)

    assert transport.requests == []


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"inputs": [[1.0]]}, {"inputs": [[1.0]], "labels": [[1.0]], "pairs": [[[1.0], [1.0]]]}],
)
def test_upload_needs_inputs_and_labels_or_pairs(make_client, json_reply, kwargs):
    client, _ = make_client(lambda r: json_reply(None))

    with pytest.raises(ValueError):
        client.upload_train_data("arm", "rig", **kwargs)


def test_a_failed_chunk_says_how_many_rows_were_committed(make_client, json_reply, error_reply):
    def handler(request):
        if len(handler.seen) == 2:
            return error_reply("UploadDataException", "train_data[0] is wrong")
        handler.seen.append(request)
        return json_reply(None)

    handler.seen = []
    client, _ = make_client(handler, chunk_rows=3)

    with pytest.raises(sc.UploadDataException) as caught:
        client.upload_train_data("arm", "rig", ROWS, [[1.0]] * 10)

    assert caught.value.rows_done == 6


def test_an_unchunked_call_leaves_rows_done_unset(make_client, error_reply):
    client, _ = make_client(lambda r: error_reply("FindModelException"))

    with pytest.raises(sc.FindModelException) as caught:
        client.delete_model("arm", "rig")

    assert caught.value.rows_done is None


@pytest.mark.parametrize("chunk_rows", [0, -1, 1.5, True])
def test_chunk_rows_must_be_a_positive_integer(chunk_rows):
    with pytest.raises(ValueError, match="chunk_rows"):
        sc.Client("http://h", "a", "b", chunk_rows=chunk_rows)
