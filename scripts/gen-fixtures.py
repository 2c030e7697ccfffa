# Generates the derived fixtures from fixtures/compliant and fixtures/live/healthy.yaml:
#   fixtures/defects/<check-id>.yaml   one defect each, as an overlay (see fixtures/README.md)
#   fixtures/compliant-modular/        the compliant set in upstream's modular naming (neuro-engine)
#   fixtures/defective/                a full set with the mistakes upstream's manifests make
# Run from the repo root: python3 scripts/gen-fixtures.py
import copy, glob, os, yaml

def load(paths):
    docs = []
    for p in paths:
        docs += [d for d in yaml.safe_load_all(open(p)) if d]
    return docs

compliant = load(sorted(glob.glob('fixtures/compliant/*.yaml')))
live = load(['fixtures/live/healthy.yaml'])
key = lambda d: (d['kind'], d['metadata'].get('namespace'), d['metadata']['name'])
base = {key(d): d for d in compliant}
base.update({key(d): d for d in live})

def get(kind, name):
    return copy.deepcopy(next(d for k, d in base.items() if k[0] == kind and k[2] == name))

def delete(kind, name, ns='mlsdm-production'):
    meta = {'name': name, 'annotations': {'fixtures.mlsdm-audit.io/delete': 'true'}}
    if kind != 'Namespace':
        meta['namespace'] = ns
    api = {'Namespace': 'v1', 'ResourceQuota': 'v1', 'ConfigMap': 'v1', 'Secret': 'v1', 'NetworkPolicy': 'networking.k8s.io/v1',
           'PrometheusRule': 'monitoring.coreos.com/v1', 'AlertmanagerConfig': 'monitoring.coreos.com/v1alpha1'}[kind]
    return {'apiVersion': api, 'kind': kind, 'metadata': meta}

def dep(mut):
    d = get('Deployment', 'mlsdm-api')
    c = d['spec']['template']['spec']['containers'][0]
    mut(d, c)
    return [d]

def env_set(c, name, value):
    c['env'] = [e for e in c['env'] if e['name'] != name] + ([{'name': name, 'value': value}] if value is not None else [])

def obj(kind, name, mut):
    o = get(kind, name)
    mut(o)
    return [o]

def config(text_mut):
    cm = get('ConfigMap', 'mlsdm-config')
    cm['data']['config.yaml'] = text_mut(cm['data']['config.yaml'])
    return [cm]

def pod_status(mut):
    p = get('Pod', 'mlsdm-api-6b8f9d7c5-7d9c4')
    mut(p['status']['containerStatuses'][0])
    return [p]

def setp(o, path, value):
    *parents, last = path.split('.')
    for k in parents:
        o = o.setdefault(k, {})
    if value is None:
        o.pop(last, None)
    else:
        o[last] = value

D = {}
D['resources-memory-request-min'] = ('memory request 256Mi', dep(lambda d, c: setp(c, 'resources.requests.memory', '256Mi')))
D['resources-memory-limit-max'] = ('memory limit 4Gi', dep(lambda d, c: setp(c, 'resources.limits.memory', '4Gi')))
D['resources-cpu-request-min'] = ('CPU request 100m', dep(lambda d, c: setp(c, 'resources.requests.cpu', '100m')))
D['resources-limits-match-workload'] = ('memory limit 1Gi, below the 1.4 GB bound', dep(lambda d, c: setp(c, 'resources.limits.memory', '1Gi')))
D['pods-admitted'] = ('memory request 3Gi above its 2Gi limit: no pod is created', dep(lambda d, c: setp(c, 'resources.requests.memory', '3Gi')))
D['probe-liveness-path'] = ('liveness probe on /healthz', dep(lambda d, c: setp(c, 'livenessProbe.httpGet.path', '/healthz')))
D['probe-readiness-path'] = ('readiness probe on /health/live', dep(lambda d, c: setp(c, 'readinessProbe.httpGet.path', '/health/live')))
D['probe-startup-configured'] = ('startup probe allows 10 attempts', dep(lambda d, c: setp(c, 'startupProbe.failureThreshold', 10)))
D['probe-timeouts'] = ('readiness timeout 1 s', dep(lambda d, c: setp(c, 'readinessProbe.timeoutSeconds', 1)))
def root(d, c):
    setp(c, 'securityContext.runAsNonRoot', False); setp(c, 'securityContext.runAsUser', 0)
    setp(d, 'spec.template.spec.securityContext.runAsNonRoot', False); setp(d, 'spec.template.spec.securityContext.runAsUser', 0)
