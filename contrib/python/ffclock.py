#!/usr/bin/env python3
"""Reader of the clock that 'ntpclient --publish PATH' writes. Standard library only.

The layout, the sequence-lock protocol, the verdicts and the versioning rules are in
docs/published-clock.md; this module follows that document.

    from ffclock import PublishedClock
    with PublishedClock("/run/ffclock") as clock:
        t = clock.read()
        if t.verdict == "ok":
            print(t.time_ns, "+/-", t.max_error_ns, "ns")

As a program it prints JSON lines with the same keys as 'ntpclient now --json':

    python3 contrib/python/ffclock.py PATH [COUNT]

Memory ordering: CPython reads each aligned 8-byte word with a single load, and the
sequence word is read before and after the fields; on x86-64 loads are not reordered with
each other, so the sequence check is sufficient there. On weakly ordered CPUs (arm64) prefer
the C or Swift reader, which use acquire fences.
"""

import json
import math
import mmap
import os
import struct
import sys
import time

MAGIC = 0x314B434F4C434646  # "FFCLOCK1"
LAYOUT_VERSION = 3
COUNTER_MONOTONIC_RAW = 1
USED_BYTES = 512
WORD_SEQUENCE = 2
WORD_FIELDS = 4
WORD_WRITER_FLAGS = 23
VMCLOCK_PATH_OFFSET = 256
VMCLOCK_PATH_BYTES = 256
WRITER_STOPPED = 1
WRITER_VMCLOCK = 2

STATUS_UNSYNC = 1 << 0
STATUS_STARVING = 1 << 2
STATUS_NO_ESTIMATE = 1 << 14

VMCLOCK_MAGIC = 0x4B4C4356  # "VCLK"
VMCLOCK_VERSION = 1
VMCLOCK_GENERATION_PRESENT = 1 << 8

# Words 4..26: the 19 parameters, then flags, disruption marker, generation, stale grace.
_FIELDS = struct.Struct("<qq" + "d" * 9 + "qqQQ" + "ddd" + "q" + "QQQq")
_FIELD_NAMES = (
    "counter_origin", "time_at_origin_ns", "time_at_origin_fraction", "period", "period_error",
    "period_error_bound", "local_period", "offset_ns", "error_estimate_ns", "max_error_ns",
    "max_error_growth_rate", "last_stamp_counter", "next_stamp_expected_counter", "leap", "status",
    "last_rtt_ns", "minimum_rtt_ns", "naive_offset_ns", "stamp_count",
    "writer_flags", "disruption_marker", "generation", "stale_grace_ns",
)
_WORD = struct.Struct("<Q")

VERDICTS = ("ok", "unsync", "stale", "stopped", "disrupted", "unusable")


class PublishedClockError(Exception):
    """The file cannot be read as a published clock; the message says what to do."""


class Parameters:
    """One consistent snapshot of the published words."""

    def __init__(self, values, sequence):
        for name, value in zip(_FIELD_NAMES, values):
            setattr(self, name, value)
        self.leap &= 0xFF
        self.status &= 0xFFFFFFFF
        self.sequence = sequence

    def absolute_time(self, counter):
        """Ca(counter) in whole Unix ns."""
        elapsed = (self.local_period * 1e9) * float(counter - self.counter_origin) + self.time_at_origin_fraction
        return self.time_at_origin_ns + int(math.floor(elapsed))

    def max_error(self, counter):
        """The hard bound aged to counter, ns."""
        elapsed = max(0.0, (self.period * 1e9) * float(counter - self.last_stamp_counter))
        return self.max_error_ns + self.max_error_growth_rate * elapsed

    def difference(self, from_counter, to_counter):
        """Cd: the interval between two counter reads, ns (intervals below 1024 s)."""
        return (self.period * 1e9) * float(to_counter - from_counter)

    def freshness(self, counter):
        """fresh / stale / unusable, with the stale grace applied."""
        if self.status & STATUS_NO_ESTIMATE:
            return "unusable"
        shifted = counter - max(0, self.stale_grace_ns)
        if shifted <= self.next_stamp_expected_counter:
            return "fresh"
        late = (self.period * 1e9) * float(shifted - self.next_stamp_expected_counter)
        return "unusable" if late > 1024e9 else "stale"


