//go:build tools

// Package tools pins the Prometheus server the self-tests run: go.mod requires
// github.com/prometheus/prometheus at the Go module version of stack/versions.yaml's
// apps.prometheus, with the one replace directive Prometheus' own go.mod carries.
package tools

import _ "github.com/prometheus/prometheus/cmd/prometheus"
