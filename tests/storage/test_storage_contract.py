"""The storage contract, run unchanged on SQLite and on PostgreSQL (see `conftest.py`).

What every backend must do: round-trip every column type (naive UTC datetimes, booleans, float32
blobs, big integers), turn a taken name into ModelNameTaken, cascade a model's delete, and keep
the training queue's promises (claims exclusive and oldest first, leases judged by the database
clock, writes refused once a lease is lost).
"""

from __future__ import annotations

import itertools
import threading
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sgt import errors
from sgt.domain.models import ModelSpec
from sgt.domain.training import TrainingState, ValidationErrors
from sgt.errors import ModelNameTaken
from sgt.storage import checkpoints, leases, models, samples, users
from sgt.storage import training as queue
from sgt.storage.engine import Database
from sgt.storage.schema import is_up_to_date, migrate
from sgt.storage.tables import LeaseLogRow, ModelRow, TrainingRow, UserRow

_names = itertools.count(1)
LEASE = 30.0


def add_user(db: Database, secret_id: str | None = None) -> UserRow:
    with db.write() as session:
        return users.save_user(
            session,
            secret_id=secret_id or f"user-{next(_names)}",
            key_hash=b"\x00hash\xff",
            key_salt=b"salt",
            doc="",
            end_time=None,
            now=db.now(session),
        )


def add_model(
    db: Database, owner: UserRow, *, name: str | None = None, public: bool = False
) -> int:
    with db.write() as session:
        now = db.now(session)
        row = models.insert_model(
            session,
            owner=owner,
            app_name="app",
            name=name or f"model-{next(_names)}",
            spec=ModelSpec("std", 3, 2),
            client_data_json='{"a": 1}',
            is_public=public,
            seed=(1 << 62) - 1,
            now=now,
        )
        queue.add_training_row(session, model_id=row.id, now=now)
        return row.id


def upload(db: Database, model_id: int, rows: int = 4) -> np.ndarray:
    inputs = np.arange(rows * 3, dtype=np.float32).reshape(rows, 3) / 7
    with db.write() as session:
        now = db.now(session)
        samples.append_samples(
            session, model_id=model_id, inputs=inputs, targets=inputs[:, :2] * 2, now=now
        )
        queue.queue_after_upload(session, model_id=model_id, added=rows, now=now)
    return inputs


def claim(db: Database, worker: str, lease_seconds: float = LEASE) -> queue.Claim | None:
    with db.write() as session:
        return queue.claim_model_to_train(
            session, worker=worker, now=db.now(session), lease_seconds=lease_seconds
        )


def state_of(db: Database, model_id: int) -> TrainingState:
    with db.read() as session:
        return queue.read_status(session, model_id).state


def checkpoint(
    db: Database,
    held: queue.Claim,
    worker: str,
    weights: bytes,
    errors: ValidationErrors | None = None,
) -> bool:
    with db.write() as session:
        return queue.save_checkpoint(
            session,
            claim=held,
            worker=worker,
            now=db.now(session),
            model_type="std",
            weights=weights,
            trained_sample_count=4,
            progress=queue.Progress(steps=10, train_loss=0.5, val_loss=None),
            errors=errors,
        )


def finish(db: Database, held: queue.Claim, worker: str) -> bool:
    with db.write() as session:
        return queue.finish_run(
            session,
            claim=held,
            worker=worker,
            now=db.now(session),
            trained_data_version=held.data_version,
            progress=None,
        )


def renew(db: Database, held: queue.Claim, worker: str) -> int | None:
    with db.write() as session:
        return queue.renew_lease(
            session, claim=held, worker=worker, now=db.now(session), lease_seconds=LEASE
        )