class Reading:
    """The time at one counter read, with its bound, status and verdict."""

    def __init__(self, parameters, counter, live_marker, retries):
        p = parameters
        self.parameters = p
        self.counter_ns = counter
        self.live_marker = live_marker
        self.retries = retries
        disrupted = bool(p.writer_flags & WRITER_VMCLOCK) and live_marker is not None \
            and live_marker != (p.disruption_marker, p.generation)
        self.time_ns = p.absolute_time(counter)
        self.max_error_ns = math.inf if disrupted else p.max_error(counter)
        self.freshness = p.freshness(counter)
        status = p.status
        poll = p.next_stamp_expected_counter - p.last_stamp_counter
        if poll > 0 and counter - p.last_stamp_counter > 10 * poll:
            status |= STATUS_STARVING
        self.status = status
        if status & STATUS_NO_ESTIMATE:
            self.verdict = "unusable"
        elif disrupted:
            self.verdict = "disrupted"
        elif p.writer_flags & WRITER_STOPPED:
            self.verdict = "stopped"
        elif self.freshness == "unusable":
            self.verdict = "unusable"
        elif self.freshness == "stale":
            self.verdict = "stale"
        elif status & STATUS_UNSYNC:
            self.verdict = "unsync"
        else:
            self.verdict = "ok"


