#!/usr/bin/env python3
"""Generate a realistic Postfix mail.log for `scripts/bench.d/explain` (never for the repo).

Mix per session, shaped like a hosting MX + submission server: inbound deliveries (connect,
client=, cleanup, qmgr, virtual delivery, removed, disconnect), authenticated submissions
relayed outwards (sasl_username=, smtp status=sent), greylisted/deferred outbound (`said:`),
dovecot IMAP/POP logins, and refused sessions: Relay access denied, RBL, unknown users, HELO
checks. The share of refused sessions is tuned so that reject lines are ~5% of all lines.
Deterministic (seeded). Usage: gen-maillog.py --mb 1024 --out /tmp/x/mail.log
"""
import argparse
import random

ap = argparse.ArgumentParser()
ap.add_argument("--mb", type=int, default=1024)
ap.add_argument("--out", required=True)
ap.add_argument("--reject-share", type=float, default=0.05)
ap.add_argument("--unique-mb", type=int, default=128,
                help="generate this much, then repeat it up to --mb (generation is the slow part)")
args = ap.parse_args()

rnd = random.Random(7)
target = args.mb * 1024 * 1024
HOST = "mx1"
months = ["Nov"]
domains = ["example.com", "example.org", "hosting-customer.example", "shop.example", "club.example"]
ext = ["gmail.example", "outlook.example", "yahoo.example", "web.example", "partner.example", "isp.example"]
users = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"]
HEX = "0123456789ABCDEF"


def qid():
    return "".join(rnd.choice(HEX) for _ in range(10))


def ip():
    return f"{rnd.randint(1, 223)}.{rnd.randint(0, 255)}.{rnd.randint(0, 255)}.{rnd.randint(1, 254)}"


clients = [(f"mail{i}.{rnd.choice(ext)}", ip()) for i in range(3000)]
spammers = [("unknown", ip()) for _ in range(20000)]
offices = [(f"pc{i}.dsl.isp.example", ip()) for i in range(500)]

sec = 0
lines_total = 0
rejects = 0


def ts():
    s = sec // 20  # ~20 lines per second
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return f"Nov {1 + d % 28:2d} {h:02d}:{m:02d}:{s:02d}"


def line(prog, pid, msg):
    global sec
    sec += 1
    return f"{ts()} {HOST} {prog}[{pid}]: {msg}\n"


def inbound(pid):
    name, a = rnd.choice(clients)
    q = qid()
    rcpt = f"{rnd.choice(users)}@{rnd.choice(domains)}"
    frm = f"{rnd.choice(users)}{rnd.randint(1, 999)}@{rnd.choice(ext)}"
    return [
        line("postfix/smtpd", pid, f"connect from {name}[{a}]"),
        line("postfix/smtpd", pid, f"{q}: client={name}[{a}]"),
        line("postfix/cleanup", pid + 1, f"{q}: message-id=<{rnd.getrandbits(64):x}@{name}>"),
        line("postfix/qmgr", 900, f"{q}: from=<{frm}>, size={rnd.randint(900, 90000)}, nrcpt=1 (queue active)"),
        line("postfix/virtual", pid + 2, f"{q}: to=<{rcpt}>, relay=virtual, delay=0.{rnd.randint(10, 99)}, delays=0.05/0.01/0/0.02, dsn=2.0.0, status=sent (delivered to maildir)"),
        line("postfix/qmgr", 900, f"{q}: removed"),
        line("postfix/smtpd", pid, f"disconnect from {name}[{a}] ehlo=2 starttls=1 mail=1 rcpt=1 data=1 quit=1 commands=7"),
    ]