D['security-run-as-non-root'] = ('runs as root', dep(root))
def host_pid(d, c):
    d['spec']['template']['spec']['hostPID'] = True
D['security-host-isolation'] = ('shares the host PID namespace', dep(host_pid))
D['security-read-only-root-fs'] = ('writable root filesystem', dep(lambda d, c: setp(c, 'securityContext.readOnlyRootFilesystem', False)))
D['security-context-hardened'] = ('privilege escalation allowed', dep(lambda d, c: setp(c, 'securityContext.allowPrivilegeEscalation', True)))
D['security-capabilities-drop-all'] = ('adds NET_ADMIN', dep(lambda d, c: setp(c, 'securityContext.capabilities.add', ['NET_ADMIN'])))
D['api-key-from-secret'] = ('API_KEY as a literal value', dep(lambda d, c: env_set(c, 'API_KEY', 'sk-fixture-literal-key-0123456789abcdef')))
D['mlsdm-serves-api'] = ('uvicorn on its default address, 127.0.0.1', dep(lambda d, c: setp(c, 'command', ['uvicorn', 'mlsdm.api.app:app', '--port', '8000'])))
D['api-key-configured'] = ('API_KEY not set', dep(lambda d, c: env_set(c, 'API_KEY', None)))
def placeholder(s):
    import base64
    s['data']['api-key'] = base64.b64encode(b'CHANGE-ME').decode()
D['api-key-not-placeholder'] = ('API key Secret holds CHANGE-ME', obj('Secret', 'mlsdm-secrets', placeholder))
D['secret-rotation-schedule'] = ('no rotation schedule on the API key Secret', obj('Secret', 'mlsdm-secrets', lambda s: s['metadata'].pop('annotations')))
D['configmap-no-credentials'] = ('an OpenAI key in a ConfigMap', obj('ConfigMap', 'mlsdm-config', lambda c: c['data'].update({'openai_api_key': 'sk-proj-Fixture0123456789abcdefXYZ'})))
D['referenced-configmaps-exist'] = ('ConfigMap mlsdm-config missing', [delete('ConfigMap', 'mlsdm-config')])
D['referenced-secrets-exist'] = ('Secret mlsdm-secrets missing', [delete('Secret', 'mlsdm-secrets')])
D['image-pull-secrets-resolvable'] = ('pull secret registry-credentials missing', [delete('Secret', 'registry-credentials')])
D['image-pinned'] = ('image :latest', dep(lambda d, c: setp(c, 'image', 'ghcr.io/neuron7x/mlsdm-neuro-engine:latest')))
D['image-digest-pinned'] = ('image tag without digest', dep(lambda d, c: setp(c, 'image', 'ghcr.io/neuron7x/mlsdm-neuro-engine:1.2.0')))
D['namespace-defined'] = ('Namespace object missing', [delete('Namespace', 'mlsdm-production')])
D['rbac-service-account'] = ('default ServiceAccount', dep(lambda d, c: d['spec']['template']['spec'].pop('serviceAccountName')))
D['namespace-resource-quota'] = ('no ResourceQuota', [delete('ResourceQuota', 'mlsdm-quota')])
D['ingress-tls'] = ('Ingress without tls', obj('Ingress', 'mlsdm-api', lambda i: i['spec'].pop('tls')))
def no_redirect(i):
    for k in ['nginx.ingress.kubernetes.io/ssl-redirect', 'nginx.ingress.kubernetes.io/force-ssl-redirect']:
        i['metadata']['annotations'].pop(k)
