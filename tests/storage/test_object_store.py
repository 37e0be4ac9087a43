"""The segment store on a real S3 store (SeaweedFS): same layout, same answers, lease, retention,
and other engines reading the bucket in place."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import chdb
import duckdb
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pytest

from spanlake.storage.compaction import partitions
from spanlake.storage.lease import S3Lease
from spanlake.storage.location import Location, open_location
from spanlake.storage.segments import HOUR_NS, list_segment_paths, partition_of
from spanlake.storage.sql import SqlEngine
from spanlake.storage.store import SegmentStore, StoreConfig
from tests.seaweedfs import ACCESS_KEY, SECRET_KEY, SeaweedFS
from tests.storage.test_store import _ids, _spans


def _store(tmp_path: Path, bucket: str, **config: float) -> SegmentStore:
    loc = open_location(f"s3://{bucket}/store")
    return SegmentStore(tmp_path / "local", StoreConfig(flush_interval_s=3600, **config),  # type: ignore[arg-type]
                        storage=loc)


def _count(engine: SqlEngine) -> int:
    return int(engine.execute("SELECT count(*) FROM spans").table.column(0)[0].as_py())


def test_flushed_segments_land_in_the_bucket_in_the_hive_layout(tmp_path: Path, bucket: str) -> None:
    store = _store(tmp_path, bucket)
    spans = _spans(10, 3)
    store.write(spans)
    store.flush()
    (path,) = list_segment_paths(store.loc)
    assert path.startswith(f"{bucket}/store/spans/tenant=single-tenant/date=") and "/hour=" in path
    for suffix in (".tids", ".bloom"):
        assert store.loc.fs.get_file_info(path.replace(".parquet", suffix)).size > 0
    assert not (tmp_path / "local" / "spans").exists()  # only the WAL is local
    store.close()


def test_a_query_only_store_reads_what_another_wrote(tmp_path: Path, bucket: str) -> None:
    writer = _store(tmp_path / "w", bucket)
    spans = _spans(8, 5)
    writer.write(spans)
    writer.flush()
    reader = SegmentStore(tmp_path / "r", StoreConfig(), writable=False,
                          storage=open_location(f"s3://{bucket}/store"))
    found = reader.get_traces(_ids(spans))
    assert found.num_rows == spans.num_rows
    assert sorted(found.column("span_id").to_pylist()) == sorted(spans.column("span_id").to_pylist())
    engine = SqlEngine(reader.snapshot)
    assert _count(engine) == spans.num_rows
    engine.close()
    writer.close()


def test_compaction_keeps_replaced_segments_for_the_grace_period_without_double_counting(
        tmp_path: Path, bucket: str) -> None:
    store = _store(tmp_path, bucket, compaction_grace_s=3600)
    old = time.time_ns() - 5 * HOUR_NS
    written = [_spans(6, 2, start_ns=old) for _ in range(3)]
    for spans in written:
        store.write(spans)
        store.flush()
    stale = store.snapshot()  # a query that listed the store before the merge
    result = store.compact(settled_before_ns=time.time_ns())
    assert (result.inputs, result.outputs) == (3, 1)
    assert len(list_segment_paths(store.loc)) == 4  # inputs still there for running queries
    assert all(store.loc.fs.get_file_info(s.path).size > 0 for s in stale.segments)
    engine = SqlEngine(store.snapshot)
    assert _count(engine) == 36  # the fresh listing skips the replaced inputs
    engine.close()
    store.close()


def test_retention_deletes_old_hours_from_the_bucket_and_nothing_newer(tmp_path: Path, bucket: str) -> None:
    store = _store(tmp_path, bucket)
    now = time.time_ns()
    old, recent, new = (_spans(start_ns=now - h * HOUR_NS) for h in (50, 20, 0))
    for spans in (old, recent, new):
        store.write(spans)
    store.flush()
    assert len(list_segment_paths(store.loc)) == 3
    assert store.drop_older_than(now - 24 * HOUR_NS) == 1
    left = list_segment_paths(store.loc)
    assert len(left) == 2 and not any(p.endswith((".tids", ".bloom")) for p in left)
    files = [i.path for i in store.loc.fs.get_file_info(_selector(store.loc))]
    assert not any(_partition(now - 50 * HOUR_NS) in f for f in files)  # sidecars gone too
    assert store.get_traces(_ids(old)).num_rows == 0
    assert store.get_traces(_ids(recent)).num_rows == recent.num_rows
    assert store.get_traces(_ids(new)).num_rows == new.num_rows
    store.close()


def test_duckdb_and_chdb_read_the_bucket_and_count_what_spanlake_reports(
        tmp_path: Path, bucket: str, seaweedfs: SeaweedFS) -> None:
    store = _store(tmp_path, bucket)
    for hours_ago in (3, 0):
        store.write(_spans(25, 4, start_ns=time.time_ns() - hours_ago * HOUR_NS))
        store.flush()
    engine = SqlEngine(store.snapshot)
    reported = _count(engine)
    engine.close()
    store.close()
    assert reported == 200

    # Plain DuckDB, no spanlake code: pyarrow's S3 filesystem hands it the Hive-partitioned dataset.
    s3 = pafs.S3FileSystem(endpoint_override=seaweedfs.endpoint.removeprefix("http://"), scheme="http",
                           access_key=ACCESS_KEY, secret_key=SECRET_KEY, region="us-east-1")
    base = f"{bucket}/store/spans"
    files = [f.path for f in s3.get_file_info(pafs.FileSelector(base, recursive=True))
             if f.path.endswith(".parquet")]
    dataset = ds.dataset(files, filesystem=s3, format="parquet", partitioning="hive",
                         partition_base_dir=base)
    con = duckdb.connect()
    con.register("bucket", dataset)
    assert con.sql("SELECT count(*) FROM bucket").fetchall() == [(reported,)]
    hours = con.sql("SELECT count(DISTINCT hour) FROM bucket").fetchall()
    assert hours == [(2,)]  # the partition columns come from the paths
    assert con.sql("SELECT DISTINCT tenant FROM bucket").fetchall() == [("single-tenant",)]

    # ClickHouse (chDB): its own S3 client, reading the bucket in place.
    url = f"{seaweedfs.endpoint}/{bucket}/store/spans/*/*/*/*.parquet"  # tenant/date/hour
    answer = chdb.query(f"SELECT count() FROM s3('{url}', '{ACCESS_KEY}', '{SECRET_KEY}', 'Parquet')", "CSV")
    assert int(str(answer).strip()) == reported


def test_a_query_node_keeps_sidecars_on_local_disk_across_restarts(tmp_path: Path, bucket: str) -> None:
    writer = _store(tmp_path / "w", bucket)
    now = time.time_ns()
    old, new = _spans(start_ns=now - 50 * HOUR_NS), _spans(start_ns=now)
    writer.write(old)
    writer.write(new)
    writer.flush()
    config = StoreConfig(cache_dir=tmp_path / "cache")

    def reader() -> SegmentStore:
        return SegmentStore(tmp_path / "r", config, writable=False, storage=open_location(f"s3://{bucket}/store"))

    assert reader().get_traces(_ids(new)).num_rows == new.num_rows
    assert len(list((tmp_path / "cache").iterdir())) == 2  # both segments' trace-ID sidecars
    for path in list_segment_paths(writer.loc):  # the bucket's sidecars vanish: the cache answers
        writer.loc.fs.delete_file(path.replace(".parquet", ".tids"))
    restarted = reader()
    assert all(s._sidecar(".tids") is not None for s in restarted.snapshot().segments)
    assert restarted.get_traces(_ids(new)).num_rows == new.num_rows

    writer.drop_older_than(now - 24 * HOUR_NS)
    restarted.catalog.invalidate()
    restarted.snapshot()
    assert len(list((tmp_path / "cache").iterdir())) == 1  # the dropped segment's entry is pruned
    writer.close()


def test_a_query_node_reads_segments_from_its_disk_cache_with_the_same_answers(
        tmp_path: Path, bucket: str) -> None:
    writer = _store(tmp_path / "w", bucket)
    spans = _spans(8, 5)
    writer.write(spans)
    writer.flush()
    config = StoreConfig(cache_dir=tmp_path / "cache", segment_cache_bytes=1 << 30)
    cached = SegmentStore(tmp_path / "r", config, writable=False, storage=open_location(f"s3://{bucket}/store"))
    (segment,) = cached.snapshot().segments
    assert cached.get_traces(_ids(spans)).num_rows == spans.num_rows
    assert segment.local_file(fetch=False) is None  # a lookup reads one row group, downloads nothing
    assert _count(SqlEngine(cached.snapshot)) == spans.num_rows  # SQL reads the downloaded copy
    local = segment.local_file()
    assert local is not None and local.startswith(str(tmp_path / "cache"))
    assert Path(local).stat().st_size == writer.loc.fs.get_file_info(segment.path).size
    writer.loc.fs.delete_file(segment.path)  # the bucket's copy vanishes: the cache still answers
    found = cached.get_traces(_ids(spans))
    assert sorted(found.column("span_id").to_pylist()) == sorted(spans.column("span_id").to_pylist())
    query = "SELECT trace_id, max(start_time_unix_nano) AS latest FROM {spans} GROUP BY 1"
    assert cached.reader.run_sql(query, {}).num_rows == 8
    writer.close()


def test_exactly_one_of_two_racing_processes_gets_the_lease(bucket: str) -> None:
    loc = open_location(f"s3://{bucket}/store")
    leases = [S3Lease(loc, f"p{i}", ttl_s=30) for i in range(6)]
    results: dict[str, bool] = {}
    start = threading.Barrier(len(leases))

    def race(lease: S3Lease) -> None:
        start.wait()
        results[lease.holder] = lease.try_acquire()

    threads = [threading.Thread(target=race, args=(lease,)) for lease in leases]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(results.values()) == 1
    assert sum(lease.held() for lease in leases) == 1


def test_the_lease_is_renewed_and_taken_over_only_after_it_expires(bucket: str) -> None:
    loc = open_location(f"s3://{bucket}/store")
    a, b = S3Lease(loc, "a", ttl_s=2), S3Lease(loc, "b", ttl_s=2)
    assert a.try_acquire() and not b.try_acquire()
    time.sleep(1)
    assert a.try_acquire()  # renewed: b's wait starts over
    assert not b.try_acquire()
    time.sleep(1.2)
    assert not b.try_acquire()  # 1.2 s since it saw the renewal: not expired yet
    assert a.held()
    # a stops renewing (it died); b takes over once it has seen the same lease for the whole ttl.
    deadline = time.monotonic() + 10
    while not b.try_acquire():
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert not a.held()  # a's own clock stopped trusting it before b could take over
    assert not a.try_acquire()


def _selector(loc: Location) -> pafs.FileSelector:
    return pafs.FileSelector(loc.join("spans"), recursive=True)


def _partition(ns: int) -> str:
    from spanlake.storage.segments import partition_of

    return partition_of(ns)


@pytest.fixture(autouse=True)
def _no_stale_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)


def test_tenants_have_their_own_prefix_partitions_retention_and_sql_in_the_bucket(
        tmp_path: Path, bucket: str) -> None:
    store = _store(tmp_path, bucket)
    now = time.time_ns()
    old = now - 50 * HOUR_NS
    for _ in range(2):  # two flushes per tenant in one old hour: something to compact
        store.for_tenant("team-a").write(_spans(3, 2, start_ns=old))
        store.for_tenant("team-b").write(_spans(4, 2, start_ns=old))
        store.flush()
    store.for_tenant("team-b").write(_spans(5, 2, start_ns=now))
    store.flush()
    rel = [store.loc.relative(p) for p in list_segment_paths(store.loc)]
    assert {p.split("/")[1] for p in rel} == {"tenant=team-a", "tenant=team-b"}
    assert set(partitions(store.loc)) == {partition_of(old, "team-a"), partition_of(old, "team-b"),
                                          partition_of(now, "team-b")}

    result = store.compact(settled_before_ns=now)
    assert (result.inputs, result.outputs) == (4, 2)  # one merge per tenant, never across tenants
    assert _tenant_counts(store) == {"team-a": 12, "team-b": 26}

    assert store.drop_older_than(now - 24 * HOUR_NS, tenant="team-a") == 1  # team-a's retention only
    assert set(partitions(store.loc)) == {partition_of(old, "team-b"), partition_of(now, "team-b")}
    assert _tenant_counts(store) == {"team-a": 0, "team-b": 26}
    store.close()


def _tenant_counts(store: SegmentStore) -> dict[str, int]:
    counts = {}
    for tenant in ("team-a", "team-b"):
        engine = SqlEngine(lambda t=tenant: store.snapshot(t))  # type: ignore[misc]
        counts[tenant] = _count(engine)
        engine.close()
    return counts
