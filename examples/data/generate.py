#!/usr/bin/env python3
"""Generate the bundled sample data, deterministically (seeded random).

    python3 data/generate.py          # from examples/; rewrites the files below

The files are committed, so you only need this to change the data.  Running
it twice produces byte-identical files.

    transactions.csv            stands in for the Postgres `transactions` table
    clickstream.jsonl           stands in for a dump of the Kafka clickstream topic
    crm.json                    stands in for a Salesforce REST API response
    holdout.csv                 labelled feature rows of *other* customers, used
                                by the deployment pipeline to monitor a canary
    integration_test_rows.jsonl a few feature rows (incl. edge cases) for the
                                serving artifact's integration tests

The customers are simulated: each has a hidden "engagement" level that drives
how much they buy and browse and how likely they are to cancel, so the
features carry real (noisy) signal about the CRM churn status.  A few dirty
rows are injected on purpose (duplicates, negative amounts, bad dates, missing
ids, malformed JSON, mixed formats) for the transform tasks to clean up.
"""

import csv
import io
import json
import math
import random
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "scripts" / "common"))
from churn_features import FEATURES, LABEL, compute_features  # noqa: E402

SEED = 9_7_2024
N_CUSTOMERS = 400
N_HOLDOUT = 150
START = datetime(2024, 1, 1, tzinfo=timezone.utc)
END = datetime(2024, 7, 1, tzinfo=timezone.utc)      # the data's "as of" time
PERIOD_DAYS = (END - START).days

FIRST = ["Ada", "Ben", "Chloe", "Dev", "Ema", "Finn", "Gia", "Hugo", "Ines", "Jon",
         "Kai", "Lea", "Mo", "Nia", "Omar", "Pia", "Quinn", "Rui", "Sara", "Tom"]
LAST = ["Meyer", "Okafor", "Silva", "Novak", "Khan", "Larsen", "Rossi", "Dubois",
        "Tanaka", "Garcia", "Smith", "Ivanova", "Nguyen", "Costa", "Weber", "Popov"]
COUNTRIES = ["US", "GB", "DE", "FR", "NL", "ES", "IN", "BR"]
PLANS = [("Basic", 0.5, 1.0), ("Plus", 0.3, 1.4), ("Premium", 0.2, 2.0)]
EVENTS = ["page_view", "page_view", "page_view", "product_view", "product_view",
          "add_to_cart", "checkout"]