D['ingress-https-redirect'] = ('no HTTPS redirect', obj('Ingress', 'mlsdm-api', no_redirect))
D['ingress-ip-allowlist'] = ('no source-range allowlist', obj('Ingress', 'mlsdm-api', lambda i: i['metadata']['annotations'].pop('nginx.ingress.kubernetes.io/whitelist-source-range')))
D['network-policy-default-deny'] = ('no default-deny NetworkPolicy', [delete('NetworkPolicy', 'default-deny-all')])
D['network-policy-allows-api'] = ('allow policy selects app=neuro-engine (upstream mismatch)', obj('NetworkPolicy', 'mlsdm-api-allow', lambda n: setp(n, 'spec.podSelector.matchLabels.app', 'neuro-engine')))
D['network-policy-selects-pods'] = ('allow policy selects app=neuro-engine, which no pod has', obj('NetworkPolicy', 'mlsdm-api-allow', lambda n: setp(n, 'spec.podSelector.matchLabels.app', 'neuro-engine')))
D['ingress-backend-exists'] = ('Ingress routes to Service neuro-engine, which does not exist', obj('Ingress', 'mlsdm-api', lambda i: setp(i['spec']['rules'][0]['http']['paths'][0], 'backend.service.name', 'neuro-engine')))
D['service-monitor-selects-service'] = ('ServiceMonitor selects app=neuro-engine, which no Service has', obj('ServiceMonitor', 'mlsdm-api', lambda m: setp(m, 'spec.selector.matchLabels.app', 'neuro-engine')))
D['mlsdm-config-valid'] = ('top-level capacity in the config file', config(lambda t: t + 'capacity: 20000\n'))
D['mlsdm-env-overrides-valid'] = ('MLSDM_ENV=production', dep(lambda d, c: env_set(c, 'MLSDM_ENV', 'production')))
D['mlsdm-config-dimension'] = ('dimension 512', config(lambda t: t.replace('dimension: 384', 'dimension: 512')))
D['mlsdm-config-capacity'] = ('pelm.capacity 5000000', config(lambda t: t.replace('capacity: 20000', 'capacity: 5000000')))
D['rate-limit-configured'] = ('DISABLE_RATE_LIMIT=1', dep(lambda d, c: env_set(c, 'DISABLE_RATE_LIMIT', '1')))
D['llm-backend-set'] = ('LLM_BACKEND=anthropic', dep(lambda d, c: env_set(c, 'LLM_BACKEND', 'anthropic')))
D['log-level-info'] = ('LOG_LEVEL=DEBUG', dep(lambda d, c: env_set(c, 'LOG_LEVEL', 'DEBUG')))
def two(d, c):
    d['spec']['replicas'] = 2
D['replicas-min-3'] = ('2 replicas, HPA minReplicas 2', dep(two) + obj('HorizontalPodAutoscaler', 'mlsdm-api-hpa', lambda h: setp(h, 'spec.minReplicas', 2)))
D['pod-anti-affinity'] = ('no anti-affinity', dep(lambda d, c: d['spec']['template']['spec'].pop('affinity')))
D['topology-spread-zones'] = ('no zone spread', dep(lambda d, c: d['spec']['template']['spec'].pop('topologySpreadConstraints')))
D['pdb-min-available'] = ('PDB minAvailable 1', obj('PodDisruptionBudget', 'mlsdm-api-pdb', lambda p: setp(p, 'spec.minAvailable', 1)))
def privileged_job(j):
    spec = j['spec']['template']['spec']
    spec['hostNetwork'] = True
    spec['containers'][0]['securityContext'] = {'privileged': True, 'runAsUser': 0}
D['pods-outside-workloads-hardened'] = ('the smoke-test Job privileged, on the host network, as root', obj('Job', 'mlsdm-smoke-test', privileged_job))
def bare_pod(p):
    # Review finding: a bare Pod the Service reaches, running MLSDM, passed every check.
    p['metadata']['name'] = 'mlsdm-api-debug'
    p['metadata'].pop('ownerReferences', None)
