"""Stream human loop output files (every variant A2I has written) as typed records."""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NamedTuple

import orjson
from fsspec.implementations.local import LocalFileSystem

from closedloop.errors import StoreError
from closedloop.store.objects import STORAGE_ERRORS, filesystem_for

__all__ = [
    "OUTPUT_FILE_NAME",
    "Answer",
    "BadFile",
    "LoopRecord",
    "find_output_files",
    "parse_output",
    "read_outputs",
]

logger = logging.getLogger(__name__)

OUTPUT_FILE_NAME = "output.json"
_BATCH_SIZE = 256
_CHUNK = 1 << 16
_FLAT_BUILTIN_KEYS = (
    "aiServiceRequest",
    "aiServiceResponse",
    "humanTaskActivationConditionResults",
    "selectedAiServiceResponse",
)


class Answer(NamedTuple):
    """One worker's answer to a human loop, as A2I records it."""

    answer_content: dict[str, Any]
    worker_id: str | None = None
    submission_time: str | None = None
    acceptance_time: str | None = None
    time_spent_seconds: float | None = None
    identity: dict[str, Any] | None = None


class LoopRecord(NamedTuple):
    """One human loop read from a file: its input, answers and, when known, status.

    ``kind`` says which shape the file had: ``output`` (2020-09 onwards),
    ``flat-builtin`` (early-2020 built-in task), ``early-custom``
    (``humanLoopInputContent``), ``simplified`` (``input``/``humanAnswer``) or
    ``status`` (a DescribeHumanLoop response or status-change event, no answers).
    """

    path: str
    human_loop_name: str
    kind: str
    input_content: dict[str, Any] | None
    answers: tuple[Answer, ...]
    flow_definition_arn: str | None = None
    status: str | None = None
    ml_result: Any = None


class BadFile(NamedTuple):
    """A file that could not be read as a human loop, and why."""

    path: str
    reason: str


def read_outputs(
    sources: Sequence[str] | str, *, threads: int = 1
) -> Iterator[LoopRecord | BadFile]:
    """Yield one record (or one bad file) per ``output.json`` under ``sources``.

    Each source is a folder or fsspec URL searched for ``**/output.json``, or a
    single file. Files are loaded in batches on ``threads`` background threads
    (at most a few batches ahead) and parsed on the caller's thread, so memory
    stays flat however many files there are; ``threads=0`` does it all inline.
    A source that cannot be listed (no such bucket, no connection) is a StoreError.
    """
    for source in [sources] if isinstance(sources, str) else sources:
        fs, root = filesystem_for(source, "SOURCE")
        try:
            yield from _read_source(fs, root, threads)
        except STORAGE_ERRORS as error:
            raise StoreError(f"cannot read SOURCE {source!r}: {error}") from error


def _read_source(fs: Any, root: str, threads: int) -> Iterator[LoopRecord | BadFile]:
    local = isinstance(fs, LocalFileSystem)
    load = _load_local if local else _remote_loader(fs)
    batches = _batched(find_output_files(fs, root), _BATCH_SIZE)
    for batch in _prefetched(batches, load, threads):
        for path, data in batch:
            url = path if local else fs.unstrip_protocol(path)
            if isinstance(data, bytes):
                yield parse_output(data, url)
            else:
                yield _bad(url, f"cannot be read: {data}")


def find_output_files(fs: Any, root: str) -> Iterator[str]:
    """Yield the paths of every output file under ``root``, in sorted order.

    A2I's key layout puts the loop's creation time in the path, so sorted
    order is creation order.
    """
    if fs.isfile(root):
        yield root
    elif isinstance(fs, LocalFileSystem):
        yield from _walk_local(root)
    else:
        # find, not glob: a prefix may hold glob's special characters ([, *, ?).
        paths = fs.find(root.rstrip("/"))
        yield from sorted(p for p in paths if p.rsplit("/", 1)[-1] == OUTPUT_FILE_NAME)


def _walk_local(root: str) -> Iterator[str]:
    folders = [root]
    while folders:
        try:
            entries = sorted(os.scandir(folders.pop()), key=_name, reverse=True)
        except OSError as error:
            logger.warning("Skipping folder %s: %s", error.filename, error.strerror)
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                folders.append(entry.path)
            elif entry.name == OUTPUT_FILE_NAME:
                yield entry.path


def _name(entry: os.DirEntry[str]) -> str:
    return entry.name


