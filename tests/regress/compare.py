"""Compares the outputs of PostgreSQL regression files run directly and
through martgate, statement by statement (tests/integration/t_regress.sh).

    compare.py SQLDIR DIRECT_DIR MARTGATE_DIR SCHEDULE EXPECTED REPORT_JSON [--propose]

--propose prints, instead, an EXPECTED line for each unexplained difference,
with a reason guessed from martgate's answer, for a person to review before
adding them.

psql ran each file with -a (every input line echoed as read) and without -q,
so both outputs are the file's lines interleaved with what the server (or
martgate) said after each statement. A statement is a run of echoed lines and
the output after it (see statements()); they are matched by position, both
runs having the same input. A statement whose output differs is explained by a line of EXPECTED:

    FILE<TAB>REGEX<TAB>REASON

(FILE may be '*'; REGEX is searched in the statement's text). Every other
difference fails: one "FAIL file:line statement | why" line each, and a
"PASS" line per file whose differences are all explained. Entries that
explained nothing are reported too ("STALE"). The last line gives the counts.
"""
import json
import re
import sys

sqldir, ddir, mdir, schedule, expected_file, report_file = sys.argv[1:7]
propose = "--propose" in sys.argv[7:]
files = [l.split()[0] for l in open(schedule) if l.strip() and not l.startswith("#")]
expected = []
for n, line in enumerate(open(expected_file), 1):
    if not line.strip() or line.startswith("#"):
        continue
    parts = line.rstrip("\n").split("\t")
    if len(parts) != 3 or not parts[2].strip():
        print("FAIL %s:%d | an entry is FILE<TAB>REGEX<TAB>REASON" % (expected_file, n))
        sys.exit(1)
    expected.append({"file": parts[0], "re": re.compile(parts[1], re.MULTILINE), "text": parts[1], "reason": parts[2],
                     "where": "%s:%d" % (expected_file, n), "used": 0})

def statements(sql_lines, out_lines):
    """[(input line number, statement text, output text)]: a block of echoed
    input lines and the output after them (psql ran without -q, so every
    statement prints something: rows, a command tag or an error). Echoed
    lines are found by walking the output with a pointer into the input;
    blank lines are left out of both (psql prints one after each result)."""
    sql = [(n + 1, l) for n, l in enumerate(sql_lines) if l.strip()]
    i = 0
    blocks, text, out, start = [], [], [], None
    for line in out_lines:
        if not line.strip():
            continue
        if i < len(sql) and line == sql[i][1]:
            if out:
                blocks.append((start, "\n".join(text), "\n".join(out)))
                text, out, start = [], [], None
            if start is None:
                start = sql[i][0]
            text.append(line)
            i += 1
        else:
            out.append(line)
    if text or out:
        blocks.append((start or 0, "\n".join(text), "\n".join(out)))
    return blocks


def normalise(text):
    # psql prints the file name and line of an error: the same in both runs
    return text


REASONS = [
    ("touches objects martgate does not model", "by design: DDL of objects no policy models (functions, types, "
     "domains, operators, triggers, roles...)"),
    ("CREATE FUNCTION", "by design: CREATE FUNCTION"),
    ("session_authorization changes", "by design: SET ROLE and SET SESSION AUTHORIZATION are martgate's (impersonation)"),
    ("not mapped to groups", "by design: SET ROLE is martgate's impersonation, of roles the policy maps"),
    ("pg_sensitive", "by design: pg_cursors, pg_prepared_statements, pg_stats are pg_sensitive (they show the text "
     "the warehouse ran, or values of hidden rows)"),
    ("a rule rewrites later queries", "by design: CREATE RULE would rewrite later queries where no decision sees it"),
    ("reads or writes a file on the database server", "by design: COPY to or from a server file"),
    ("sends a message to other sessions", "by design: LISTEN and NOTIFY reach other sessions"),
    ("setting ", "by design: settings by the warehouse's context and category (docs/security.md, 2)"),
    ("system catalog", "by design: the catalog is never written through martgate"),
    ("DO ", "by design: DO runs code no policy sees"),
]


