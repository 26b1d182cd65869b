"""Concurrency stress of the shared BIB/session tables (DESIGN.md "Tables": no lost
or duplicated mapping under concurrent creation from two workers).

Two worker processes attach to one Tables segment (Tables.attach(name)) and each
runs its own Translator with the same configuration; a third process plays the
control process and runs t.expire(now) every 2 s of virtual time while they
translate. Virtual time runs SPEED times faster than the wall clock, so flows expire
and their transport addresses are reused many times during the run.

Each round the workers meet at a barrier and send in lockstep (each on its own CPU,
flow j by both before flow j+1 by either) the first packets of the same new flows
("shared": creations race; on odd rounds the same clients to different destinations,
so two sessions race for one BIB entry), then the first packets of their own new
flows, then more packets of those flows in both directions, and packets of flows
from earlier rounds (which may have expired meanwhile: refreshes race with expiry).
Every CHECK_EVERY rounds the workers pause for a Tables.check() while expiry goes
on. Afterwards the parent checks the tables through the public API and
Tables.check(): no duplicate BIB entry by either key, no session without its BIB
entry, both indexes agree (check() and packets probing both keys), the gauges
equal the listed entries, and every shared client got one mapping in both workers.

Scale: JOOL_STRESS_OPS (default 1 000 000) translations in all.
"""
import gc
import ipaddress
import multiprocessing
import os
import random
import struct
import time
import traceback

import pytest

import pktlib as pl

tables_mod = pytest.importorskip("jool._fast.tables")
from jool._fast.pipeline import Translator, Verdict  # noqa: E402

Tables = tables_mod.Tables

TOTAL_OPS = int(os.environ.get("JOOL_STRESS_OPS", "1000000"))
WORKERS = 2
SPEED = 100                 # virtual milliseconds per real millisecond
CLOCK_BASE = 10_000_000     # virtual time starts here (not 0)
SWEEP_MS = 2_000            # the control process's timer period, virtual (spec §5.2)
SHARED_FLOWS = 200          # per round, sent by every worker
OWN_FLOWS = 100             # per round and worker
REPEATS = 2                 # further packets of each new flow (and a reply each)
OLD_FLOWS = 100             # packets of flows of earlier rounds, per round
OLD_LAG = 50                # ...taken from up to this many rounds back
CHECK_EVERY = 25            # rounds between mid-run Tables.check() checkpoints
PROBES = 5000               # BIB entries probed by packets at the end (plus check())
DEADLINE_S = 150            # the children are killed after this

CONFIG = dict(pool6="64:ff9b::/96", own4="192.0.2.254", own6="2001:db8::fe",
              f_args=0b1011, udp_timeout=120_000, icmp_timeout=60_000,
              tcp_trans_timeout=240_000, tcp_est_timeout=7_200_000)
POOL4 = "192.0.2.16/28"
PROTOS = ("tcp", "udp", "icmp")
STATIC = (("udp", "2001:db8:5::1", 53, "192.0.2.16", 53),
          ("tcp", "2001:db8:5::2", 80, "192.0.2.17", 80),
          ("icmp", "2001:db8:5::3", 7, "192.0.2.18", 7))
PEERS = [ipaddress.IPv4Address("198.51.100.0") + i for i in range(1, 255)] + \
        [ipaddress.IPv4Address("203.0.113.0") + i for i in range(1, 255)]
PREFIX6 = ipaddress.IPv6Address("64:ff9b::").packed[:12]
SHARED_NET = int(ipaddress.IPv6Address("2001:db8:100::"))
OWN_NET = [int(ipaddress.IPv6Address("2001:db8:%x::" % (0x200 + w))) for w in range(WORKERS)]

P_TCP, P_UDP, P_ICMP = 6, 17, 1


def n6(a):
    return str(ipaddress.IPv6Address(a))


def n4(a):
    return str(ipaddress.IPv4Address(a))


def clock(t0):
    return CLOCK_BASE + int((time.monotonic() - t0) * 1000 * SPEED)


def configure(t):
    for proto in PROTOS:
        t.pool4_add(proto, POOL4, 1, 65535)


