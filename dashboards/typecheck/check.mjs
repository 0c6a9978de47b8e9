// Type-checks Grafana dashboards (JSON) against @grafana/schema with tsc:
// each dashboard becomes a TypeScript object literal of type
// ExportedDashboard, so a field Grafana does not know, a missing required
// field or a value of the wrong type fails. Annotations are checked as either
// a plain AnnotationQuery or Grafana's Prometheus annotation.
// Usage: node check.mjs DASHBOARD.json...   (exit 0 when all type-check)
import { readFileSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';

const here = dirname(fileURLToPath(import.meta.url));
const build = join(here, '.build');
rmSync(build, { recursive: true, force: true });
mkdirSync(build, { recursive: true });
const files = [];
for (const path of process.argv.slice(2)) {
  const dashboard = JSON.parse(readFileSync(path, 'utf8'));
  const annotations = dashboard.annotations?.list ?? [];
  delete dashboard.annotations;
  const name = basename(path).replace(/[^A-Za-z0-9]/g, '_') + '.ts';
  const source =
    "import type { AnnotationQuery } from '@grafana/schema';\n" +
    "import type { ExportedDashboard, Json, PrometheusAnnotation } from '../grafana-export';\n" +
    'const annotations: Array<Json<AnnotationQuery> | Json<PrometheusAnnotation>> = ' +
    JSON.stringify(annotations, null, 2) + ';\n' +
    'export const dashboard: Json<ExportedDashboard> = { ...' + JSON.stringify(dashboard, null, 2) +
    ', annotations: { list: annotations } };\n';
  writeFileSync(join(build, name), source);
  files.push(join(build, name));
}
const tsc = join(here, 'node_modules', 'typescript', 'bin', 'tsc');
try {
  execFileSync(process.execPath, [tsc, '--noEmit', '--strict', '--target', 'es2020',
    '--module', 'nodenext', '--moduleResolution', 'nodenext', '--skipLibCheck', ...files],
    { stdio: 'inherit', cwd: here });
} catch {
  process.exit(1);
}
console.log(`type-checked ${files.length} dashboard(s) against @grafana/schema`);
