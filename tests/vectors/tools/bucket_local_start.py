#!/usr/bin/env python3
# local_start (window start in the query's zone, with offset) and group.subject for the rollup
# vectors, worked out with Python's zoneinfo (independent of meterkit).
import json, glob, os, re, sys
from datetime import datetime, timezone
from zoneinfo import ZoneInfo
write='--write' in sys.argv
for path in sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'rollup', '*.json'))):
    v=json.load(open(path)); q=v['input']['query']; tz=ZoneInfo(q['time_zone'])
    text=open(path).read()
    out=[]; n=0
    for line in text.split('\n'):
        m=re.match(r'^(\s*)(\{"window_start".*\})(,?)\s*$', line)
        if m and '"local_start"' not in line:
            b=json.loads(m.group(2))
            assert json.dumps(b)==m.group(2), (path, line)
            ws=datetime.fromisoformat(b['window_start'].replace('Z','+00:00')).astimezone(tz)
            local=ws.isoformat(timespec='seconds')
            nb={}
            for k,val in b.items():
                nb[k]=val
                if k=='window_end': nb['local_start']=local
            if 'subject' in (q.get('group_by') or []):
                nb['group']=dict(sorted({**b['group'], 'subject': b['subject']}.items()))
            line=m.group(1)+json.dumps(nb)+m.group(3); n+=1
        out.append(line)
    print(path.split('/')[-1], n, [l.strip()[:200] for l in out if '"local_start"' in l][:1])
    if write: open(path,'w').write('\n'.join(out))
