// What scripts/mixin writes:
//   jsonnet -J mixin -S -m . --tla-str part=files mixin/generate.jsonnet
//   jsonnet -J mixin -m dashboards --tla-str part=dashboards mixin/generate.jsonnet
function(part) (import 'render.libsonnet')(import 'mixin.libsonnet')[part]
