//go:build tools

// Package tools pins the kube-state-metrics the self-tests run: go.mod requires
// k8s.io/kube-state-metrics/v2 at stack/versions.yaml's apps.kube-state-metrics
// (the module is tagged like the release).
package tools

import _ "k8s.io/kube-state-metrics/v2"