def wait_until(condition: object, *, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met before the deadline"
        time.sleep(0.02)


class TestStorageContract:
    def test_schema_is_at_head_and_migrations_rerun_safely(self, db: Database) -> None:
        assert is_up_to_date(db)
        migrate(db)
        assert is_up_to_date(db)

    def test_database_clock_is_naive_utc(self, db: Database) -> None:
        with db.read() as session:
            now = db.now(session)
        assert now.tzinfo is None
        assert abs(now - datetime.now(UTC).replace(tzinfo=None)) < timedelta(seconds=5)

    def test_user_columns_round_trip(self, db: Database) -> None:
        end = datetime(2031, 2, 3, 4, 5, 6)
        with db.write() as session:
            users.save_user(
                session,
                secret_id="ü-name",
                key_hash=bytes(range(256)),
                key_salt=b"\x00",
                doc="d",
                end_time=end,
                now=db.now(session),
            )
        with db.read() as session:
            found = users.find_user(session, "ü-name")
            assert found is not None
            assert (found.key_hash, found.key_salt, found.end_time) == (
                bytes(range(256)),
                b"\x00",
                end,
            )
            assert users.set_end_time(session, "nobody", None) is False

    def test_taken_name_is_model_name_taken_and_the_transaction_goes_on(self, db: Database) -> None:
        owner = add_user(db)
        add_model(db, owner, name="taken")
        with pytest.raises(ModelNameTaken):
            add_model(db, owner, name="taken")
        add_model(db, add_user(db), name="taken")  # another owner may use the name

    def test_public_flag_and_big_seed_round_trip(self, db: Database) -> None:
        owner = add_user(db)
        public_id = add_model(db, owner, public=True)
        add_model(db, owner, public=False)
        with db.read() as session:
            listed = models.list_public_models(session)
            assert [model.id for model, _ in listed] == [public_id]
            assert listed[0][0].is_public is True
            assert listed[0][0].seed == (1 << 62) - 1

    def test_samples_are_float32_exact_and_in_upload_order(self, db: Database) -> None:
        model_id = add_model(db, add_user(db))
        first, second = upload(db, model_id, 3), upload(db, model_id, 2) + 100
        with db.write() as session:
            samples.append_samples(
                session,
                model_id=model_id,
                inputs=second,
                targets=second[:, :2],
                now=db.now(session),
            )
        with db.read() as session:
            inputs, targets = samples.load_samples(
                session, model_id=model_id, in_size=3, out_size=2
            )
            assert samples.count_samples(session, model_id) == 7
        assert inputs.dtype == np.float32 and targets.shape == (7, 2)
        np.testing.assert_array_equal(inputs[:3], first)
        np.testing.assert_array_equal(inputs[-2:], second)

    def test_checkpoint_versions_grow_and_blobs_round_trip(self, db: Database) -> None:
        model_id = add_model(db, add_user(db))
        blob = np.random.default_rng(0).bytes(3 << 20)
        with db.write() as session:
            for expected in (1, 2):
                version = checkpoints.write_checkpoint(
                    session,
                    model_id=model_id,
                    model_type="std",
                    weights=blob,
                    trained_sample_count=1,
                    now=db.now(session),
                )
                assert version == expected
        with db.read() as session:
            row = checkpoints.load_checkpoint(session, model_id)
            assert row is not None and row.weights == blob
            assert checkpoints.checkpoint_version(session, model_id) == 2

    def test_deleting_a_model_removes_everything_it_owns(self, db: Database) -> None:
        model_id = add_model(db, add_user(db))
        upload(db, model_id)
        held = claim(db, "w1")
        assert held is not None and checkpoint(db, held, "w1", b"weights")
        with db.write() as session:
            models.delete_model(session, model_id)
        with db.read() as session:
            for table in (TrainingRow, LeaseLogRow):
                count = session.scalar(select(func.count()).select_from(table))
                assert count == 0, table
            assert checkpoints.load_checkpoint(session, model_id) is None
            assert samples.count_samples(session, model_id) == 0

    def test_upload_queues_and_a_claim_is_exclusive(self, db: Database) -> None:
        model_id = add_model(db, add_user(db))
        assert state_of(db, model_id) is TrainingState.UNTRAINED
        assert claim(db, "w1") is None
        upload(db, model_id)
        assert state_of(db, model_id) is TrainingState.QUEUED
        held = claim(db, "w1")
        assert held is not None and held.model_id == model_id and held.data_version == 1
        assert (held.model_type, held.in_size, held.out_size) == ("std", 3, 2)
        assert claim(db, "w2") is None
        assert state_of(db, model_id) is TrainingState.TRAINING

    def test_claims_take_the_longest_waiting_model_first(self, db: Database) -> None:
        owner = add_user(db)
        first, second, third = (add_model(db, owner) for _ in range(3))
        for model_id in (second, first, third):
            upload(db, model_id)
        held = claim(db, "w1")
        assert held is not None and held.model_id == second
        upload(db, second)  # new data while training: it queues behind the others
        assert finish(db, held, "w1")
        order = [c.model_id for c in iter(lambda: claim(db, "w1"), None)]
        assert order == [first, third, second]

    def test_finish_converges_unless_new_data_arrived(self, db: Database) -> None:
        model_id = add_model(db, add_user(db))
        upload(db, model_id)
        held = claim(db, "w1")
        assert held is not None
        with db.write() as session:
            queue.finish_run(
                session,
                claim=held,
                worker="w1",
                now=db.now(session),
                trained_data_version=held.data_version,
                progress=queue.Progress(steps=5, train_loss=0.1, val_loss=0.2),
            )
        with db.read() as session:
            status = queue.read_status(session, model_id)
            assert (status.state, status.steps, status.val_loss) == ("converged", 5, 0.2)
            (lease,) = leases.lease_history(session)
        assert lease.was_released and lease.worker == "w1"

    def test_finish_requeues_when_data_arrived_during_the_run(self, db: Database) -> None:
        model_id = add_model(db, add_user(db))
        upload(db, model_id)
        held = claim(db, "w1")
        assert held is not None
        assert renew(db, held, "w1") == held.data_version
        upload(db, model_id, rows=2)  # the run keeps its lease; the renewal sees the new data
        assert state_of(db, model_id) is TrainingState.TRAINING
        assert renew(db, held, "w1") == held.data_version + 1
        assert finish(db, held, "w1")
        with db.read() as session:
            status = queue.read_status(session, model_id)
        assert (status.state, status.sample_count) == (TrainingState.QUEUED, 6)
        again = claim(db, "w2")
        assert again is not None and again.data_version == held.data_version + 1

    def test_a_checkpoint_under_the_lease_records_progress(self, db: Database) -> None:
        model_id = add_model(db, add_user(db))
        upload(db, model_id)
        held = claim(db, "w1")
        assert held is not None
        assert checkpoint(db, held, "w1", b"v1") and checkpoint(db, held, "w1", b"v2")
        with db.read() as session:
            status = queue.read_status(session, model_id)
            assert checkpoints.checkpoint_version(session, model_id) == 2
        assert (status.steps, status.train_loss, status.trained_sample_count) == (10, 0.5, 4)
        assert status.loss_history == [[10.0, 0.5, None], [10.0, 0.5, None]]

    def test_each_checkpoint_replaces_the_validation_errors_of_the_served_weights(
        self, db: Database
    ) -> None:
        model_id = add_model(db, add_user(db))
        upload(db, model_id)
        held = claim(db, "w1")
        assert held is not None
        measured = ValidationErrors(
            rows=3, mae=0.125, p95_abs_error=2.5, max_abs_error=3.0, mae_per_output=[0.0, 0.25]
        )
        assert checkpoint(db, held, "w1", b"v1", errors=measured)
        upload(db, model_id, rows=2)  # new data leaves the served weights and their figures
        with db.read() as session:
            status = queue.read_status(session, model_id)
        figures = (
            status.val_rows,
            status.val_mae,
            status.val_p95_abs_error,
            status.val_max_abs_error,
            status.val_mae_per_output,
        )
        assert figures == (3, 0.125, 2.5, 3.0, [0.0, 0.25])
        assert checkpoint(db, held, "w1", b"v2", errors=None)  # weights without validation rows
        with db.read() as session:
            status = queue.read_status(session, model_id)
        assert (status.val_rows, status.val_mae, status.val_mae_per_output) == (None, None, None)
        other = claim(db, "w2")
        assert other is None and not checkpoint(db, held, "w2", b"v3", errors=measured)
        with db.read() as session:
            assert queue.read_status(session, model_id).val_rows is None, "not the holder's"

    def test_clearing_the_samples_during_a_run_takes_the_lease_away(self, db: Database) -> None:
        model_id = add_model(db, add_user(db))
        upload(db, model_id)
        held = claim(db, "w1")
        assert held is not None
        with db.write() as session:
            samples.delete_samples(session, model_id)
            queue.clear_samples_state(
                session, model_id=model_id, has_weights=False, now=db.now(session)
            )
        assert renew(db, held, "w1") is None
        assert not checkpoint(db, held, "w1", b"after-clear")
        assert state_of(db, model_id) is TrainingState.UNTRAINED
        assert claim(db, "w2") is None

    def test_an_expired_lease_is_claimable_by_the_database_clock(self, db: Database) -> None:
        model_id = add_model(db, add_user(db))
        upload(db, model_id)
        held = claim(db, "w1", lease_seconds=0.3)
        assert held is not None and claim(db, "w2") is None
        with db.read() as session:
            wait = queue.seconds_until_claimable(session, now=db.now(session))
        assert wait is not None and 0 < wait <= 0.3
        taken: list[queue.Claim] = []
        wait_until(lambda: taken.append(c) or True if (c := claim(db, "w2")) else False, seconds=5)
        assert taken[0].model_id == model_id
        # The first trainer wakes up: every write of its is refused, nothing is overwritten.
        assert not checkpoint(db, held, "w1", b"stale")
        assert not finish(db, held, "w1")
        assert renew(db, held, "w1") is None
        assert checkpoint(db, taken[0], "w2", b"fresh")
        with db.read() as session:
            history = leases.lease_history(session)
            row = checkpoints.load_checkpoint(session, model_id)
        assert row is not None and row.weights == b"fresh"
        assert leases.overlapping_leases(history) == []
        assert [lease.worker for lease in history] == ["w1", "w2"]

    def test_renewal_extends_the_lease_and_fails_once_the_model_is_deleted(
        self, db: Database
    ) -> None:
        model_id = add_model(db, add_user(db))
        upload(db, model_id)
        held = claim(db, "w1", lease_seconds=0.5)
        assert held is not None
        assert renew(db, held, "w1") == held.data_version
        with db.read() as session:
            assert queue.seconds_until_claimable(session, now=db.now(session)) > 20  # type: ignore[operator]
        with db.write() as session:
            models.delete_model(session, model_id)
        assert renew(db, held, "w1") is None
        assert not checkpoint(db, held, "w1", b"late")
        assert not finish(db, held, "w1")

    def test_a_failed_run_backs_off_and_a_shutdown_does_not(self, db: Database) -> None:
        owner = add_user(db)
        broken, other = add_model(db, owner), add_model(db, owner)
        upload(db, broken)
        held = claim(db, "w1")
        assert held is not None
        with db.write() as session:
            queue.release_model(
                session, claim=held, worker="w1", now=db.now(session), retry_after_seconds=60
            )
        assert claim(db, "w1") is None
        upload(db, other)
        held = claim(db, "w1")
        assert held is not None and held.model_id == other
        with db.write() as session:
            queue.release_model(session, claim=held, worker="w1", now=db.now(session))
        again = claim(db, "w2")
        assert again is not None and again.model_id == other

    def test_lease_audit_finds_overlaps(self) -> None:
        at = datetime(2030, 1, 1)
        first = leases.Lease(1, "a", at, at + timedelta(seconds=10), was_released=False)
        fine = leases.Lease(1, "b", at + timedelta(seconds=10), None, was_released=False)
        early = leases.Lease(1, "c", at + timedelta(seconds=5), None, was_released=False)
        other_model = leases.Lease(2, "d", at, None, was_released=False)
        assert leases.overlapping_leases([first, fine, other_model]) == []
        assert leases.overlapping_leases([first, early]) == [(first, early)]

    def test_concurrent_claims_never_share_a_model(self, db: Database) -> None:
        owner = add_user(db)
        model_ids = [add_model(db, owner) for _ in range(12)]
        for model_id in model_ids:
            upload(db, model_id, rows=1)
        claimed: dict[str, list[int]] = {}
        start = threading.Barrier(4)

        def hammer(worker: str) -> None:
            mine = claimed.setdefault(worker, [])
            start.wait()
            while (held := claim(db, worker)) is not None:
                mine.append(held.model_id)

        threads = [threading.Thread(target=hammer, args=(f"w{i}",)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        everything = sorted(itertools.chain.from_iterable(claimed.values()))
        assert everything == sorted(model_ids)
        with db.read() as session:
            assert session.scalar(select(func.count()).select_from(LeaseLogRow)) == 12


def session_dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def test_model_rows_store_no_timezone(db: Database) -> None:
    model_id = add_model(db, add_user(db))
    with db.read() as session:
        row = session.get_one(ModelRow, model_id)
        assert row.created_at.tzinfo is None, session_dialect(session)


@pytest.mark.postgres
def test_an_upload_racing_a_delete_is_model_not_found(pg_databases: object) -> None:
    """READ COMMITTED: the delete commits between the upload's read and its write (SQLite's
    single writer makes this interleaving impossible)."""
    with pg_databases.fresh() as url:  # type: ignore[attr-defined]
        db = Database(url)
        try:
            model_id = add_model(db, add_user(db))
            with pytest.raises(errors.ModelNotFound), db.write() as uploading:
                assert uploading.get(ModelRow, model_id) is not None
                with db.write() as deleting:
                    models.delete_model(deleting, model_id)
                samples.append_samples(
                    uploading,
                    model_id=model_id,
                    inputs=np.zeros((1, 3), np.float32),
                    targets=np.zeros((1, 2), np.float32),
                    now=db.now(uploading),
                )
        finally:
            db.dispose()
