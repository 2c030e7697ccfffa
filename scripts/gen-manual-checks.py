# One-off generator for the manual checks: writes a source: manual check for every seed
# checklist line that no check covers yet. Run from the repo root after `cargo build`.
import re, glob, json, subprocess, os
seed = open('fixtures/seed/PRODUCTION_CHECKLIST.md').read().splitlines()
# Parse leaf lines with their section path.
h2 = h3 = None
items = []
for i, l in enumerate(seed):
    if l.startswith('## '): h2 = l[3:].strip(); h3 = None; continue
    if l.startswith('### '): h3 = l[4:].strip(); continue
    m = re.match(r'^(\s*)- \[ \] (.*)$', l)
    if m: items.append((i, len(m.group(1)), m.group(2), h2, h3))
leaves = []
parent = {}
for k, (i, ind, t, a, b) in enumerate(items):
    if ind == 0: parent[k] = t
    nxt = items[k + 1] if k + 1 < len(items) else None
    top = None
    for j in range(k, -1, -1):
        if items[j][1] == 0: top = items[j][2]; break
    if nxt and nxt[1] > ind and nxt[0] == i + 1: continue
    leaves.append((t, a, b, top if ind > 0 else None))
covered = set()
for c in json.loads(subprocess.check_output(['./target/debug/mlsdm-audit', 'list-checks', '--format', 'json'])):
    covered.update(c['checklist'])
def clean(s): return re.sub(r'[*`✅]', '', s).strip()
def section(a, b, top):
    a = {'Pre-Deployment Checklist': 'Pre-Deployment', 'Deployment Day Checklist': 'Deployment Day',
         'Post-Deployment Monitoring (First 24 Hours)': 'Post-Deployment Monitoring'}.get(a, a)
    parts = [a]
    if b: parts.append(clean(b))
    if top: parts.append(clean(top.split(':')[0]) if a != 'Post-Deployment Monitoring' else clean(top.split(':')[0]))
    return ' / '.join(parts)
used = set(os.path.basename(p)[:-5] for p in glob.glob('checks/*.yaml'))
n = 0
for t, a, b, top in leaves:
    if t in covered: continue
    base = re.sub(r'[^a-z0-9]+', '-', clean(t).lower().split('(')[0]).strip('-')
    words = [w for w in base.split('-') if w not in ('and', 'the', 'of', 'to', 'for', 'a', 'if', 'on')][:5]
    cid = 'manual-' + '-'.join(words)
    if t.startswith('**'):
        role = clean(t.split(':')[0])
        cid = 'signoff-' + re.sub(r'[^a-z0-9]+', '-', role.lower()).strip('-')
    while cid in used: cid += '-2'
    used.add(cid)
    sec = section(a, b, top)
    title = clean(t).rstrip(':_ ').replace('___________________ Date', 'signs off').replace(': ', ' ')
    if cid.startswith('signoff-'): title = f"{clean(t.split(':')[0])} signs off the release"
    sev = 'high' if a in ('Rollback Criteria', 'Sign-Off') else 'medium'
    q = json.dumps
    body = f"""id: {cid}
title: {q(title)}
section: {q(sec)}
checklist: [{q(t)}]
severity: {sev}
source: manual
remediation: >-
  Do it, then record who confirmed it, when, and the evidence (a link or a note) in the
  attestations file under check {cid}.
doc: >-
  "{clean(t)}" is decided by people, not by anything the cluster, the service or its metrics
  expose, so a reviewer attests to it at sign-off. It stays open (manual) until attested.
"""
    open(f'checks/{cid}.yaml', 'w').write(body)
    n += 1
print(n, 'manual checks written')