# ------------------------------------------------------- fast packet building
# pktlib is the oracle but costs tens of microseconds per packet; these build the
# few shapes the stress needs (checked against pktlib by a test below).
def _csum(data):
    if len(data) & 1:
        data += b"\0"
    s = sum(memoryview(data).cast("H"))      # native order: RFC 1071 is order-independent
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return struct.pack("=H", ~s & 0xFFFF)


def _l4(proto, sport, dport, v6, flags=pl.SYN):
    """(L4 bytes with a zero checksum, checksum offset)."""
    if proto == P_UDP:
        pl_ = b"stress!!"
        return struct.pack("!HHHH", sport, dport, 8 + len(pl_), 0) + pl_, 6
    if proto == P_TCP:
        return struct.pack("!HHIIBBHHH", sport, dport, 1, 1 if flags & pl.ACK else 0,
                           5 << 4, flags, 8192, 0, 0), 16
    # ICMP echo: request from the IPv6 side, reply from the IPv4 side; id in sport
    return struct.pack("!BBHHH", 128 if v6 else 0, 0, 0, sport, 1) + b"ping", 2


def fast6(proto, src6, sport, dst6, dport, flags=pl.SYN):
    l4, off = _l4(proto, sport, dport, True, flags)
    nh = 58 if proto == P_ICMP else proto
    c = _csum(src6 + dst6 + struct.pack("!IxxxB", len(l4), nh) + l4)
    if proto == P_UDP and c == b"\0\0":
        c = b"\xff\xff"
    l4 = l4[:off] + c + l4[off + 2:]
    return struct.pack("!IHBB", 6 << 28, len(l4), nh, 64) + src6 + dst6 + l4


def fast4(proto, src4, sport, dst4, dport, flags=pl.SYN | pl.ACK):
    l4, off = _l4(proto, sport, dport, False, flags)
    if proto == P_ICMP:
        c = _csum(l4)
    else:
        c = _csum(src4 + dst4 + struct.pack("!BBH", 0, proto, len(l4)) + l4)
        if proto == P_UDP and c == b"\0\0":
            c = b"\xff\xff"
    l4 = l4[:off] + c + l4[off + 2:]
    hdr = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(l4), 0, 0x4000, 64, proto, 0) + src4 + dst4
    return hdr[:10] + _csum(hdr) + hdr[12:] + l4


def out4_taddr(pkt):
    """(IPv4 source, source port / ICMP id) of a translated IPv4 packet (no options)."""
    ihl = (pkt[0] & 0xF) * 4
    if pkt[9] == P_ICMP:
        return pkt[12:16], struct.unpack_from("!H", pkt, ihl + 4)[0]
    return pkt[12:16], struct.unpack_from("!H", pkt, ihl)[0]


def out6_dst(pkt):
    """(IPv6 destination, destination port / ICMP id) of a translated IPv6 packet."""
    if pkt[6] == 58:
        return pkt[24:40], struct.unpack_from("!H", pkt, 44)[0]
    return pkt[24:40], struct.unpack_from("!H", pkt, 42)[0]


class Flow:
    __slots__ = ("proto", "src6", "sport", "dst4", "dport", "first", "again", "reply",
                 "taddr", "seen")

    def __init__(self, proto, src6, sport, dst4, dport):
        self.proto, self.src6, self.sport, self.dst4, self.dport = proto, src6, sport, dst4, dport
        dst6 = PREFIX6 + dst4
        self.first = fast6(proto, src6, sport, dst6, dport if proto != P_ICMP else sport)
        self.again = self.first if proto != P_TCP else \
            fast6(proto, src6, sport, dst6, dport, flags=pl.ACK)
        self.reply = None
        self.taddr = None
        self.seen = 0


def flows(net, rnd, n, salt=0):
    """n new flows of round rnd from clients of net; salt moves the destinations
    (same clients: other sessions of the same BIB entries)."""
    out = []
    for j in range(n):
        proto = (P_UDP, P_UDP, P_TCP, P_ICMP)[j % 4]
        src6 = (net + (rnd << 16) + j).to_bytes(16, "big")
        sport = 1024 + (j * 7919 + rnd) % 60000
        dst4 = PEERS[(j * 31 + rnd + salt) % len(PEERS)].packed
        out.append(Flow(proto, src6, sport, dst4, 53 if proto == P_UDP else 80))
    return out


