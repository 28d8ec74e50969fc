//go:build tools

// Package tools pins the Alertmanager the self-tests run: go.mod requires
// github.com/prometheus/alertmanager at stack/versions.yaml's apps.alertmanager
// (the module is tagged like the release).
package tools

import _ "github.com/prometheus/alertmanager/cmd/alertmanager"