D['mlsdm-runs-in-a-workload'] = ('a bare Pod running MLSDM beside the Deployment, which the Service reaches', obj('Pod', 'mlsdm-api-6b8f9d7c5-7d9c4', bare_pod))
D['pdb-allows-rollout'] = ('PDB minAvailable 3 of 3 replicas', obj('PodDisruptionBudget', 'mlsdm-api-pdb', lambda p: setp(p, 'spec.minAvailable', 3)))
D['pdb-selects-workload'] = ('PDB selects app=neuro-engine (upstream mismatch)', obj('PodDisruptionBudget', 'mlsdm-api-pdb', lambda p: setp(p, 'spec.selector.matchLabels.app', 'neuro-engine')))
D['service-selects-workload'] = ('Service selects app=neuro-engine (upstream mismatch)', obj('Service', 'mlsdm-api', lambda s: setp(s, 'spec.selector.app', 'neuro-engine')))
D['hpa-targets-workload'] = ('HPA targets Deployment neuro-engine', obj('HorizontalPodAutoscaler', 'mlsdm-api-hpa', lambda h: setp(h, 'spec.scaleTargetRef.name', 'neuro-engine')))
D['hpa-target-exists'] = D['hpa-targets-workload']
D['hpa-metrics-cpu-memory'] = ('HPA on CPU only', obj('HorizontalPodAutoscaler', 'mlsdm-api-hpa', lambda h: setp(h, 'spec.metrics', h['spec']['metrics'][:1])))
D['hpa-replica-range'] = ('HPA maxReplicas 20', obj('HorizontalPodAutoscaler', 'mlsdm-api-hpa', lambda h: setp(h, 'spec.maxReplicas', 20)))
D['hpa-behavior-defined'] = ('HPA without behavior', obj('HorizontalPodAutoscaler', 'mlsdm-api-hpa', lambda h: h['spec'].pop('behavior')))
D['rollout-strategy-rolling'] = ('Recreate strategy', dep(lambda d, c: setp(d, 'spec.strategy', {'type': 'Recreate'})))
D['rollout-max-surge'] = ('maxSurge 25%', dep(lambda d, c: setp(d, 'spec.strategy.rollingUpdate.maxSurge', '25%')))
D['rollout-max-unavailable'] = ('maxUnavailable 1', dep(lambda d, c: setp(d, 'spec.strategy.rollingUpdate.maxUnavailable', 1)))
D['rollout-rollback-possible'] = ('revisionHistoryLimit 0', dep(lambda d, c: setp(d, 'spec.revisionHistoryLimit', 0)))
D['termination-grace-period'] = ('grace period 10 s with a 15 s preStop sleep', dep(lambda d, c: setp(d, 'spec.template.spec.terminationGracePeriodSeconds', 10)))
D['prometheus-scrape-configured'] = ('scrape path /metrics (404 on MLSDM)', dep(lambda d, c: setp(d, 'spec.template.metadata.annotations', {'prometheus.io/scrape': 'true', 'prometheus.io/port': '8000', 'prometheus.io/path': '/metrics'})))
D['prometheus-rules-present'] = ('no PrometheusRule', [delete('PrometheusRule', 'mlsdm-api-alerts')])
D['alert-routing-configured'] = ('no AlertmanagerConfig', [delete('AlertmanagerConfig', 'mlsdm-routing')])
D['grafana-dashboard-present'] = ('no dashboard', [delete('ConfigMap', 'mlsdm-dashboard')])
D['tracing-configured'] = ('OTEL_EXPORTER_TYPE=console', dep(lambda d, c: env_set(c, 'OTEL_EXPORTER_TYPE', 'console')))
D['tracing-endpoint-configured'] = ('no OTLP endpoint', dep(lambda d, c: env_set(c, 'OTEL_EXPORTER_OTLP_ENDPOINT', None)))
def no_sampler(d, c):
    env_set(c, 'OTEL_TRACES_SAMPLER', None); env_set(c, 'OTEL_TRACES_SAMPLER_ARG', None)
