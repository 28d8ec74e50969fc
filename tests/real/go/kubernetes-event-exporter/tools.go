//go:build tools

// Package tools pins the event exporter the self-tests run: go.mod requires
// github.com/resmoio/kubernetes-event-exporter at stack/versions.yaml's
// apps.kubernetes-event-exporter (the module is tagged like the release).
package tools

import _ "github.com/resmoio/kubernetes-event-exporter"