# ------------------------------------------------------------------ processes
def _worker(wid, name, t0, rounds, barrier, progress, results):
    stats = dict(ops=0, translated=0, anomalies=0, samples=[], skipped=0, barrier_waits=0,
                 checks=0, check_problems=[], first_ns=[], pinned=None)
    shared_seen = {}
    try:
        # One CPU each, so that the lockstep below really runs the workers side by
        # side (left to itself the scheduler may stack them on one CPU, taking turns).
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) >= WORKERS:
            os.sched_setaffinity(0, {cpus[wid]})
            stats["pinned"] = cpus[wid]
        tables = Tables.attach(name)
        t = Translator(tables=tables, **CONFIG)
        configure(t)
        history = []
        rng = random.Random(wid)
        give_up = time.monotonic() + DEADLINE_S

        def note(what):
            stats["anomalies"] += 1
            if len(stats["samples"]) < 20:
                stats["samples"].append(what)

        def send(pkt):
            stats["ops"] += 1
            now = clock(t0)
            verdict, reason, outs = t.translate(pkt, now_ms=now, mark=0)
            if verdict == Verdict.TRANSLATED:
                stats["translated"] += 1
            return now, verdict, reason, outs

        for rnd in range(rounds):
            # Even rounds: the very same flows; odd rounds: the same clients, each
            # worker to its own destination (two sessions racing for one BIB entry).
            shared = flows(SHARED_NET, rnd, SHARED_FLOWS, salt=(rnd % 2) * wid * 7)
            own = flows(OWN_NET[wid], rnd, OWN_FLOWS)
            barrier.wait(timeout=60)
            stats["barrier_waits"] += 1
            for j, f in enumerate(shared):
                # Lockstep: nobody sends flow j before every worker is ready to send
                # it too, so their first packets meet inside the core.
                step = rnd * SHARED_FLOWS + j + 1
                progress[wid] = step
                spins = 0
                while min(progress) < step:
                    spins += 1
                    if spins & 0x3F == 0:
                        os.sched_yield()        # the other may wait for this CPU
                        if spins & 0xFFFF == 0 and time.monotonic() > give_up:
                            raise TimeoutError("the other worker stopped")
                stats["first_ns"].append(time.perf_counter_ns())
                now, verdict, reason, outs = send(f.first)
                if verdict != Verdict.TRANSLATED or len(outs) != 1:
                    note(("first-shared", rnd, verdict, reason))
                    continue
                f.taddr, f.seen = out4_taddr(bytes(outs[0][1])), now
            for f in shared:
                if f.taddr is not None:
                    shared_seen[(rnd, f.src6, f.sport, f.proto)] = (f.taddr, f.seen)
            for f in own:
                now, verdict, reason, outs = send(f.first)
                if verdict != Verdict.TRANSLATED or len(outs) != 1:
                    note(("first-own", rnd, verdict, reason))
                    continue
                f.taddr, f.seen = out4_taddr(bytes(outs[0][1])), now
            live = [f for f in shared + own if f.taddr is not None]
            for _ in range(REPEATS):
                for f in live:
                    now, verdict, reason, outs = send(f.again)
                    young = now - f.seen < 30_000      # half the shortest timeout
                    if verdict != Verdict.TRANSLATED or out4_taddr(bytes(outs[0][1])) != f.taddr:
                        if young:
                            note(("again", rnd, f.proto, verdict, reason))
                        else:
                            stats["skipped"] += 1
                        continue
                    if f.reply is None:
                        a4, p4 = f.taddr
                        f.reply = fast4(f.proto, f.dst4, f.dport if f.proto != P_ICMP else p4,
                                        a4, p4)
                    now, verdict, reason, outs = send(f.reply)
                    ok = verdict == Verdict.TRANSLATED and \
                        out6_dst(bytes(outs[0][1])) == (f.src6, f.sport)
                    if not ok:
                        if now - f.seen < 30_000:
                            note(("reply", rnd, f.proto, verdict, reason))
                        else:
                            stats["skipped"] += 1
            history.append(live)
            if len(history) > OLD_LAG:
                history.pop(0)
            for _ in range(OLD_FLOWS):
                old = rng.choice(history)
                if old:
                    send(rng.choice(old).first)  # maybe expired by now: recreated
            if (rnd + 1) % CHECK_EVERY == 0:
                # Checkpoint: the workers pause, the expirer does not; the tables'
                # invariants must hold now too (a duplicate of a flow that expires
                # before the end would not be seen at the end).
                barrier.wait(timeout=60)
                if wid == 0:
                    problems = tables.check()
                    stats["checks"] += 1
                    stats["check_problems"].extend(
                        f"round {rnd}: {p}" for p in problems[:20 - len(stats["check_problems"])])
                barrier.wait(timeout=60)
        results.put((wid, "ok", dict(stats, shared=shared_seen)))
        t = None
        gc.collect()
        tables.close()
    except BaseException:
        barrier.abort()
        results.put((wid, "error", traceback.format_exc()))


