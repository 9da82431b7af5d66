"""A batch's job list (CSV with a header row, or YAML) and which of its outputs are complete.

Columns (CSV) or keys (YAML, a list of mappings, or a mapping with ``jobs:``):

- ``identity``: a trained identity;
- the speech, one of ``audio`` (any audio or video file), ``text`` (a script) or ``video``; a
  ``video`` alone is rendered saying its own sound track, a ``video`` with ``audio`` or ``text`` is
  dubbed (`nerfhead dub`: that take of the presenter, the lower face re-rendered);
- optional: ``voice`` (for ``text``), ``composite`` (portrait or full), ``start`` and ``duration``
  (seconds), ``output`` (a file name in the output folder; default ``NNN-IDENTITY-NAME.mp4``).

Relative paths are relative to the job file's folder. An output is complete when the mp4 is there
and its record ``.batch/NAME.json`` holds the job's key (the job's fields and its input files' sizes
and times, the avatar's checkpoint): a rerun skips those and renders the rest.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import yaml

from nerfhead.avatar.load import checkpoint_path
from nerfhead.dataset import Identity, check_name
from nerfhead.errors import InputError
from nerfhead.io.files import write_atomic
from nerfhead.render.driven import COMPOSITES

RECORDS = ".batch"
_OUTPUT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,120}\.mp4$")


@dataclass
class BatchJob:
    identity: str
    audio: str | None = None
    text: str | None = None
    video: str | None = None
    voice: str | None = None
    composite: str | None = None
    start: float = 0.0
    duration: float | None = None
    own_voice: bool = False  # the audio is the presenter's own voice (render --own-voice)
    output: str = ""
    row: int = 0  # 1-based number of the job in its file (the header row not counted), for messages

    @property
    def kind(self) -> str:
        """render (the capture's frames or every pixel from the fields) or dub (the given take)."""
        return "dub" if self.video and (self.audio or self.text) else "render"

    @property
    def speech(self) -> str | None:
        """The file whose sound is spoken (None for a script)."""
        return self.audio or (self.video if self.kind == "render" else None)

    def inputs(self) -> list[Path]:
        return [Path(p) for p in (self.audio, self.video) if p]

    def describe(self) -> str:
        what = Path(self.speech).name if self.speech else f'"{_shorten(self.text or "")}"'
        return f"{self.output} ({self.identity} says {what}{' over ' + Path(self.video).name if self.kind == 'dub' else ''})"


def _shorten(text: str, n: int = 30) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


def _number(value, what: str, row: int) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InputError(f"job {row}: {what} must be a number of seconds, not {value!r}") from None


def _flag(value, what: str, row: int) -> bool:
    text = "" if value is None else str(value).strip().lower()
    if text in ("", "no", "false", "0"):
        return False
    if text in ("yes", "true", "1"):
        return True
    raise InputError(f"job {row}: {what} must be yes or no, not {value!r}")


def _job(raw: dict, row: int, base: Path) -> BatchJob:
    known = {f.name for f in fields(BatchJob)} - {"row"}
    unknown = sorted(k for k in raw if k not in known)
    if unknown:
        raise InputError(f"job {row}: unknown column {unknown[0]!r} (columns: {', '.join(sorted(known))})")
    d = {k: (str(v).strip() if v is not None and not isinstance(v, (int, float)) else v) for k, v in raw.items()}
    d = {k: (None if v == "" else v) for k, v in d.items()}
    if not d.get("identity"):
        raise InputError(f"job {row}: no identity")
    try:
        check_name(str(d["identity"]))
    except InputError as exc:
        raise InputError(f"job {row}: {exc}") from None
    if not (d.get("audio") or d.get("text") or d.get("video")):
        raise InputError(f"job {row}: give one of audio, text or video")
    if d.get("audio") and d.get("text"):
        raise InputError(f"job {row}: give audio or text, not both")
    if d.get("composite") and d["composite"] not in COMPOSITES:
        raise InputError(f"job {row}: composite must be {' or '.join(COMPOSITES)}, not {d['composite']!r}")
    for key in ("audio", "video"):
        if d.get(key):
            p = Path(str(d[key])).expanduser()
            d[key] = str(p if p.is_absolute() else (base / p))
            if not Path(d[key]).is_file():
                raise InputError(f"job {row}: {key} file not found: {d[key]}")
    if d.get("video") and (d.get("audio") or d.get("text")):
        ignored = [k for k in ("composite", "start", "duration") if d.get(k) is not None]
        if ignored:
            raise InputError(f"job {row}: a dub (video with audio or text) takes the whole take as it is; "
                             f"remove {', '.join(ignored)}")
    start = _number(d.get("start"), "start", row) or 0.0
    duration = _number(d.get("duration"), "duration", row)
    if start < 0 or (duration is not None and duration <= 0):
        raise InputError(f"job {row}: start must be >= 0 and duration > 0")
    own_voice = _flag(d.get("own_voice"), "own_voice", row)
    if own_voice and d.get("text"):
        raise InputError(f"job {row}: own_voice is for a recording of the presenter (audio), not a script a TTS voice speaks")
    job = BatchJob(identity=str(d["identity"]), audio=d.get("audio"), text=d.get("text"), video=d.get("video"),
                   voice=d.get("voice"), composite=d.get("composite"), start=start, duration=duration,
                   own_voice=own_voice, output=str(d.get("output") or ""), row=row)
    if not job.output:
        stem = Path(job.speech).stem if job.speech else "script"
        job.output = f"{row:03d}-{job.identity}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', stem)[:60]}.mp4"
    elif not job.output.endswith(".mp4"):
        job.output += ".mp4"
    if not _OUTPUT.fullmatch(job.output):
        raise InputError(f"job {row}: output {job.output!r} must be a plain file name (letters, digits, '_', '-', '.')")
    return job


def load_jobs(path: str | Path) -> list[BatchJob]:
    """The jobs of a CSV (header row) or YAML file, checked; raises InputError naming the job."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"job file not found: {path}")
    base = path.resolve().parent
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{path} is not a UTF-8 text file") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InputError(f"{path} is not valid YAML ({str(exc).splitlines()[0]})") from None
        data = data.get("jobs") if isinstance(data, dict) else data
        if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
            raise InputError(f"{path}: expected a list of jobs (mappings with identity, audio/text/video, ...)")
        raw = [(k + 1, d) for k, d in enumerate(data)]
    elif path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))  # a quoted script keeps its line breaks
        if not reader.fieldnames or "identity" not in [f.strip() for f in reader.fieldnames]:
            raise InputError(f"{path}: the first row must be a header naming the columns (identity, audio, text, ...)")
        rows = [{k.strip(): v for k, v in r.items() if k is not None} for r in reader]
        raw = list(enumerate((r for r in rows if any((v or "").strip() for v in r.values() if isinstance(v, str))), 1))
    else:
        raise InputError(f"{path}: a job file is .csv (with a header row) or .yaml")
    jobs = [_job(d, row, base) for row, d in raw]
    if not jobs:
        raise InputError(f"{path} holds no jobs")
    seen: dict[str, int] = {}
    for j in jobs:
        if j.output in seen:
            raise InputError(f"jobs {seen[j.output]} and {j.row} both write {j.output}")
        seen[j.output] = j.row
    return jobs


def job_key(job: BatchJob, root: str | Path | None) -> str:
    """What makes an output up to date: the job's fields, its inputs' sizes and times, the avatar."""
    ckpt = checkpoint_path(Identity.at(job.identity, root), "torso")
    parts = {**asdict(job), "row": None, "files": [_stamp(p) for p in job.inputs()], "avatar": _stamp(ckpt)}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]


def _stamp(path: Path) -> list:
    try:
        st = Path(path).stat()
        return [str(path), st.st_size, st.st_mtime_ns]
    except OSError:
        return [str(path), None, None]


def record_path(out_dir: Path, job: BatchJob) -> Path:
    return out_dir / RECORDS / f"{job.output}.json"


def is_complete(out_dir: Path, job: BatchJob, key: str) -> bool:
    try:
        record = json.loads(record_path(out_dir, job).read_text())
    except (OSError, ValueError):
        return False
    return record.get("key") == key and (out_dir / job.output).is_file()


def write_record(out_dir: Path, job: BatchJob, key: str, summary: dict) -> None:
    """Mark a finished output (written after the mp4 is in place, so a record means a whole file)."""
    write_atomic(record_path(out_dir, job), json.dumps({"key": key, **summary}, indent=1))
