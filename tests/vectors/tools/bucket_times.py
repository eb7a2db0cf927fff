#!/usr/bin/env python3
# Independent computation of first_at/last_at for the rollup vectors (not using meterkit):
# the stored records after every batch (minus the report's rejections, minus repeated ids,
# minus retractions), those of each expected bucket (tenant, metric, window, subject, filters,
# group), their earliest and latest timestamps. Self-check: the count must equal the bucket's.
import json, sys, glob, os, re
from datetime import datetime, timezone
def ts(s):
    s=s.replace(' ','T')
    if s.endswith('Z'): s=s[:-1]+'+00:00'
    # fractional seconds up to ns: keep as (epoch seconds, nanos)
    m=re.match(r'(.*T\d\d:\d\d:\d\d)(\.\d+)?([+-]\d\d:\d\d)$',s)
    base=datetime.fromisoformat(m.group(1)+m.group(3))
    frac=(m.group(2) or '.')[1:].ljust(9,'0')
    return (int(base.timestamp()), int(frac))
def fmt(t):
    secs,ns=t
    s=datetime.fromtimestamp(secs,timezone.utc).strftime('%Y-%m-%dT%H:%M:%S')
    if ns:
        f=f"{ns:09d}"
        # AutoSi: 3, 6 or 9 digits
        if ns%1_000_000==0: f=f[:3]
        elif ns%1000==0: f=f[:6]
        s+='.'+f
    return s+'Z'
write='--write' in sys.argv
for path in sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'rollup', '*.json'))):
    v=json.load(open(path)); inp=v['input']; q=inp['query']
    stored={}
    for bi,batch in enumerate(inp['batches']):
        from collections import Counter
        rej=Counter((r['tenant'],r['id']) for r in v['expected']['report'][bi]['rejected'])
        fresh=Counter((r['tenant'],r['id']) for r in batch if (r['tenant'],r['id']) not in stored)
        for r in batch:
            k=(r['tenant'],r['id'])
            if k in stored: continue
            # a key rejected as often as it appears (new) here was never stored; otherwise its
            # first copy was stored and the later copies were the duplicates/conflicts
            if rej[k] >= fresh[k]: continue
            stored[k]=r
    for t,i in inp.get('retract',[]): stored.pop((t,i),None)
    lines=[]
    for b in v['expected']['buckets']:
        ws,we=ts(b['window_start']),ts(b['window_end'])
        sel=[]
        for r in stored.values():
            if r['tenant']!=q['tenant'] or r['metric']!=b['metric']: continue
            t=ts(r['timestamp'])
            if not (ws<=t<we): continue
            if q.get('subject') and r['subject']!=q['subject']: continue
            if b['subject'] is not None and r['subject']!=b['subject']: continue
            dims=r.get('dimensions',{})
            if any(dims.get(d)!=val for d,val in (q.get('filters') or {}).items()): continue
            if any((r['subject'] if d=='subject' else dims.get(d))!=val for d,val in b['group'].items()): continue
            sel.append(t)
        assert len(sel)==b['count'], (path,b,len(sel))
        f=fmt(min(sel)) if sel else None; l=fmt(max(sel)) if sel else None
        lines.append((f,l))
    text=open(path).read()
    # bucket lines: one per line inside "buckets"
    start=text.index('"buckets"')
    head,tail=text[:start],text[start:]
    out=[];k=0
    for line in tail.split('\n'):
        if line.strip().startswith('{"window_start"') and k<len(lines):
            f,l=lines[k];k+=1
            js=lambda x: 'null' if x is None else json.dumps(x)
            if '"first_at"' not in line:
                line=re.sub(r'\}(,?)\s*$', lambda m: f', "first_at": {js(f)}, "last_at": {js(l)}}}'+m.group(1), line)
        out.append(line)
    assert k==len(lines), (path,k,len(lines))
    print(path.split('/')[-1], lines[:3])
    if write: open(path,'w').write(head+'\n'.join(out))