def _expirer(name, t0, stop, results):
    stats = dict(calls=0, outputs=0, events=0, ops=0)
    try:
        tables = Tables.attach(name)
        t = Translator(tables=tables, **CONFIG)
        configure(t)
        while not stop.is_set():
            outs = t.expire(clock(t0))
            stats["calls"] += 1
            stats["outputs"] += len(outs)
            if stats["calls"] % 5 == 0:
                stats["events"] += len(t.session_events())
            stop.wait(SWEEP_MS / SPEED / 1000)
        stats["ops"] = stats["calls"]
        results.put(("expirer", "ok", stats))
        t = None
        gc.collect()
        tables.close()
    except BaseException:
        results.put(("expirer", "error", traceback.format_exc()))


# ---------------------------------------------------------------------- tests
def test_fast_builders_match_pktlib():
    src6, dst6 = ipaddress.IPv6Address("2001:db8::1").packed, PREFIX6 + bytes([198, 51, 100, 7])
    s6, d6 = "2001:db8::1", pl.embed("64:ff9b::/96", "198.51.100.7")
    assert fast6(P_UDP, src6, 1000, dst6, 53) == pl.ipv6(s6, d6, pl.udp(1000, 53, b"stress!!"))
    assert fast6(P_TCP, src6, 1000, dst6, 80, flags=pl.ACK) == \
        pl.ipv6(s6, d6, pl.tcp(1000, 80, seq=1, ack=1, flags=pl.ACK))
    assert fast6(P_ICMP, src6, 1000, dst6, 1000) == pl.ipv6(s6, d6, pl.icmp6_echo(1000, 1, b"ping"))
    a, b = bytes([198, 51, 100, 7]), bytes([192, 0, 2, 16])
    want = pl.ipv4("198.51.100.7", "192.0.2.16", pl.udp(53, 999, b"stress!!"), df=True)
    assert fast4(P_UDP, a, 53, b, 999) == want
    want = pl.ipv4("198.51.100.7", "192.0.2.16", pl.tcp(80, 999, seq=1, ack=1, flags=pl.SYN | pl.ACK),
                   df=True)
    assert fast4(P_TCP, a, 80, b, 999) == want
    want = pl.ipv4("198.51.100.7", "192.0.2.16", pl.icmp4_echo(999, 1, b"ping", reply=True), df=True)
    assert fast4(P_ICMP, a, 999, b, 999) == want


@pytest.fixture
def segment():
    """The tables, and a guarantee: whatever happens, children are gone and the
    segment is unlinked afterwards."""
    tables = Tables.create(capacity=1 << 19)
    path = os.path.join(tables_mod.SHM_DIR, tables.name)
    children = []
    try:
        yield tables, children
    finally:
        for p in children:
            if p.is_alive():
                p.terminate()
        for p in children:
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join(5)
        gc.collect()
        try:
            tables.close()
        finally:
            tables.unlink()
    assert not os.path.exists(path), "shared memory segment left behind"
    assert not [p for p in children if p.is_alive()], "child process left behind"