def ts(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def sigmoid(z):
    return 1.0 / (1.0 + math.exp(-z))


def pick_plan(rng):
    r, acc = rng.random(), 0.0
    for name, weight, mult in PLANS:
        acc += weight
        if r <= acc:
            return name, mult
    return PLANS[-1][0], PLANS[-1][2]


def arrivals(rng, rate_per_day, start, end):
    """Poisson-process timestamps between start and end."""
    out, t = [], start
    if rate_per_day <= 0 or end <= start:
        return out
    while True:
        t = t + timedelta(days=rng.expovariate(rate_per_day))
        if t >= end:
            return out
        out.append(t.replace(microsecond=0))


def simulate_customer(rng, cid):
    """One customer's CRM record, purchases and browsing sessions."""
    engagement = rng.gauss(0.0, 1.0)
    plan, plan_mult = pick_plan(rng)
    plan_risk = {"Basic": 0.5, "Plus": 0.0, "Premium": -0.4}[plan]
    churn_p = sigmoid(-1.0 - 1.3 * engagement + plan_risk + rng.gauss(0.0, 0.7))
    churned = rng.random() < churn_p

    if rng.random() < 0.2:   # signed up during the period
        signup = START + timedelta(days=rng.uniform(0, 100))
    else:
        signup = START - timedelta(days=rng.uniform(10, 900))
    active_start = max(START, signup)
    active_end = END
    window = (END - active_start).days
    if churned:      # stopped buying, then cancelled (some only very recently)
        active_end = active_start + timedelta(days=rng.uniform(0.2, 1.0) * window)
    elif rng.random() < 0.25:   # dormant: stopped buying but never cancelled
        active_end = active_start + timedelta(days=rng.uniform(0.3, 0.95) * window)

    txn_rate = math.exp(-2.9 + 0.45 * engagement)
    purchases = []
    for t in arrivals(rng, txn_rate, active_start, active_end):
        basket = rng.lognormvariate(3.1 + 0.15 * engagement, 0.55) * plan_mult
        purchases.append((t, round(basket, 2)))
    if churned and rng.random() < 0.1:        # an odd purchase after cancelling
        t = active_end + timedelta(days=rng.uniform(1, 20))
        if t < END:
            purchases.append((t.replace(microsecond=0), round(rng.uniform(5, 40), 2)))

    session_rate = math.exp(-4.0 + 0.6 * engagement)
    sessions = []
    for t in arrivals(rng, session_rate, active_start, active_end + timedelta(days=7)):
        if t >= END:
            break
        n = rng.choice([1, 1, 2, 2, 3, 4])
        events = [(t + timedelta(seconds=rng.randint(5, 90) * i), rng.choice(EVENTS)) for i in range(n)]
        sessions.append(events)

    first, last = rng.choice(FIRST), rng.choice(LAST)
    modified = active_end if churned else END - timedelta(days=rng.uniform(1, 60))
    crm = {
        "Customer_Id__c": cid,
        "Name": f"{first} {last}",
        "Email": f"{first.lower()}.{last.lower()}{int(cid[1:])}@example.com",
        "Country": rng.choice(COUNTRIES),
        "Plan__c": plan,
        "Signup_Date__c": signup.strftime("%Y-%m-%d"),
        "Status__c": "Cancelled" if churned else "Active",
        "LastModifiedDate": modified.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
    }
    return crm, sorted(purchases), sessions


def clean_aggregates(cid, crm, purchases, sessions):
    """What the data pipeline would put in clean_customers for this customer."""
    return {
        "customer_id": cid,
        "status": crm["Status__c"].lower(),
        "total_spend": round(sum(a for _, a in purchases), 2),
        "txn_count": len(purchases),
        "last_purchase_at": ts(purchases[-1][0]) if purchases else None,
        "clicks": sum(len(s) for s in sessions),
        "sessions": len(sessions),
    }


def main():
    rng = random.Random(SEED)

    crm_records, txns, clicks = [], [], []
    for i in range(1, N_CUSTOMERS + 1):
        cid = f"C{i:04d}"
        crm, purchases, sessions = simulate_customer(rng, cid)
        crm_records.append(crm)
        txns += [(t, cid, amount) for t, amount in purchases]
        for s in sessions:
            clicks.append((s, cid))

    # ---- transactions.csv (Postgres) ---------------------------------------
    txns.sort()
    rows = []
    for n, (t, cid, amount) in enumerate(txns, 1):
        created = ts(t)
        amount_s = f"{amount:.2f}"
        r = rng.random()
        if r < 0.10:
            created = t.strftime("%Y-%m-%d %H:%M:%S")    # valid, other format
        elif r < 0.13:
            amount_s = f" ${amount:.2f} "                # valid after normalising
        elif r < 0.16:
            cid = cid.lower()                            # valid after normalising
        rows.append([f"T{n:06d}", cid, amount_s, created])
    dirty = []
    for _ in range(15):    # refunds mis-recorded as negative purchases
        r = list(rng.choice(rows)); r[2] = f"-{abs(float(r[2].strip().lstrip('$'))):.2f}"; dirty.append(r)
    for bad in ["2024-02-30T10:00:00Z", "yesterday", "", "31/12/2023", "2024-13-01 09:00:00",
                "2024-04-31T12:00:00Z", "n/a", "2024-06-00T00:00:00Z"]:
        r = list(rng.choice(rows)); r[3] = bad; dirty.append(r)
    for _ in range(6):     # missing customer id
        r = list(rng.choice(rows)); r[1] = ""; dirty.append(r)
    for bad in ["N/A", "12,50", "abc", "", "NaN"]:
        r = list(rng.choice(rows)); r[2] = bad; dirty.append(r)
    for j, r in enumerate(dirty):   # dirty rows get their own ids
        r[0] = f"T9{j:05d}"
    for r in [list(rng.choice(rows)) for _ in range(5)]:   # customers unknown to the CRM
        r[0] = "T8" + r[0][2:]; r[1] = "C9999"; dirty.append(r)
    dirty += [list(rng.choice(rows)) for _ in range(40)]    # re-delivered duplicates
    for r in dirty:
        rows.insert(rng.randrange(len(rows) + 1), r)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["transaction_id", "customer_id", "amount", "created_at"])
    w.writerows(rows)
    write(HERE / "transactions.csv", buf.getvalue())

    # ---- clickstream.jsonl (Kafka topic dump) ----------------------------------
    events = []
    for s_idx, (session, cid) in enumerate(sorted(clicks, key=lambda x: x[0][0][0]), 1):
        for t, kind in session:
            events.append({"customer_id": cid, "session_id": f"S{s_idx:05d}",
                           "event_type": kind, "ts": ts(t)})
    events.sort(key=lambda e: e["ts"])
    lines = []
    for n, e in enumerate(events, 1):
        e = {"event_id": f"E{n:06d}", **e}
        r = rng.random()
        if r < 0.05:
            e["ts"] = int(datetime.fromisoformat(e["ts"][:-1] + "+00:00").timestamp())  # epoch seconds
        elif r < 0.08:
            e["event_type"] = e["event_type"].upper()
        lines.append(json.dumps(e, separators=(",", ":")))
    extra = []
    for j in range(60):        # anonymous visitors (no customer id)
        e = json.loads(rng.choice(lines)); e["event_id"] = f"A{j:06d}"; e["customer_id"] = None
        extra.append(json.dumps(e, separators=(",", ":")))
    for j, bad in enumerate(["not-a-time", "2024-02-31T25:61:00Z", ""]):
        e = json.loads(rng.choice(lines)); e["event_id"] = f"B{j:06d}"; e["ts"] = bad
        extra.append(json.dumps(e, separators=(",", ":")))
    for _ in range(8):         # truncated messages
        line = rng.choice(lines); extra.append(line[: rng.randint(5, len(line) - 5)])
    extra += [rng.choice(lines) for _ in range(50)]   # at-least-once re-deliveries
    for line in extra:
        lines.insert(rng.randrange(len(lines) + 1), line)
    write(HERE / "clickstream.jsonl", "\n".join(lines) + "\n")

    # ---- crm.json (Salesforce API response) ------------------------------------
    records = []
    for n, c in enumerate(crm_records, 1):
        c = {"Id": f"003Hp0000{n:06d}AAA", **c}
        r = rng.random()
        if r < 0.08:
            c["Status__c"] = c["Status__c"].upper()
        elif r < 0.16:
            c["Status__c"] = c["Status__c"].lower()
        elif r < 0.21:
            y, m, d = c["Signup_Date__c"].split("-")
            c["Signup_Date__c"] = f"{m}/{d}/{y}"           # US-style date
        elif r < 0.25:
            c["Email"] = "  " + c["Email"].upper() + " "
        elif r < 0.27:
            c["Email"] = c["Email"].replace("@", " at ")      # invalid email
        records.append(c)
    stale = []
    for c in rng.sample(records, 12):    # older versions of the same customer
        old = dict(c)
        old["Status__c"] = "Active"
        old["Plan__c"] = "Basic"
        modified = datetime.strptime(c["LastModifiedDate"], "%Y-%m-%dT%H:%M:%S.%f%z")
        old["LastModifiedDate"] = (modified - timedelta(days=rng.uniform(20, 200))).strftime(
            "%Y-%m-%dT%H:%M:%S.000+0000")
        stale.append(old)
    for j in range(4):                   # records without a customer id
        c = dict(rng.choice(records)); c["Id"] = f"003Hp0001{j:06d}AAA"; c["Customer_Id__c"] = None
        stale.append(c)
    for c in stale:
        records.insert(rng.randrange(len(records) + 1), c)
    # Same shape as the API's JSON, one record per line to keep it compact.
    write(HERE / "crm.json", '{"totalSize": %d, "done": true, "records": [\n' % len(records)
          + ",\n".join(json.dumps(c) for c in records) + "\n]}\n")

    # ---- holdout.csv: labelled feature rows of other customers -----------------
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    cols = ["customer_id"] + FEATURES + [LABEL]
    w.writerow(cols)
    for i in range(1, N_HOLDOUT + 1):
        cid = f"H{i:04d}"
        crm, purchases, sessions = simulate_customer(rng, cid)
        row = compute_features(clean_aggregates(cid, crm, purchases, sessions), END)
        w.writerow([row[c] for c in cols])
    write(HERE / "holdout.csv", buf.getvalue())

    # ---- integration_test_rows.jsonl -------------------------------------------
    cases = [
        {"customer_id": "IT-typical-active", "total_spend": 412.5, "txn_count": 14, "avg_basket": 29.46,
         "days_since_last_purchase": 3.2, "clicks": 31, "sessions": 12},
        {"customer_id": "IT-typical-churner", "total_spend": 38.0, "txn_count": 2, "avg_basket": 19.0,
         "days_since_last_purchase": 140.0, "clicks": 2, "sessions": 1},
        {"customer_id": "IT-no-activity", "total_spend": 0.0, "txn_count": 0, "avg_basket": 0.0,
         "days_since_last_purchase": 365.0, "clicks": 0, "sessions": 0},
        {"customer_id": "IT-whale", "total_spend": 250000.0, "txn_count": 5000, "avg_basket": 50.0,
         "days_since_last_purchase": 0.0, "clicks": 100000, "sessions": 20000},
        {"customer_id": "IT-integers-as-strings", "total_spend": "120", "txn_count": "4",
         "avg_basket": "30", "days_since_last_purchase": "45", "clicks": "9", "sessions": "3"},
    ]
    write(HERE / "integration_test_rows.jsonl",
          "".join(json.dumps(c, separators=(",", ":")) + "\n" for c in cases))

    print(f"customers={N_CUSTOMERS} transactions={len(rows)} clickstream_lines={len(lines)} "
          f"crm_records={len(records)} holdout={N_HOLDOUT} "
          f"churn_rate={sum(c['Status__c'] == 'Cancelled' for c in crm_records) / N_CUSTOMERS:.2f}")


def write(path, text):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    print(f"wrote {path.name} ({len(text.encode())} bytes)")


if __name__ == "__main__":
    main()
