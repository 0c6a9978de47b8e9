// What @grafana/schema leaves to others, declared from Grafana's own source
// so that the dashboards type-check whole:
// - `__requires`, which Grafana's dashboard export adds and its import reads
//   (public/app/features/dashboard/components/DashExportModal/DashboardExporter.ts);
// - the Prometheus data source's annotation fields: the query in `target`
//   (PromQuery: expr, interval) and the display fields it reads from the
//   annotation itself (public/app/plugins/datasource/prometheus, and
//   packages/grafana-prometheus/src/datasource.ts: processAnnotationResponse).
import type { AnnotationQuery, Dashboard, DataQuery } from '@grafana/schema';

/**
 * A type as JSON can write it: JSON has no enums, so an enum-typed field
 * takes the enum's string values (numeric enums accept their numbers as is).
 */
export type Json<T> = T extends string
  ? `${T}`
  : T extends readonly (infer E)[]
    ? Json<E>[]
    : T extends object
      ? { [K in keyof T]: Json<T[K]> }
      : T;

export interface Requirement {
  type: 'grafana' | 'datasource' | 'panel';
  id: string;
  name: string;
  version: string;
}

export interface ExportedDashboard extends Dashboard {
  __requires?: Requirement[];
}

export interface PromAnnotationTarget extends DataQuery {
  expr: string;
  interval?: string;
}

export interface PrometheusAnnotation extends AnnotationQuery<PromAnnotationTarget> {
  titleFormat?: string;
  textFormat?: string;
  tagKeys?: string;
  useValueForTime?: boolean;
}
