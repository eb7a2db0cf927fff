#!/usr/bin/env python3
# local_start, first_at/last_at (and group.subject when grouped by subject) for the partial
# vectors, worked out from the partitions' records with Python's zoneinfo, independent of
# meterkit. A record counts once per (tenant, id); self-check: the count must equal the bucket's.
import json, glob, os, re, sys
from datetime import datetime, timezone
from zoneinfo import ZoneInfo
def t(s): return datetime.fromisoformat(s.replace('Z', '+00:00'))
write = '--write' in sys.argv
for path in sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'partial', '*.json'))):
    v = json.load(open(path)); inp = v['input']; q = inp['query']; tz = ZoneInfo(q['time_zone'])
    seen = {}
    for part in inp['partitions']:
        for r in part:
            seen.setdefault((r['tenant'], r['id']), r)
    recs = [r for r in seen.values() if r['tenant'] == q['tenant'] and r['metric'] == q['metric']]
    def fill(b):
        a, e = t(b['window_start']), t(b['window_end'])
        mine = [r for r in recs if a <= t(r['timestamp']) < e
                and (b.get('subject') is None or r['subject'] == b['subject'])
                and all(r.get('dimensions', {}).get(d) == val for d, val in b['group'].items() if d != 'subject')]
        assert len(mine) == b['count'], (path, b, len(mine))
        out = {}
        for k, val in b.items():
            out[k] = val
            if k == 'group':
                out[k] = {d: (b['subject'] if d == 'subject' else val.get(d)) for d in q.get('group_by', [])}
            if k == 'window_end':
                out['local_start'] = a.astimezone(tz).isoformat(timespec='seconds')
        ts = sorted(t(r['timestamp']) for r in mine)
        out['first_at'] = ts[0].astimezone(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
        out['last_at'] = ts[-1].astimezone(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
        return out
    for key in ('buckets', 'imported'):
        v['expected'][key] = [fill(b) for b in v['expected'][key]]
    if write:  # one bucket per line, as the file has them
        filled = iter(v['expected']['buckets'] + v['expected']['imported'])
        lines = []
        for line in open(path).read().split('\n'):
            m = re.match(r'^(\s*)\{"window_start".*\}(,?)\s*$', line)
            if m:
                line = m.group(1) + json.dumps(next(filled), ensure_ascii=False) + m.group(2)
            lines.append(line)
        open(path, 'w').write('\n'.join(lines))
    print(path, 'ok')