def _probe(t, proto, a6, p6, a4, p4, now):
    """Both keys of a BIB entry lead to it: IPv4 side -> client, client -> IPv4 side."""
    pnum = {"tcp": P_TCP, "udp": P_UDP, "icmp": P_ICMP}[proto]
    s6 = ipaddress.IPv6Address(a6).packed
    s4 = ipaddress.IPv4Address(a4).packed
    peer = bytes([203, 0, 113, 200])
    pkt = fast4(pnum, peer, 4444 if pnum != P_ICMP else p4, s4, p4, flags=pl.ACK)
    verdict, reason, outs = t.translate(pkt, now_ms=now, mark=0)
    if verdict != Verdict.TRANSLATED or out6_dst(bytes(outs[0][1])) != (s6, p6):
        return f"{proto} {a4}#{p4}: IPv4 key -> {verdict}/{reason}"
    pkt = fast6(pnum, s6, p6, PREFIX6 + peer, 4444 if pnum != P_ICMP else p6, flags=pl.ACK)
    verdict, reason, outs = t.translate(pkt, now_ms=now, mark=0)
    if verdict != Verdict.TRANSLATED or out4_taddr(bytes(outs[0][1])) != (s4, p4):
        return f"{proto} {a6}#{p6}: IPv6 key -> {verdict}/{reason}"
    return None


