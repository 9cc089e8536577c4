"""A map attempt: the split's records through the user's mapper, out to the shuffle or the output.

Three variants: per-record (`mapper`) into the shuffle's sorted runs, per-record straight to part
files (a map-only job, or one run with --reducers 0), and vectorised (`map_batches`: Arrow batches
in, then Arrow aggregation and runs, or part files). Each reads only its split and writes only
under the attempt's own directory.
"""

from __future__ import annotations

from itertools import repeat

from mapreduce import defaults, shuffle, vectorized
from mapreduce.inputs import BadRecord, Split, read_blocks, read_line_lists, read_records
from mapreduce.jobspec import Job
from mapreduce.output import part_writer
from mapreduce.pairs import not_iterable_output
from mapreduce.worker import skipping
from mapreduce.worker.access import check_readable, make_output_dir
from mapreduce.worker.failures import TaskError, failure_report
from mapreduce.worker.hooks import call_hook, hook_output


def run_map(job: Job, task: dict) -> dict:
    split = Split.from_wire(task["split"])
    bad_records: list | None = [] if task.get("skip_bad_records") else None
    skip = {int(ordinal): where for ordinal, where in skipping.skip_list(task).items()}
    skipped: list = []
    for segment in split.segments:
        check_readable(segment.path)
    make_output_dir(task["out_dir"])
    if job.map_batches is not None:
        return _run_map_batches(job, task, split)
    if _map_only(task):
        writer = part_writer(task["out_dir"], task["part"], task.get("output_format", "text"))
        try:
            # Pairs a job with a reducer would refuse are refused here too, with the same message.
            records_in = _map_split(
                job,
                split,
                lambda pairs: writer.write_pairs(shuffle.checked_as_shuffled(pairs), "mapper"),
                bad_records,
                skip=skip,
                skipped=skipped,
            )
        except BaseException as exc:
            writer.close(exc)
            raise
        writer.close()
        return {
            "counters": {
                "map_input_records": records_in,
                "map_output_records": writer.records,
                "output_records": writer.records,
                "bad_records_skipped": len(bad_records or ()),
                "records_skipped": len(skipped),
            },
            "skipped": skipped + _malformed(bad_records),
        }
    writer = shuffle.MapOutputWriter(
        task["out_dir"],
        task["partitions"],
        partitioner=job.partitioner,
        combiner=job.combiner,
        combiner_final=job.combiner_final,
        sort_values=job.sort_values,
        compression=job.shuffle_compression,
        **_buffer(task),
    )
    if job.combiner is not None:
        call_hook(job.combiner_init, "combiner_init", job)
    records_in = _map_split(
        job,
        split,
        writer.add_pairs,
        bad_records,
        writer.flush,
        skip=skip,
        skipped=skipped,
        writer=writer,
    )
    result = writer.close()
    return {
        "files": {str(p): paths for p, paths in result.files.items()},
        "shuffle_stats": result.stats,
        "counters": {
            "map_input_records": records_in,
            "map_output_records": result.records_in,
            "shuffle_records": result.records_out,
            "shuffle_bytes": result.bytes_written,
            "bad_records_skipped": len(bad_records or ()),
            "records_skipped": len(skipped),
        },
        "skipped": skipped + _malformed(bad_records),
    }


def _buffer(task: dict) -> dict:
    """The job's map-side buffer (--sort-buffer, --spill-records), as MapOutputWriter's keywords;
    the defaults when the task does not say (a coordinator from before they were settings)."""
    return {
        "spill_records": task.get("spill_records", defaults.SPILL_RECORDS),
        "sort_buffer_bytes": task.get("sort_buffer", defaults.SORT_BUFFER_BYTES),
    }


def _malformed(bad_records: list | None) -> list:
    """The malformed records --skip-bad-records skipped, as OUTPUT/_logs/skipped lists them."""
    return [f"{record.path}: malformed: {record.cause}" for record in bad_records or ()]


def _map_only(task: dict) -> bool:
    """Whether this map task writes part files rather than shuffle runs: the coordinator gives
    a number of partitions only when there are reducers, which a job with a reducer run with
    --reducers 0 has not (so its combiner and reducer go unused)."""
    return "partitions" not in task


def _run_map_batches(job: Job, task: dict, split: Split) -> dict:
    """The vectorised map: Arrow batches through map_batches, Arrow aggregation, Arrow runs."""
    records_in = rows_out = 0
    map_batches, aggregation = job.map_batches, job.aggregation
    assert map_batches is not None, "a vectorised map task of a job without map_batches"
    aggregator = (
        vectorized.BatchAggregator(aggregation)
        if aggregation is not None and vectorized.aggregates_on_map_side(aggregation)
        else None
    )
    writer = (
        part_writer(task["out_dir"], task["part"], task.get("output_format", "text"))
        if _map_only(task)
        else None
    )
    spiller = (  # shuffle runs written every SPILL_RECORDS rows, not the split's output at once
        None
        if writer is not None
        else vectorized.RunSpiller(
            task["out_dir"],
            task["partitions"],
            job.partitioner,
            job.partition_batches,
            job.sort_values,
            spill_records=_buffer(task)["spill_records"],
            compression=job.shuffle_compression,
            sort_keys=aggregator is None,  # partial results are hashed together, not merged
        )
    )
    try:
        for path, values in read_blocks(split, job.input_format):
            records_in += len(values)
            try:
                output = vectorized.checked_output(
                    map_batches(vectorized.input_batch(path, values)), aggregation
                )
            except Exception as exc:
                raise TaskError(
                    failure_report(exc, job, f"while mapping a batch of {path}")
                ) from None
            rows_out += output.num_rows
            if writer is not None:
                # A REDUCE = "count" job's rows have no value: each row counts as 1.
                values = (
                    output.column("value").to_pylist()
                    if "value" in output.column_names
                    else repeat(1, output.num_rows)
                )
                for key, value in zip(output.column("key").to_pylist(), values):
                    writer.write(key, value)
            elif aggregator is not None:
                aggregator.add(output)
            elif spiller is not None:
                spiller.add(output)
    except BaseException as exc:
        if writer is not None:
            writer.close(exc)
        raise
    counters = {"map_input_records": records_in, "map_output_records": rows_out}
    if writer is not None:
        writer.close()
        return {"counters": {**counters, "output_records": writer.records}}
    assert spiller is not None, "a vectorised map task with neither part files nor runs"
    partials = aggregator.result() if aggregator is not None else None
    if partials is not None:
        spiller.add(partials)
    files, written, stats, shuffled = spiller.close()
    return {
        "files": {str(p): paths for p, paths in files.items()},
        "shuffle_stats": stats,
        "counters": {
            **counters,
            "shuffle_records": shuffled,
            "shuffle_bytes": written,
        },
    }