D['tracing-sampling-configured'] = ('no sampler', dep(no_sampler))
def stuck(d, c):
    d['status'].update({'updatedReplicas': 2, 'availableReplicas': 2, 'readyReplicas': 3})
    d['status']['conditions'][1].update({'status': 'False', 'reason': 'ProgressDeadlineExceeded'})
D['rollout-complete'] = ('rollout stuck: ProgressDeadlineExceeded, 2 of 3 updated', dep(stuck))
D['pods-ready'] = ('2/3 replicas ready', dep(lambda d, c: d['status'].update({'readyReplicas': 2, 'availableReplicas': 2})))
D['rollback-pods-failing-health'] = ('1/3 replicas ready', dep(lambda d, c: d['status'].update({'readyReplicas': 1, 'availableReplicas': 1})))
def restarted(s):
    s.update({'restartCount': 4, 'lastState': {'terminated': {'exitCode': 1, 'reason': 'Error'}}})
D['pod-no-restarts'] = ('a container restarted 4 times', pod_status(restarted))
def oom(s):
    s.update({'restartCount': 2, 'lastState': {'terminated': {'exitCode': 137, 'reason': 'OOMKilled'}}})
D['pod-no-oom-kills'] = ('a container was OOMKilled', pod_status(oom))
def no_metrics(h):
    h['status']['conditions'][1].update({'status': 'False', 'reason': 'FailedGetResourceMetric', 'message': 'the HPA was unable to compute the replica count: missing request for memory'})
D['hpa-conditions-healthy'] = ('HPA ScalingActive False', obj('HorizontalPodAutoscaler', 'mlsdm-api-hpa', no_metrics))
D['pdb-disruptions-allowed'] = ('PDB allows no disruption', obj('PodDisruptionBudget', 'mlsdm-api-pdb', lambda p: p['status'].update({'disruptionsAllowed': 0, 'currentHealthy': 2})))
D['rollback-history-present'] = ('no previous ReplicaSet', [{'apiVersion': 'apps/v1', 'kind': 'ReplicaSet', 'metadata': {'name': 'mlsdm-api-5f7d8c6b4', 'namespace': 'mlsdm-production', 'annotations': {'fixtures.mlsdm-audit.io/delete': 'true'}}}])
D['image-version-expected'] = ('the previous release 1.1.0 deployed (the checks expect 1.2.0)', dep(lambda d, c: setp(c, 'image', 'ghcr.io/neuron7x/mlsdm-neuro-engine:1.1.0')))
D['release-not-being-deleted'] = ('the Deployment is being deleted', dep(lambda d, c: setp(d, 'metadata.deletionTimestamp', '2026-11-30T10:00:00Z')))
D['vulnerability-scan-clean'] = ('2 critical vulnerabilities', obj('VulnerabilityReport', 'replicaset-mlsdm-api-6b8f9d7c5-mlsdm-api', lambda v: v['report']['summary'].update({'criticalCount': 2})))

os.makedirs('fixtures/defects', exist_ok=True)
for f in glob.glob('fixtures/defects/*.yaml'):
    os.remove(f)
for cid, (what, docs) in sorted(D.items()):
    with open(f'fixtures/defects/{cid}.yaml', 'w') as f:
        f.write(f'# Defect for {cid}: {what}.\n# Overlay on fixtures/compliant + fixtures/live/healthy.yaml (see fixtures/README.md).\n')
        yaml.safe_dump_all(docs, f, sort_keys=False)

# The modular naming family: Deployment neuro-engine, probes on /health/live and /health/ready.
def rename(o):
    s = yaml.safe_dump(o, sort_keys=False).replace('mlsdm-api', 'neuro-engine')
    return yaml.safe_load(s)
os.makedirs('fixtures/compliant-modular', exist_ok=True)
mod = [rename(d) for d in compliant]
for d in mod:
    if d['kind'] == 'Deployment':
        c = d['spec']['template']['spec']['containers'][0]
        c['image'] = 'ghcr.io/neuron7x/mlsdm-neuro-engine:1.2.0@sha256:4f2a9c1e8b7d6a5f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a09'
        c['livenessProbe']['httpGet']['path'] = '/health/live'
        c['readinessProbe']['httpGet']['path'] = '/health/ready'
        c['startupProbe']['httpGet']['path'] = '/health/live'
    if d['kind'] == 'Service':
        d['spec']['ports'] = [{'name': 'http', 'port': 8000, 'targetPort': 8000, 'protocol': 'TCP'}]
