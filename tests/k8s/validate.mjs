// Validates rendered Kubernetes manifests (multi-document YAML on stdin or in a file) against the
// API's OpenAPI schemas, offline, with the schemas kubernetes-models compiles from Kubernetes'
// own (package.json pins the version). Exits 1 with the reasons if any document fails. The
// schemas do not forbid unknown fields; everything else (types, required fields, enums) they check.
import {readFileSync} from 'node:fs';
import {parseAllDocuments} from 'yaml';

const text = readFileSync(process.argv[2] || 0, 'utf8');
let failed = 0;
for (const doc of parseAllDocuments(text)) {
  const obj = doc.toJS();
  if (!obj)
    continue;
  const {apiVersion, kind} = obj;
  const what = `${kind} ${obj.metadata?.name ?? '?'}`;
  // "v1" is the core group's directory; "apps/v1" a group's.
  const modulePath = `kubernetes-models/${apiVersion}/${kind}`;
  try {
    const model = await import(modulePath);
    const Model = model[kind] ?? model.default;
    new Model(obj).validate();
    console.log(`ok   ${what} (${apiVersion})`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${what} (${apiVersion}): ${e.message}`);
  }
}
process.exit(failed ? 1 : 0);
