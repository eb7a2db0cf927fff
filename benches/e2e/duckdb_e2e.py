"""DuckDB's side of the end-to-end comparison: load the usage CSV into a DuckDB file and compute
the same two rollups meterkit keeps (daily per subject in Europe/London, hourly UTC: sum, count,
min, max), stored as tables. One thread. Prints `seconds bytes_per_record daily_rows hourly_rows
checksum`.

    python duckdb_e2e.py CSV DBFILE
"""

import os
import sys
import time

import duckdb

csv, db = sys.argv[1], sys.argv[2]
for p in (db, db + ".wal"):
    if os.path.exists(p):
        os.remove(p)
t = time.perf_counter()
con = duckdb.connect(db)
con.execute("SET threads = 1")
con.execute("SET TimeZone = 'UTC'")
con.execute(
    f"""CREATE TABLE usage AS SELECT * FROM read_csv('{csv}', header = true,
        columns = {{'id': 'VARCHAR', 'timestamp': 'TIMESTAMPTZ', 'subject': 'VARCHAR', 'quantity': 'DECIMAL(18,3)'}})"""
)
con.execute(
    """CREATE TABLE daily AS SELECT subject,
           date_trunc('day', timezone('Europe/London', "timestamp")) AS day,
           sum(quantity) AS sum, count(*) AS count, min(quantity) AS min, max(quantity) AS max
       FROM usage GROUP BY ALL"""
)
con.execute(
    """CREATE TABLE hourly AS SELECT date_trunc('hour', timezone('UTC', "timestamp")) AS hour,
           sum(quantity) AS sum, count(*) AS count, min(quantity) AS min, max(quantity) AS max
       FROM usage GROUP BY ALL"""
)
con.execute("CHECKPOINT")
rows = con.execute("SELECT count(*) FROM usage").fetchone()[0]
daily, dsum = con.execute("SELECT count(*), sum(sum) FROM daily").fetchone()
hourly = con.execute("SELECT count(*) FROM hourly").fetchone()[0]
con.close()
elapsed = time.perf_counter() - t
size = sum(os.path.getsize(p) for p in (db, db + ".wal") if os.path.exists(p))
print(f"{elapsed:.3f} {size / rows:.1f} {daily} {hourly} {dsum}")