with open('fixtures/compliant-modular/all.yaml', 'w') as f:
    f.write('# The compliant set in upstream\'s modular naming: Deployment neuro-engine, /health/live and /health/ready.\n')
    yaml.safe_dump_all(mod, f, sort_keys=False)

# A defective release with the mistakes upstream's own manifests make, and a few common ones.
os.makedirs('fixtures/defective', exist_ok=True)
bad = [rename(d) for d in compliant if d['kind'] not in ('PodDisruptionBudget', 'ResourceQuota')]
for d in bad:
    if d['kind'] in ('Service', 'NetworkPolicy', 'HorizontalPodAutoscaler') or (d['kind'] == 'ServiceMonitor'):
        s = yaml.safe_dump(d, sort_keys=False).replace('neuro-engine', 'mlsdm-api')
        d.clear(); d.update(yaml.safe_load(s))
    if d['kind'] == 'Deployment':
        spec = d['spec']['template']['spec']
        c = spec['containers'][0]
        c['image'] = 'ghcr.io/neuron7x/mlsdm-neuro-engine:latest'
        env_set(c, 'API_KEY', 'sk-fixture-literal-key-0123456789abcdef')
        env_set(c, 'MLSDM_ENV', 'production')
        env_set(c, 'LOG_LEVEL', 'DEBUG')
        c['resources'] = {'requests': {'memory': '256Mi', 'cpu': '100m'}, 'limits': {'memory': '4Gi'}}
        c['readinessProbe']['timeoutSeconds'] = 1
        c['securityContext'].pop('readOnlyRootFilesystem')
        d['spec']['strategy'] = {'type': 'RollingUpdate', 'rollingUpdate': {'maxSurge': '25%', 'maxUnavailable': '25%'}}
        spec.pop('topologySpreadConstraints')
        # Upstream's pods take the kubelet's service links: the Service mlsdm-api gives them
        # MLSDM_API_SERVICE_HOST and the rest, which MLSDM refuses to start on.
        spec.pop('enableServiceLinks')
        # Upstream's Deployment sets no command: its image's exits at once with nothing listening.
        c.pop('command')
    if d['kind'] == 'PrometheusRule':
        # Upstream's alerts read MLSDM's request metrics, which 1.2.0 never feeds: they never fire.
        for r in d['spec']['groups'][0]['rules']:
            r['expr'] = {'MLSDMHighErrorRate': 'sum(rate(mlsdm_http_requests_total{status=~"5.."}[5m])) / sum(rate(mlsdm_http_requests_total[5m])) > 0.10',
                         'MLSDMHighLatency': 'histogram_quantile(0.95, sum by (le) (rate(mlsdm_http_request_latency_seconds_bucket[5m]))) > 0.5'}.get(r['alert'], r['expr'])
    if d['kind'] == 'ConfigMap' and 'config.yaml' in d.get('data', {}):
        d['data']['config.yaml'] = d['data']['config.yaml'].replace('pelm:\n  capacity: 20000\n', '') + 'capacity: 20000\n'
        d['data']['config.yaml'] = d['data']['config.yaml'].replace('dimension: 384', 'dimension: 512')
with open('fixtures/defective/all.yaml', 'w') as f:
    f.write('# A release with upstream\'s modular-manifest mistakes (Service, NetworkPolicy, HPA and ServiceMonitor\n'
            '# select mlsdm-api while the Deployment is neuro-engine), MLSDM_ENV and a top-level capacity that\n'
            '# crash MLSDM at startup (and the Service mlsdm-api\'s service links), a literal API key, :latest,\n'
            '# no PDB, alerts on metrics MLSDM never feeds, and more.\n')
    yaml.safe_dump_all(bad, f, sort_keys=False)
print(len(D), 'defects')
