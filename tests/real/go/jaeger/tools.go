//go:build tools

// Package tools pins the Jaeger the self-tests run: go.mod requires
// github.com/jaegertracing/jaeger v1.76.0, the module tag of the Jaeger v2.13.0
// release (CHANGELOG.md "v1.76.0 / v2.13.0"), whose cmd/jaeger is the v2 binary
// that stack/versions.yaml's apps.jaeger image runs.
package tools

import _ "github.com/jaegertracing/jaeger/cmd/jaeger"
