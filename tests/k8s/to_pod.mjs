// The DaemonSet of the rendered manifests as one Pod that podman kube play can run on this
// machine (podman 4.3 plays Pods, not DaemonSets): the ConfigMap's keys inlined as env, the
// Secrets as hostPath directories, and the paths a test gives instead of the node's.
// Usage: node to_pod.mjs RENDERED.yaml SETTINGS.json > pod.yaml, SETTINGS being
//   {"name", "image", "env": {K: V}, "hostPaths": {VOLUME: PATH}, "extraMounts": [{name, path}]}
import {readFileSync} from 'node:fs';
import {parseAllDocuments, stringify} from 'yaml';

const docs = parseAllDocuments(readFileSync(process.argv[2], 'utf8')).map((d) => d.toJS()).filter(Boolean);
const settings = JSON.parse(readFileSync(process.argv[3], 'utf8'));
const ds = docs.find((d) => d.kind === 'DaemonSet');
const config = docs.find((d) => d.kind === 'ConfigMap');
const spec = structuredClone(ds.spec.template.spec);
delete spec.priorityClassName;
delete spec.tolerations;
const container = spec.containers[0];
container.image = settings.image;
delete container.ports; // podman maps no ports on the host's network, where the pod is anyway
const env = {...config.data, ...settings.env};
delete container.envFrom;
container.env = Object.entries(env).map(([name, value]) => ({name, value: String(value)}));
for (const v of spec.volumes) {
  if (settings.hostPaths[v.name]) {
    v.hostPath = {path: settings.hostPaths[v.name], type: 'Directory'};
    delete v.secret;
  }
}
for (const m of settings.extraMounts) {
  spec.volumes.push({name: m.name, hostPath: {path: m.path, type: 'Directory'}});
  container.volumeMounts.push({name: m.name, mountPath: m.path, readOnly: true});
}
const pod = {apiVersion: 'v1', kind: 'Pod', metadata: {name: settings.name, labels: ds.spec.template.metadata.labels}, spec};
process.stdout.write(stringify(pod));
