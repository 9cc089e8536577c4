"""A commit on an object store cut short while moving parts in, done again by the coordinator that
takes over (a restart, or a standby elected in its place): the output ends whole, with the parts
the first attempt had already moved (issue 13 found them deleted by the second attempt)."""

from __future__ import annotations

import pytest
from test_storage import s3  # noqa: F401  (the moto server fixture)

from mapreduce import commit, storage


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_commit_cut_short_while_moving_parts_is_finished_whole(s3, monkeypatch, overwrite):  # noqa: F811
    for name, value in s3.env.items():
        monkeypatch.setenv(name, value)
    bucket = s3.bucket("commit")
    staging, output = f"s3://{bucket}/.out.staging", f"s3://{bucket}/out"
    parts = {f"part-0000{n}": f"part {n}\n".encode() for n in range(3)}
    for name, data in parts.items():
        s3.put(f"{bucket}/.out.staging/{name}", data)
    if overwrite:  # an older output, with more parts than the new one
        for n in range(5):
            s3.put(f"{bucket}/out/part-0000{n}", b"old\n")
        s3.put(f"{bucket}/out/_SUCCESS", b"")
    real_move, moved = storage.move, []

    def crash_after_two(source, destination):
        if len(moved) == 2:
            raise KeyboardInterrupt("the coordinator dies here")
        real_move(source, destination)
        moved.append(destination)

    monkeypatch.setattr(storage, "move", crash_after_two)
    with pytest.raises(KeyboardInterrupt):
        commit.commit_job(staging, output, overwrite, "job-1")
    monkeypatch.setattr(storage, "move", real_move)
    assert not commit.committed_by(output, "job-1")
    commit.commit_job(staging, output, overwrite, "job-1")  # done again, as after a takeover
    found = {key.rsplit("/", 1)[-1] for key in s3.keys(f"{bucket}/out")}
    assert found == {*parts, "_SUCCESS"}
    for name, data in parts.items():
        with s3.fs.open_input_stream(f"{bucket}/out/{name}") as stream:
            assert stream.read() == data


def test_a_fenced_commit_stops_before_the_next_object_and_is_finished_by_the_next_leader(
    s3,  # noqa: F811
    monkeypatch,
):
    for name, value in s3.env.items():
        monkeypatch.setenv(name, value)
    bucket = s3.bucket("fenced")
    staging, output = f"s3://{bucket}/.out.staging", f"s3://{bucket}/out"
    parts = {f"part-0000{n}": f"part {n}\n".encode() for n in range(3)}
    for name, data in parts.items():
        s3.put(f"{bucket}/.out.staging/{name}", data)
    asked = []

    def leader_for_two_objects() -> bool:
        asked.append(True)
        return len(asked) <= 2

    with pytest.raises(commit.CommitFenced):
        commit.commit_job(staging, output, False, "job-1", still_allowed=leader_for_two_objects)
    found = {key.rsplit("/", 1)[-1] for key in s3.keys(f"{bucket}/out")}
    assert "_SUCCESS" not in found and len(found & set(parts)) == 2
    commit.commit_job(staging, output, False, "job-1", still_allowed=lambda: True)
    found = {key.rsplit("/", 1)[-1] for key in s3.keys(f"{bucket}/out")}
    assert found == {*parts, "_SUCCESS"}
