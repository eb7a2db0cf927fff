"""Write the end-to-end benchmark's usage CSV: ROWS rows of `id,timestamp,subject,quantity`,
10,000 meters (subjects) read every 30 minutes from 2024-03-30T00:00:00Z on (so the rows cross
the UK's DST change of 31 March), quantities in kWh with 3 decimals. Deterministic.

    python3 gen_csv.py OUT.csv [ROWS]
"""

import sys
from datetime import datetime, timedelta, timezone

out = sys.argv[1]
rows = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
subjects = 10_000
start = datetime(2024, 3, 30, tzinfo=timezone.utc)
with open(out, "w", encoding="ascii") as f:
    f.write("id,timestamp,subject,quantity\n")
    for step in range((rows + subjects - 1) // subjects):
        ts = (start + timedelta(minutes=30 * step)).strftime("%Y-%m-%dT%H:%M:%SZ")
        lines = []
        for s in range(min(subjects, rows - step * subjects)):
            i = step * subjects + s
            q = (i * 7919) % 100_000
            lines.append(f"r{i},{ts},m-{s},{q // 1000}.{q % 1000:03d}\n")
        f.write("".join(lines))
