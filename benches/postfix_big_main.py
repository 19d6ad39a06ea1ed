#!/usr/bin/env python3
"""Generate the main.cf of issue 2's second benchmark: 10,000 parameters with 100,000
continuation lines (one per class name in smtpd_restriction_classes, nine per class). The parameters are restriction classes (listed in
smtpd_restriction_classes, as large hosting setups do), so both postconf and relaydoctor treat
them as used names rather than typos. Usage: postfix_big_main.py OUTDIR"""
import os
import sys

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
n = 10_000
with open(os.path.join(out, "main.cf"), "w") as f:
    f.write("compatibility_level = 3.6\n")
    f.write("myhostname = bench.example.com\n")
    f.write("smtpd_restriction_classes =\n")
    for i in range(n):
        f.write(f"    class_{i}\n")
    for i in range(n):
        f.write(f"class_{i} =\n")
        for k in range(8):
            f.write(f"    check_client_access hash:/etc/postfix/access_{i}_{k},\n")
        f.write("    permit_mynetworks\n")