def submission(pid):
    name, a = rnd.choice(offices)
    q = qid()
    u = f"{rnd.choice(users)}@{rnd.choice(domains)}"
    rcpt = f"{rnd.choice(users)}@{rnd.choice(ext)}"
    out = [
        line("postfix/submission/smtpd", pid, f"connect from {name}[{a}]"),
        line("postfix/submission/smtpd", pid, f"{q}: client={name}[{a}], sasl_method=PLAIN, sasl_username={u}"),
        line("postfix/cleanup", pid + 1, f"{q}: message-id=<{rnd.getrandbits(64):x}@{u.split('@')[1]}>"),
        line("postfix/qmgr", 900, f"{q}: from=<{u}>, size={rnd.randint(900, 90000)}, nrcpt=1 (queue active)"),
    ]
    mx = f"mx.{rcpt.split('@')[1]}"
    if rnd.random() < 0.05:
        out.append(line("postfix/smtp", pid + 3, f"{q}: to=<{rcpt}>, relay={mx}[{ip()}]:25, delay=1.2, delays=0.1/0/0.5/0.6, dsn=4.7.1, status=deferred (host {mx}[{ip()}] said: 450 4.7.1 <{rcpt}>: Recipient address rejected: Greylisted, try again later (in reply to RCPT TO command))"))
    else:
        out.append(line("postfix/smtp", pid + 3, f"{q}: to=<{rcpt}>, relay={mx}[{ip()}]:25, delay=0.9, delays=0.1/0/0.3/0.5, dsn=2.0.0, status=sent (250 2.0.0 OK {rnd.getrandbits(32)})"))
        out.append(line("postfix/qmgr", 900, f"{q}: removed"))
    out.append(line("postfix/submission/smtpd", pid, f"disconnect from {name}[{a}] ehlo=2 starttls=1 auth=1 mail=1 rcpt=1 data=1 quit=1 commands=8"))
    return out


def dovecot(pid):
    u = f"{rnd.choice(users)}@{rnd.choice(domains)}"
    kind = rnd.choice(["imap", "pop3"])
    return [
        f"{ts()} {HOST} dovecot: {kind}-login: Login: user=<{u}>, method=PLAIN, rip={ip()}, lip=192.0.2.1, mpid={pid}, TLS, session=<{rnd.getrandbits(48):x}>\n",
        f"{ts()} {HOST} dovecot: {kind}({u})<{pid}><{rnd.getrandbits(48):x}>: Disconnected: Logged out in=120 out=4521\n",
    ]


def refused(pid):
    global rejects
    r = rnd.random()
    if r < 0.5:
        name, a = rnd.choice(spammers + offices[:50])
        rcpt = f"{rnd.choice(users)}@{rnd.choice(ext)}"
        msg = f"554 5.7.1 <{rcpt}>: Relay access denied"
    elif r < 0.75:
        name, a = rnd.choice(spammers)
        rcpt = f"{rnd.choice(users)}@{rnd.choice(domains)}"
        msg = f"554 5.7.1 Service unavailable; Client host [{a}] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/{a}"
    elif r < 0.9:
        name, a = rnd.choice(spammers)
        rcpt = f"{rnd.choice(['info', 'sales', 'admin', 'x'])}{rnd.randint(1, 99)}@{rnd.choice(domains)}"
        msg = f"550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown in virtual mailbox table"
    else:
        name, a = rnd.choice(spammers)
        rcpt = f"{rnd.choice(users)}@{rnd.choice(domains)}"
        msg = "504 5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname"
    rejects += 1
    helo = "localhost" if "Helo" in msg else f"{name}"
    return [
        line("postfix/smtpd", pid, f"connect from {name}[{a}]"),
        line("postfix/smtpd", pid, f"NOQUEUE: reject: RCPT from {name}[{a}]: {msg}; from=<spam{rnd.randint(1, 9999)}@{rnd.choice(ext)}> to=<{rcpt}> proto=ESMTP helo=<{helo}>"),
        line("postfix/smtpd", pid, f"disconnect from {name}[{a}] ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4"),
    ]


written = 0
unique = min(target, args.unique_mb * 1024 * 1024)
with open(args.out, "w", buffering=8 << 20) as f:
    batch = []
    pid = 10000
    while written < unique:
        pid = 10000 + (pid + 7) % 50000
        share = rejects / max(lines_total, 1)
        if share < args.reject_share:
            ls = refused(pid)
        else:
            k = rnd.random()
            ls = inbound(pid) if k < 0.6 else submission(pid) if k < 0.85 else dovecot(pid)
        lines_total += len(ls)
        for l in ls:
            written += len(l)
        batch.extend(ls)
        if len(batch) > 20000:
            f.write("".join(batch))
            batch.clear()
    f.write("".join(batch))
# Repeat the block (time goes back at each repetition: irrelevant for throughput).
if written < target:
    with open(args.out, "rb") as f:
        block = f.read()
    reps = 1
    with open(args.out, "ab") as f:
        while written < target:
            f.write(block)
            written += len(block)
            reps += 1
    lines_total *= reps
    rejects *= reps
print(f"{args.out}: {written >> 20} MB, {lines_total} lines, {rejects} reject lines ({100 * rejects / lines_total:.1f}%)")