def guess_reason(dout, mout):
    if "permission denied by policy" in mout:
        for pat, reason in REASONS:
            if pat in mout:
                return reason
        return "by design: " + re.sub(r".*permission denied by policy: ", "", mout.split("\n")[0])[:100]
    if "current transaction is aborted" in mout or "ROLLBACK" in mout:
        return "follows: an earlier statement of its transaction was refused by design"
    return "follows: it depends on what a statement refused by design would have made (a function, type, trigger, rule)"


report = {"files": {}, "total": 0, "same": 0, "expected": 0, "unexpected": 0}
failures = 0
for f in files:
    sql_lines = open("%s/%s.sql" % (sqldir, f), encoding="utf-8", errors="replace").read().split("\n")
    try:
        d = open("%s/%s.out" % (ddir, f), encoding="utf-8", errors="replace").read().split("\n")
        m = open("%s/%s.out" % (mdir, f), encoding="utf-8", errors="replace").read().split("\n")
    except OSError as e:
        print("FAIL %s | no output: %s" % (f, e))
        failures += 1
        continue
    ds, ms = statements(sql_lines, d), statements(sql_lines, m)
    counts = {"total": len(ds), "same": 0, "expected": 0, "unexpected": 0}
    if len(ds) != len(ms):
        print("FAIL %s | %d statements directly, %d through martgate (the outputs no longer align)" %
              (f, len(ds), len(ms)))
    bad = []
    for k, (line, text, dout) in enumerate(ds):
        mout = ms[k][2] if k < len(ms) else "(missing)"
        if normalise(dout) == normalise(mout):
            counts["same"] += 1
            continue
        why = None
        for e in expected:   # the first that matches explains it; any that match are not stale
            if e["file"] in ("*", f) and e["re"].search(text):
                if why is None:
                    why = e
                    e["used"] += 1
                e["matched"] = True
        if why:
            counts["expected"] += 1
        else:
            counts["unexpected"] += 1
            bad.append((line, text, dout, mout))
    if propose:
        seen = set()
        for line, text, dout, mout in bad:
            code = [l for l in text.split("\n") if l.strip() and not l.strip().startswith("--")]
            key = re.escape((code[-1] if code else text.split("\n")[-1]).strip()[:70]).replace("\t", "\\t")
            if key not in seen:
                seen.add(key)
                print("%s\t%s\t%s" % (f, key, guess_reason(dout, mout)))
        continue
    for line, text, dout, mout in bad:
        print("FAIL %s:%d %s | direct: %s / martgate: %s" %
              (f, line, text.replace("\n", " ")[:200], dout.replace("\n", " ")[:300], mout.replace("\n", " ")[:300]))
    if not bad and len(ds) == len(ms):
        print("PASS %s: %d statements, %d the same, %d different by design" %
              (f, counts["total"], counts["same"], counts["expected"]))
    else:
        failures += 1
    report["files"][f] = counts
    for k in ("total", "same", "expected", "unexpected"):
        report[k] += counts[k]
for e in expected:
    if not e.get("matched"):
        print("FAIL %s: the entry %s (%s) explains no difference any more: remove it" % (e["where"], e["text"], e["file"]))
        failures += 1
report["reasons"] = {e["where"]: {"file": e["file"], "re": e["text"], "reason": e["reason"], "statements": e["used"]}
                     for e in expected}
json.dump(report, open(report_file, "w"), indent=1)
print("# %d files, %d statements: %d the same through martgate (%.1f%%), %d different by design, %d unexpected" %
      (len(files), report["total"], report["same"], 100.0 * report["same"] / max(1, report["total"]),
       report["expected"], report["unexpected"]))
if not propose:
    print("# differences by design: %d statements refused as they are; %d that follow from one" %
          (sum(e["used"] for e in expected if e["reason"].startswith("by design")),
           sum(e["used"] for e in expected if e["reason"].startswith("follows"))))
sys.exit(1 if failures else 0)