def _map_split(
    job: Job,
    split: Split,
    emit,
    bad_records: list | None = None,
    finish=None,
    skip: dict | None = None,
    skipped: list | None = None,
    writer: shuffle.MapOutputWriter | None = None,
) -> int:
    """Feed every record of the split to the mapper and each record's output to `emit` (then
    mapper_final's, then call `finish`, which may still find a bad pair); returns the record
    count. A failure is annotated with the file and line being mapped, or with the record's that
    `records_ago` on the error points at (mapper_final's output counts as one more record).
    Records whose ordinal is in `skip` (--skip-bad-records: they crashed the mapper twice) are
    not mapped but appended, as where they are, to `skipped`.

    With `writer` (the MapOutputWriter whose add_pairs is `emit`), "lines" input and nothing to
    skip, the lines are mapped a block at a time by the writer's C loop (map_lines), which hands
    back to this loop, record by record for the rest of the block, whatever it does not take."""
    mapper = job.mapper
    assert mapper is not None, "a per-record map task of a job without a mapper"
    records = 0
    path, path_start = None, 0
    final_emitted = mapping = False  # mapping: the mapper is at work on a record
    in_blocks = (
        writer is not None and writer.can_map_lines and job.input_format == "lines" and not skip
    )
    call_hook(job.mapper_init, "mapper_init", job)
    try:
        if in_blocks:
            assert writer is not None
            for key, lines in read_line_lists(split):
                if key is not path:
                    _finish_file(finish, path)
                    path, path_start = key, records
                base, index, in_c = records, 0, True
                while index < len(lines):
                    if in_c and writer.maps_lines:
                        index, rest, error = writer.map_lines(mapper, key, lines, index)
                        records = base + index
                        if index == len(lines):
                            break
                        in_c = False  # the rest of the block goes record by record
                        records += 1
                        value = lines[index]
                        mapping = True
                        if error is not None:
                            raise error
                        _emit_output(emit, rest)
                    else:
                        records += 1
                        value = lines[index]
                        mapping = True
                        _emit_output(emit, mapper(key, value))
                    mapping = False
                    index += 1
        else:
            for key, value in read_records(split, job.input_format, bad_records):
                if key is not path:
                    _finish_file(finish, path)
                    path, path_start = key, records
                records += 1
                if skip and records in skip:
                    if skipped is not None:
                        skipped.append(skip[records])
                    continue
                mapping = True
                _emit_output(emit, mapper(key, value))
                mapping = False
        if job.mapper_final is not None:
            final_emitted = True
            emit(hook_output(job.mapper_final, "mapper_final", job))
        if finish is not None:
            finish()
    except TaskError:
        raise
    except BadRecord as exc:
        raise TaskError(
            {
                "type": "BadRecord",
                "traceback": "",
                "message": f"{exc} (--skip-bad-records skips such records)",
            }
        ) from None
    except Exception as exc:
        records_ago = getattr(exc, "records_ago", 0) - final_emitted
        if final_emitted and records_ago < 0:
            raise TaskError(failure_report(exc, job, "in mapper_final")) from None
        if path is None:
            raise
        number = records - path_start - records_ago
        location = (
            _record_location(split, job.input_format, path, number)
            if number > 0
            else f"while mapping split {split.describe()}"
        )
        report = failure_report(exc, job, location)
        if mapping and not report.get("permanent"):
            # What --skip-bad-records needs to skip this record if it fails again.
            report["record"] = {
                **skipping.map_record(split, job.input_format, path, records, number, value),
                "cause": f"{type(exc).__name__}: {exc}",
            }
        raise TaskError(report) from None
    return records


def _finish_file(finish, path) -> None:
    """Check what a file's records gave before the next file's (a bad pair found later would be
    located by records_ago from the next file's first line)."""
    if finish is not None and path is not None:
        finish()


def _emit_output(emit, output) -> None:
    """Give one record's output to `emit` (one call per record: records_ago counts them)."""
    try:
        emit(output if output is not None else ())
    except TypeError:
        if not hasattr(output, "__iter__"):  # `return 1` rather than `yield word, 1`
            raise not_iterable_output("mapper", output) from None
        raise


def _record_location(split: Split, input_format: str, path: str, number: int) -> str:
    if input_format == "files":
        return f"while mapping file {path}"
    start = next((s.start for s in split.segments if s.path == path), 0)
    where = (
        f"line {number}" if start == 0 else f"line {number} of the split starting at byte {start}"
    )
    return f"while mapping {path}, {where}"