def test_two_workers_and_expiry_share_the_tables(segment):
    tables, children = segment
    parent = Translator(tables=tables, **CONFIG)
    configure(parent)
    for proto, a6, p6, a4, p4 in STATIC:
        parent.bib_add(proto, a6, p6, a4, p4)

    per_round = SHARED_FLOWS + OWN_FLOWS + REPEATS * 2 * (SHARED_FLOWS + OWN_FLOWS) + OLD_FLOWS
    rounds = -(-TOTAL_OPS // (WORKERS * per_round))
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(WORKERS)
    progress = ctx.RawArray("q", WORKERS)
    stop = ctx.Event()
    results = ctx.Queue()
    t0 = time.monotonic()
    start = time.perf_counter()
    expirer = ctx.Process(target=_expirer, args=(tables.name, t0, stop, results), daemon=True)
    children.append(expirer)
    for w in range(WORKERS):
        children.append(ctx.Process(target=_worker, args=(w, tables.name, t0, rounds, barrier, progress, results),
                                    daemon=True))
    for p in children:
        p.start()

    got = {}
    deadline = time.monotonic() + DEADLINE_S
    while len(got) < WORKERS:
        left = deadline - time.monotonic()
        assert left > 0, "workers did not finish in time"
        try:
            who, status, data = results.get(timeout=min(left, 5))
        except Exception:
            assert all(p.is_alive() or p.exitcode == 0 for p in children), \
                [(p.name, p.exitcode) for p in children]
            continue
        assert status == "ok", f"{who} failed:\n{data}"
        got[who] = data
    elapsed = time.perf_counter() - start
    stop.set()
    who, status, data = results.get(timeout=30)
    assert (who, status) == ("expirer", "ok"), data
    for p in children:
        p.join(30)
        assert p.exitcode == 0, (p.name, p.exitcode)
    now = clock(t0)

    ops = sum(got[w]["ops"] for w in range(WORKERS))
    # How close together the workers' first packets of each shared flow were sent.
    skew = sorted(abs(x - y) / 1000 for x, y in zip(got[0]["first_ns"], got[1]["first_ns"]))
    close = sum(1 for d in skew if d <= 5)
    print(f"\nstress: {ops} translations by {WORKERS} workers (CPUs {[got[w]['pinned'] for w in got]}) "
          f"in {elapsed:.1f} s ({ops / elapsed:.0f}/s), {rounds} rounds; "
          f"shared first packets within 5 us: {close}/{len(skew)} "
          f"(median {skew[len(skew) // 2]:.1f} us); expirer: {data['calls']} sweeps, "
          f"{data['outputs']} outputs, {data['events']} events; checkpoints: {got[0]['checks']}; "
          f"skipped checks: {sum(got[w]['skipped'] for w in range(WORKERS))}")

    failures = []
    if ops < TOTAL_OPS:
        failures.append(f"only {ops} translations")
    if data["calls"] < 10:
        failures.append("expiry did not run alongside")
    if os.cpu_count() >= WORKERS and close < len(skew) // 10:
        failures.append(f"creations did not race: {close} of {len(skew)} shared flows "
                        "had both first packets within 5 us")
    for w in range(WORKERS):
        if got[w]["anomalies"]:
            failures.append(f"worker {w}: {got[w]['anomalies']} packets of young flows not "
                            f"translated as before, e.g. {got[w]['samples'][:5]}")
        if got[w]["translated"] < 0.9 * got[w]["ops"]:
            failures.append(f"worker {w}: only {got[w]['translated']} of {got[w]['ops']} translated")
    if got[0]["check_problems"]:
        failures.append(f"mid-run Tables.check(): {got[0]['check_problems']}")

    # Both workers saw every shared flow; each got the same mapping in both.
    a, b = got[0]["shared"], got[1]["shared"]
    if not len(a) == len(b) == rounds * SHARED_FLOWS:
        failures.append(f"shared flows seen: {len(a)}, {len(b)} of {rounds * SHARED_FLOWS}")
    split = [k for k in a if k in b and a[k][0] != b[k][0]]
    if split:
        failures.append(f"{len(split)} shared flows got two mappings, e.g. {split[:3]}")

    # The tables' own invariant check (both indexes, lists, counts).
    problems = tables.check()
    if problems:
        failures.append(f"Tables.check() at the end: {len(problems)} problems, e.g. {problems[:10]}")
    assert failures == [], "\n".join(failures)

    # The same through the public API.
    bib_total = sess_total = 0
    net4 = ipaddress.IPv4Network(POOL4)
    for proto in PROTOS:
        entries = [(n6(a6), p6, n4(a4), p4, bool(st)) for a6, p6, a4, p4, st in parent.bib_entries(proto)]
        bib_total += len(entries)
        v6 = [(e[0], e[1]) for e in entries]
        v4 = [(e[2], e[3]) for e in entries]
        assert len(set(v6)) == len(v6), f"{proto}: duplicate IPv6 transport address"
        assert len(set(v4)) == len(v4), f"{proto}: duplicate IPv4 transport address"
        assert all(ipaddress.IPv4Address(a4) in net4 for a4, _ in v4), f"{proto}: mask outside pool4"
        by6 = {(e[0], e[1]): (e[2], e[3]) for e in entries}
        sessions = parent.sessions(proto, now)
        sess_total += len(sessions)
        orphans = [s for s in sessions
                   if by6.get((n6(s["src6"]), s["sport6"])) != (n4(s["src4"]), s["sport4"])]
        assert orphans == [], f"{proto}: {len(orphans)} sessions without their BIB entry"
        keys = [(n6(s["src6"]), s["sport6"], n4(s["dst4"]), s["dport4"]) for s in sessions]
        assert len(set(keys)) == len(keys), f"{proto}: duplicate sessions"
        for st in STATIC:
            if st[0] == proto:
                assert (st[1], st[2], st[3], st[4], True) in entries
    assert parent.counter("JSTAT_BIB_ENTRIES") == bib_total
    assert parent.counter("JSTAT_SESSIONS") == sess_total
    assert tables.counts() == (bib_total, sess_total)
    print(f"stress: at the end {bib_total} BIB entries, {sess_total} sessions")

    # Both keys of (a sample of) the entries lead to the entry.
    sample = [(p,) + tuple(e[:4]) for p in PROTOS for e in parent.bib_entries(p)]
    random.Random(1).shuffle(sample)
    bad = [m for m in (_probe(parent, *e, now) for e in sample[:PROBES]) if m]
    assert bad == [], bad[:10]

    # Everything dynamic expires (established TCP first moves to the transitory timer,
    # then goes); static entries stay; nothing leaks.
    later = now + 2 * CONFIG["tcp_est_timeout"]
    parent.expire(later)
    later += 2 * CONFIG["tcp_est_timeout"]
    parent.expire(later)
    left = sorted((p, n6(e[0]), e[1], n4(e[2]), e[3]) for p in PROTOS for e in parent.bib_entries(p))
    assert left == sorted(STATIC), "dynamic BIB entries survived expiry"
    assert all(parent.sessions(p, later) == [] for p in PROTOS)
    assert parent.counter("JSTAT_BIB_ENTRIES") == len(STATIC)
    assert parent.counter("JSTAT_SESSIONS") == 0
    assert tables.check() == []
    del parent
