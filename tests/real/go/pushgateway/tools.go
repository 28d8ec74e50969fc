//go:build tools

// Package tools pins the Pushgateway the self-tests run: go.mod requires
// github.com/prometheus/pushgateway at stack/versions.yaml's apps.pushgateway
// (the module is tagged like the release; its main package is the module root).
package tools

import _ "github.com/prometheus/pushgateway"