def counter_now():
    """CLOCK_MONOTONIC_RAW in ns: the counter the parameters are calibrated on."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC_RAW)


def _map(path):
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        if size <= 0:
            raise PublishedClockError(f"{path}: the file is empty: is it a file written by 'ntpclient --publish'?")
        return mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ)
    finally:
        os.close(fd)


class PublishedClock:
    """A published clock file mapped read-only, plus the vmclock page its writer watches."""

    def __init__(self, path):
        self.path = path
        try:
            self._map = _map(path)
        except FileNotFoundError:
            raise PublishedClockError(f"{path}: no such file: start 'ntpclient --publish {path} HOST' first") from None
        except OSError as error:
            raise PublishedClockError(f"{path}: cannot map it: {error.strerror}") from None
        m = self._map
        if len(m) < USED_BYTES:
            raise PublishedClockError(f"{path}: the file holds {len(m)} bytes, fewer than the {USED_BYTES} of a published clock")
        magic, version, _, clock = struct.unpack_from("<QQQQ", m, 0)
        if magic != MAGIC:
            raise PublishedClockError(f"{path}: no published clock here (bad magic number): is this a file written by 'ntpclient --publish'?")
        if version != LAYOUT_VERSION:
            raise PublishedClockError(f"{path}: published clock layout version {version}; this reader understands version {LAYOUT_VERSION}: use a matching ffclock.py")
        if clock != COUNTER_MONOTONIC_RAW:
            raise PublishedClockError(f"{path}: the published clock counts a counter other than CLOCK_MONOTONIC_RAW: cannot read it")
        raw = m[VMCLOCK_PATH_OFFSET:VMCLOCK_PATH_OFFSET + VMCLOCK_PATH_BYTES]
        vmclock_path = raw.split(b"\0", 1)[0].decode("utf-8", "replace")
        self.vmclock_path = vmclock_path or None
        self.vmclock_problem = None
        self._vmclock = None
        if self.vmclock_path:
            try:
                page = _map(self.vmclock_path)
                magic, declared, version = struct.unpack_from("<IIH", page, 0)
                if len(page) < 24 or magic != VMCLOCK_MAGIC or version != VMCLOCK_VERSION:
                    self.vmclock_problem = f"{self.vmclock_path}: not a version-1 vmclock page"
                    page.close()
                else:
                    self._vmclock = (page, min(declared, len(page)))
            except (OSError, PublishedClockError) as error:
                self.vmclock_problem = f"{self.vmclock_path}: {error}"

    def close(self):
        self._map.close()
        if self._vmclock:
            self._vmclock[0].close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def snapshot(self):
        """One consistent snapshot under the sequence lock, and the retries it took."""
        m = self._map
        deadline = None
        attempts = 0
        while True:
            before = _WORD.unpack_from(m, WORD_SEQUENCE * 8)[0]
            if before & 1 == 0:
                values = _FIELDS.unpack_from(m, WORD_FIELDS * 8)
                if _WORD.unpack_from(m, WORD_SEQUENCE * 8)[0] == before:
                    return Parameters(values, before), attempts
            attempts += 1
            if attempts % 1000 == 0:
                now = counter_now()
                if deadline is None:
                    deadline = now + 1_000_000_000
                elif now > deadline:
                    raise PublishedClockError(f"{self.path}: the writer stopped in the middle of an update; restart it")

    def live_marker(self):
        """(disruption_marker, generation) of the watched vmclock page, or None."""
        if not self._vmclock:
            return None
        page, readable = self._vmclock
        for _ in range(1000):
            before = struct.unpack_from("<I", page, 12)[0]
            if before & 1:
                continue
            marker, flags = struct.unpack_from("<QQ", page, 16)
            generation = struct.unpack_from("<Q", page, 104)[0] \
                if readable >= 112 and flags & VMCLOCK_GENERATION_PRESENT else 0
            if struct.unpack_from("<I", page, 12)[0] == before:
                return (marker, generation)
        return None

    def read(self):
        """The parameters, the live vmclock marker, then the counter: a Reading."""
        parameters, retries = self.snapshot()
        live = self.live_marker()
        return Reading(parameters, counter_now(), live, retries)


def _json_line(r):
    p = r.parameters
    return json.dumps({
        "timeUnixNanoseconds": r.time_ns,
        "maxErrorNanoseconds": None if math.isinf(r.max_error_ns) else r.max_error_ns,
        "verdict": r.verdict,
        "freshness": r.freshness,
        "statusBits": r.status,
        "counterNanoseconds": r.counter_ns,
        "counterOriginNanoseconds": p.counter_origin,
        "timeAtOriginNanoseconds": p.time_at_origin_ns,
        "periodSecondsPerTick": p.period,
        "localPeriodSecondsPerTick": p.local_period,
        "publishedMaxErrorNanoseconds": None if math.isinf(p.max_error_ns) else p.max_error_ns,
        "lastStampCounterNanoseconds": p.last_stamp_counter,
        "nextStampExpectedCounterNanoseconds": p.next_stamp_expected_counter,
        "stampCount": p.stamp_count,
        "leap": p.leap,
        "writerFlags": p.writer_flags,
        "disruptionMarker": p.disruption_marker,
        "generation": p.generation,
        "staleGraceNanoseconds": p.stale_grace_ns,
        "markerChecked": r.live_marker is not None,
        "retries": r.retries,
        # Cd over one second of counter: what an interval measurement between two reads uses.
        "differenceNanosecondsOver1e9Ticks": p.difference(r.counter_ns, r.counter_ns + 1_000_000_000),
    }, separators=(",", ":"), allow_nan=False)


def main(argv):
    if len(argv) not in (2, 3):
        print("usage: ffclock.py PATH [COUNT]", file=sys.stderr)
        return 2
    try:
        count = int(argv[2]) if len(argv) == 3 else 1
    except ValueError:
        count = 0
    if count < 1:
        print("ffclock.py: COUNT must be a positive integer", file=sys.stderr)
        return 2
    try:
        with PublishedClock(argv[1]) as clock:
            verdict = "unusable"
            out = sys.stdout
            for _ in range(count):
                r = clock.read()
                verdict = r.verdict
                out.write(_json_line(r) + "\n")
    except PublishedClockError as error:
        print(f"ffclock.py: {error}", file=sys.stderr)
        return 1
    return 0 if verdict in ("ok", "unsync") else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
