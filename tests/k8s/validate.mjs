// Validates every object in the YAML files named on the command line against the
// Kubernetes schemas (kubernetes-models, generated from the Kubernetes OpenAPI) and the
// Prometheus Operator's CRD schemas (@kubernetes-models/prometheus-operator, generated
// from its CRDs; versions pinned in package.json). A Kustomization is checked for the
// files it names, and each of its strategic-merge patches is merged into the object of
// the same kind and name among its resources (maps merged, lists of named items merged
// by name) and the result validated. Prints one line per object; exits 1 if any is
// invalid or unknown.
import { readFileSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { parseAllDocuments } from "yaml";
import { Deployment } from "kubernetes-models/apps/v1";
import { Service, Secret, ConfigMap } from "kubernetes-models/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { ServiceMonitor, PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";

const models = {
  "apps/v1 Deployment": Deployment,
  "v1 Service": Service,
  "v1 Secret": Secret,
  "v1 ConfigMap": ConfigMap,
  "policy/v1 PodDisruptionBudget": PodDisruptionBudget,
  "monitoring.coreos.com/v1 ServiceMonitor": ServiceMonitor,
  "monitoring.coreos.com/v1 PrometheusRule": PrometheusRule,
};

function objectsOf(file) {
  return parseAllDocuments(readFileSync(file, "utf8")).map((d) => d.toJS()).filter(Boolean);
}

// What a Kustomization's resources hold, each resource a file or a directory with its
// own kustomization.yaml.
function resourcesOf(kustomization) {
  const object = objectsOf(kustomization)[0];
  const patches = new Set((object.patches ?? []).map((p) => join(dirname(kustomization), p.path)));
  const out = [];
  for (const path of object.resources ?? []) {
    const full = join(dirname(kustomization), path);
    if (existsSync(join(full, "kustomization.yaml"))) {
      out.push(...resourcesOf(join(full, "kustomization.yaml")));
    } else {
      out.push(...objectsOf(full));
    }
  }
  for (const patch of patches) {
    for (const change of objectsOf(patch)) {
      const target = out.find(
        (o) => o.kind === change.kind && o.metadata?.name === change.metadata?.name,
      );
      if (!target) throw new Error(`${patch}: no ${change.kind} ${change.metadata?.name} to patch`);
      merge(target, change);
    }
  }
  return out;
}

function merge(target, change) {
  for (const [key, value] of Object.entries(change)) {
    const here = target[key];
    if (Array.isArray(here) && Array.isArray(value) && value.every((v) => v?.name !== undefined)) {
      for (const item of value) {
        const same = here.find((h) => h?.name === item.name);
        if (same) merge(same, item);
        else here.push(item);
      }
    } else if (here && typeof here === "object" && value && typeof value === "object" && !Array.isArray(value)) {
      merge(here, value);
    } else {
      target[key] = value;
    }
  }
}

const patchFiles = new Set();
let failed = 0;
for (const file of process.argv.slice(2)) {
  for (const object of objectsOf(file)) {
    if (object.kind === "Kustomization") {
      for (const p of object.patches ?? []) patchFiles.add(join(dirname(file), p.path));
    }
  }
}
for (const file of process.argv.slice(2)) {
  if (patchFiles.has(file)) {
    continue;
  }
  const docs = parseAllDocuments(readFileSync(file, "utf8"));
  for (const doc of docs) {
    if (doc.errors.length > 0) {
      console.log(`${file}: invalid YAML: ${doc.errors[0].message}`);
      failed++;
      continue;
    }
    const object = doc.toJS();
    if (object === null) continue;
    const type = `${object.apiVersion} ${object.kind}`;
    if (object.kind === "Kustomization") {
      const named = [...(object.resources ?? []), ...(object.components ?? [])]
        .concat((object.patches ?? []).map((p) => p.path).filter(Boolean));
      const missing = named.filter((path) => !existsSync(join(dirname(file), path)));
      if (missing.length > 0) {
        console.log(`${file}: Kustomization names missing files: ${missing.join(", ")}`);
        failed++;
        continue;
      }
      console.log(`${file}: Kustomization ok (${named.length} files)`);
      if ((object.patches ?? []).length > 0) {
        try {
          for (const patched of resourcesOf(file)) {
            const Model = models[`${patched.apiVersion} ${patched.kind}`];
            new Model(patched).validate();
            console.log(`${file}: patched ${patched.kind} ${patched.metadata?.name}: ok`);
          }
        } catch (e) {
          console.log(`${file}: patched: ${e.message}`);
          failed++;
        }
      }
      continue;
    }
    const Model = models[type];
    if (!Model) {
      console.log(`${file}: ${type}: no schema known here`);
      failed++;
      continue;
    }
    try {
      new Model(object).validate();
      console.log(`${file}: ${type} ${object.metadata?.name}: ok`);
    } catch (e) {
      console.log(`${file}: ${type} ${object.metadata?.name}: ${e.message}`);
      failed++;
    }
  }
}
process.exit(failed > 0 ? 1 : 0);