def _batched(paths: Iterable[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for path in paths:
        batch.append(path)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


_Loaded = list[tuple[str, bytes | str]]


def _prefetched(
    batches: Iterator[list[str]], load: Callable[[list[str]], _Loaded], threads: int
) -> Iterator[_Loaded]:
    if threads < 1:
        yield from map(load, batches)
        return
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="a2i-read") as pool:
        pending: deque[Future[_Loaded]] = deque()
        for batch in batches:
            pending.append(pool.submit(load, batch))
            if len(pending) > 2 * threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _load_local(paths: list[str]) -> _Loaded:
    return [(path, _read_local(path)) for path in paths]


def _read_local(path: str) -> bytes | str:
    """The file's bytes, or why it cannot be read; os.read keeps syscalls few."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as error:
        return error.strerror or str(error)
    try:
        chunks = [os.read(fd, _CHUNK)]
        while len(chunks[-1]) == _CHUNK:
            chunks.append(os.read(fd, _CHUNK))
    except OSError as error:
        return error.strerror or str(error)
    finally:
        os.close(fd)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _remote_loader(fs: Any) -> Callable[[list[str]], _Loaded]:
    def load(paths: list[str]) -> _Loaded:
        # cat_ranges, not cat: cat would expand glob characters ([, *, ?) in a key.
        contents = fs.cat_ranges(paths, None, None, on_error="return")
        return [
            (path, _bytes_or_reason(data))
            for path, data in zip(paths, contents, strict=True)
        ]

    return load


def _bytes_or_reason(data: Any) -> bytes | str:
    return data if isinstance(data, bytes) else repr(data)


def parse_output(data: bytes, path: str) -> LoopRecord | BadFile:
    """Parse one file's bytes into a record, or say why it is not one."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        return _bad(path, f"is not valid JSON: {error}")
    if not isinstance(document, dict):
        return _bad(path, f"must hold a JSON object; got {type(document).__name__}")
    try:
        return _parse_document(document, path)
    except (TypeError, ValueError) as error:
        return _bad(path, str(error))


def _bad(path: str, reason: str) -> BadFile:
    logger.warning("Skipping %s: %s", path, reason)
    return BadFile(path, reason)


def _parse_document(document: dict[str, Any], path: str) -> LoopRecord:
    if "humanAnswers" in document:
        return _parse_a2i(document, path)
    if "humanAnswer" in document or "input" in document:
        return _parse_simplified(document, path)
    if "HumanLoopStatus" in document or "detail" in document:
        return _parse_status(document, path)
    keys = sorted(document)[:8]
    raise ValueError(f"is not a human loop output: no humanAnswers key among {keys}")


def _parse_a2i(document: dict[str, Any], path: str) -> LoopRecord:
    if "inputContent" in document:
        kind, content = "output", document["inputContent"]
    elif "humanLoopInputContent" in document:
        kind, content = "early-custom", document["humanLoopInputContent"]
    else:
        kind = "flat-builtin"
        content = {key: document[key] for key in _FLAT_BUILTIN_KEYS if key in document}
    if not isinstance(content, dict):
        raise ValueError(f"inputContent must be an object; got {content!r:.80}")
    answers = document["humanAnswers"]
    if not isinstance(answers, list):
        raise ValueError(f"humanAnswers must be a list; got {answers!r:.80}")
    return LoopRecord(
        path=path,
        human_loop_name=_loop_name(document.get("humanLoopName"), path),
        kind=kind,
        input_content=content,
        answers=tuple(_parse_answer(answer) for answer in answers),
        flow_definition_arn=document.get("flowDefinitionArn"),
        status=document.get("humanLoopStatus"),
    )


def _parse_answer(answer: Any) -> Answer:
    if not isinstance(answer, dict):
        raise ValueError(f"each of humanAnswers must be an object; got {answer!r:.80}")
    content = answer.get("answerContent")
    if not isinstance(content, dict):
        raise ValueError(f"answerContent must be an object; got {content!r:.80}")
    metadata = answer.get("workerMetadata")
    identity = metadata.get("identityData") if isinstance(metadata, dict) else None
    spent = answer.get("timeSpentInSeconds")
    return Answer(
        answer_content=content,
        worker_id=_optional_str(answer.get("workerId")),
        submission_time=answer.get("submissionTime"),
        acceptance_time=answer.get("acceptanceTime"),
        time_spent_seconds=float(spent) if spent is not None else None,
        identity=identity if isinstance(identity, dict) else None,
    )


def _parse_simplified(document: dict[str, Any], path: str) -> LoopRecord:
    metadata = document.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    content = document.get("input")
    if not isinstance(content, dict):
        content = {"taskObject": content}
    raw = document.get("humanAnswer")
    raw_answers = raw if isinstance(raw, list) else [] if raw is None else [raw]
    answers = tuple(_simplified_answer(answer, metadata) for answer in raw_answers)
    return LoopRecord(
        path=path,
        human_loop_name=_loop_name(metadata.get("humanLoopName"), path),
        kind="simplified",
        input_content=content,
        answers=answers,
        flow_definition_arn=metadata.get("flowDefinitionArn"),
        status=metadata.get("humanLoopStatus"),
        ml_result=document.get("mlResult"),
    )


def _simplified_answer(answer: Any, metadata: dict[str, Any]) -> Answer:
    if isinstance(answer, dict) and "answerContent" in answer:
        return _parse_answer(answer)
    if not isinstance(answer, dict):
        answer = {"label": answer}
    return Answer(
        answer_content=answer,
        worker_id=_optional_str(metadata.get("workerId")),
        submission_time=metadata.get("submissionTime"),
    )


def _parse_status(document: dict[str, Any], path: str) -> LoopRecord:
    detail = document.get("detail", document)
    if not isinstance(detail, dict):
        raise ValueError(f"detail must be an object; got {detail!r:.80}")
    name = detail.get("humanLoopName", detail.get("HumanLoopName"))
    status = detail.get("humanLoopStatus", detail.get("HumanLoopStatus"))
    arn = detail.get("flowDefinitionArn", detail.get("FlowDefinitionArn"))
    if not isinstance(status, str):
        raise ValueError(f"is not a human loop output: HumanLoopStatus is {status!r}")
    return LoopRecord(
        path=path,
        human_loop_name=_loop_name(name, path),
        kind="status",
        input_content=None,
        answers=(),
        flow_definition_arn=arn,
        status=status,
    )


def _loop_name(name: Any, path: str) -> str:
    if isinstance(name, str) and name:
        return name
    return os.path.basename(os.path.dirname(path.rstrip("/"))) or path


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)
